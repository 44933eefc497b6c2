from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import Binding
from tests.contract.sandboxes.targets.common import TargetBox
from tools.servers.moto import create_distribution, import_placeholder_certificate

REGION = "us-east-1"


@contextmanager
def open(request: Any) -> Iterator[TargetBox]:  # noqa: A001
    moto = request.getfixturevalue("moto")
    url = moto.endpoint_url
    distribution = create_distribution(url, certificate_arn=import_placeholder_certificate(url, REGION))
    cf = boto3.client("cloudfront", region_name=REGION, endpoint_url=url)
    acm = boto3.client("acm", region_name=REGION, endpoint_url=url)

    def served(_binding: Binding) -> str | None:
        arn = cf.get_distribution_config(Id=distribution)["DistributionConfig"]["ViewerCertificate"].get(
            "ACMCertificateArn")
        return fingerprint_of_pem(acm.get_certificate(CertificateArn=arn)["Certificate"]) if arn else None

    binding = Binding("www--cdn")
    yield TargetBox({"distribution_id": distribution, "endpoint_url": url}, binding, served, before=served(binding))
