"""The aws_elbv2 target on a network load balancer's TLS listener (moto): the same calls as an ALB's HTTPS
listener, checked against what the listener holds after each step; a listener that does not terminate TLS is
refused before anything is imported."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from providers.core.deploy import Binding, get_target
from providers.core.errors import DeployError
from tests.support.pki import LocalCa
from tools.servers.moto import MotoServer, create_tls_listener

REGION = "us-east-1"


def clients(moto: MotoServer) -> tuple[Any, Any]:
    return (boto3.client("acm", region_name=REGION, endpoint_url=moto.endpoint_url),
            boto3.client("elbv2", region_name=REGION, endpoint_url=moto.endpoint_url))


def held(moto: MotoServer, listener: str) -> dict[str, bool]:
    page = clients(moto)[1].describe_listener_certificates(ListenerArn=listener)
    return {c["CertificateArn"]: c["IsDefault"] for c in page["Certificates"]}


def acm_fingerprint(moto: MotoServer, arn: str) -> str | None:
    from providers.core.certificates import fingerprint_of_pem

    return fingerprint_of_pem(clients(moto)[0].get_certificate(CertificateArn=arn)["Certificate"])


def acm_fingerprint_or_none(moto: MotoServer, arn: str) -> str | None:
    try:
        return acm_fingerprint(moto, arn)
    except clients(moto)[0].exceptions.ResourceNotFoundException:
        return None


@pytest.fixture
def nlb(moto: MotoServer, ca: LocalCa) -> dict[str, Any]:
    original = ca.bundle(["old.example.test"], name="original")
    arn = clients(moto)[0].import_certificate(Certificate=original.cert_pem.encode(),
                                              PrivateKey=original.key_pem.encode())["CertificateArn"]
    return {**create_tls_listener(moto.endpoint_url, REGION, arn), "original_arn": arn}


def settings(moto: MotoServer, **where: Any) -> dict[str, Any]:
    return {"region": REGION, "endpoint_url": moto.endpoint_url, **where}


def test_a_tls_listener_takes_sni_certificates_renews_them_in_place_and_gives_them_back(
        moto: MotoServer, nlb: dict[str, Any], ca: LocalCa) -> None:
    target = get_target("aws_elbv2", settings(moto, load_balancer_name="certplane-nlb", listener_port=443))
    listener = nlb["listener_arn"]
    api = ca.bundle(["api.example.test"], name="api")
    sni = Binding("api--nlb", sni=True).with_live(target.deploy(Binding("api--nlb", sni=True), api))
    assert sni.live["listener_arn"] == listener
    assert held(moto, listener) == {nlb["original_arn"]: True, sni.live["certificate_arn"]: False}
    target.verify(sni, api)

    renewed = ca.bundle(["api.example.test"], name="api")
    again = sni.with_live(target.deploy(sni, renewed))
    assert again.live["certificate_arn"] == sni.live["certificate_arn"]  # re-imported: the listener follows
    assert acm_fingerprint(moto, sni.live["certificate_arn"]) == renewed.fingerprint_sha256
    assert held(moto, listener) == {nlb["original_arn"]: True, sni.live["certificate_arn"]: False}

    target.remove(again)
    assert held(moto, listener) == {nlb["original_arn"]: True}
    assert acm_fingerprint_or_none(moto, sni.live["certificate_arn"]) is None  # deleted from ACM once detached


def test_a_default_certificate_the_listener_did_not_take_is_caught_by_verify_and_rolled_back(
        moto: MotoServer, nlb: dict[str, Any], ca: LocalCa) -> None:
    """moto 5.2 applies modify_listener's certificates to HTTPS listeners only, so a TLS listener keeps its
    default: exactly the case verify (which asks the API what the listener holds) exists for."""
    target = get_target("aws_elbv2", settings(moto, listener_arn=nlb["listener_arn"]))
    www = ca.bundle(["www.example.test"])
    binding = Binding("www--nlb").with_live(target.deploy(Binding("www--nlb"), www))
    with pytest.raises(DeployError) as err:
        target.verify(binding, www)
    assert str(err.value) == (f"aws_elbv2: {binding.live['certificate_arn']} is not the default certificate of "
                              f"listener {nlb['listener_arn']}")
    target.rollback(binding, None)  # what the binding provider does next
    assert held(moto, nlb["listener_arn"]) == {nlb["original_arn"]: True}
    assert acm_fingerprint_or_none(moto, binding.live["certificate_arn"]) is None


def test_a_tcp_listener_is_refused_before_anything_is_imported(moto: MotoServer, nlb: dict[str, Any],
                                                               ca: LocalCa) -> None:
    acm = clients(moto)[0]
    before = {c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]}
    by_port = get_target("aws_elbv2", settings(moto, load_balancer_name="certplane-nlb", listener_port=80))
    with pytest.raises(DeployError) as err:
        by_port.deploy(Binding("www--nlb"), ca.bundle(["www.example.test"]))
    assert str(err.value) == ("aws_elbv2: the listener on port 80 of certplane-nlb is TCP: certificates go on an "
                              "ALB's HTTPS or an NLB's TLS listener")
    by_arn = get_target("aws_elbv2", settings(moto, listener_arn=nlb["tcp_listener_arn"]))
    with pytest.raises(DeployError) as err:
        by_arn.deploy(Binding("www--nlb"), ca.bundle(["www.example.test"]))
    assert str(err.value).endswith("is TCP: certificates go on an ALB's HTTPS or an NLB's TLS listener")
    assert {c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]} == before
