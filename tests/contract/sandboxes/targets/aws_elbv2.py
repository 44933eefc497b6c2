from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import Binding
from tests.contract.sandboxes.targets.common import TargetBox
from tools.servers.moto import create_https_listener, import_placeholder_certificate

REGION = "us-east-1"


@contextmanager
def open(request: Any) -> Iterator[TargetBox]:  # noqa: A001
    moto = request.getfixturevalue("moto")
    url = moto.endpoint_url
    listener = create_https_listener(url, REGION, import_placeholder_certificate(url, REGION))["listener_arn"]
    elb = boto3.client("elbv2", region_name=REGION, endpoint_url=url)
    acm = boto3.client("acm", region_name=REGION, endpoint_url=url)

    def served(_binding: Binding) -> str | None:
        default = [c for c in elb.describe_listener_certificates(ListenerArn=listener)["Certificates"]
                   if c["IsDefault"]]
        return fingerprint_of_pem(acm.get_certificate(CertificateArn=default[0]["CertificateArn"])["Certificate"]) \
            if default else None

    box = TargetBox(settings={"region": REGION, "listener_arn": listener, "endpoint_url": url},
                    binding=Binding("www--alb"), served=served)
    yield TargetBox(box.settings, box.binding, served, before=served(box.binding))
