from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from providers.core import certificates as x509util
from providers.core import keys
from tests.contract.sandboxes.issuers.common import IssuerBox
from tests.support.pki import make_ca


@contextmanager
def open(request: Any) -> Iterator[IssuerBox]:  # noqa: A001
    now = dt.datetime.now(dt.timezone.utc)
    root = make_ca("Contract Root", now=now)
    intermediate = make_ca("Contract Intermediate", issuer=root, path_length=0, now=now)
    yield IssuerBox(settings={"type": "private_ca", "common_name": "Contract Root"},
                    credentials={"ca_cert_pem": x509util.to_pem(intermediate.cert),
                                 "ca_private_key_pem": keys.private_key_to_pem(intermediate.key),
                                 "ca_chain_pem": x509util.to_pem(root.cert)},
                    domains=("www.example.test", "example.test"), trust=(root.cert,))
