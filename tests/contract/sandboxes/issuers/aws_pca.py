from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography import x509

from tests.contract.sandboxes.issuers.common import IssuerBox
from tools.servers.moto import create_private_ca


@contextmanager
def open(request: Any) -> Iterator[IssuerBox]:  # noqa: A001
    moto = request.getfixturevalue("moto")
    ca = create_private_ca(moto.endpoint_url, "us-east-1", "Contract PCA")
    yield IssuerBox(settings={"type": "aws_pca", "certificate_authority_arn": ca["arn"],
                              "endpoint_url": moto.endpoint_url},
                    credentials=None, domains=("www.example.test", "example.test"),
                    trust=(x509.load_pem_x509_certificate(ca["certificate_pem"].encode()),))
