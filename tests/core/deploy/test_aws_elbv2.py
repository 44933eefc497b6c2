"""The aws_elbv2 target against moto on 127.0.0.1: default and SNI certificates, renewal by re-import into the
same ARN, removal that detaches before it deletes, and drift. describe_listener_certificates is checked after
every step because moto's listener semantics differ from AWS (see the local-test-servers notes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from providers.core.deploy.aws_elbv2 import AwsElbv2Settings
from providers.core.deploy import DEFAULT, Binding, Bundle, get_target
from providers.core.errors import DeployError, InvalidInputError
from tests.support.pki import LocalCa
from tools.servers.moto import MotoServer, create_https_listener
from tests.support.pem_markers import PKCS8_FOOTER, PKCS8_HEADER

REGION = "us-east-1"


def acm(moto: MotoServer) -> Any:
    return boto3.client("acm", region_name=REGION, endpoint_url=moto.endpoint_url)


def elb(moto: MotoServer) -> Any:
    return boto3.client("elbv2", region_name=REGION, endpoint_url=moto.endpoint_url)


def listener_certs(moto: MotoServer, listener: str) -> dict[str, bool]:
    page = elb(moto).describe_listener_certificates(ListenerArn=listener)
    return {c["CertificateArn"]: c["IsDefault"] for c in page["Certificates"]}


def imported(moto: MotoServer, bundle: Bundle) -> str:
    return str(acm(moto).import_certificate(Certificate=bundle.cert_pem.encode(), PrivateKey=bundle.key_pem.encode(),
                                            CertificateChain=bundle.chain_pem.encode())["CertificateArn"])


@pytest.fixture
def alb(moto: MotoServer, ca: LocalCa) -> dict[str, Any]:
    """An HTTPS listener that already serves a default certificate made outside certplane."""
    original = ca.bundle(["old.example.test"], name="original")
    arn = imported(moto, original)
    return {**create_https_listener(moto.endpoint_url, REGION, arn), "original_arn": arn, "original": original}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every AWS operation the target makes, in order (hooked on each session it makes: one per call)."""
    from providers.core import aws

    seen: list[str] = []
    made = aws.session

    def hooked(access: Any) -> Any:
        session = made(access)
        session.events.register("before-call", lambda model, **_: seen.append(model.name))
        return session

    monkeypatch.setattr(aws, "session", hooked)
    yield seen


def target(moto: MotoServer, alb: dict[str, Any]) -> Any:
    return get_target("aws_elbv2", {"region": REGION, "listener_arn": alb["listener_arn"],
                                    "endpoint_url": moto.endpoint_url})


def test_default_then_sni_then_renewal_then_removal(moto: MotoServer, alb: dict[str, Any], ca: LocalCa,
                                                    calls: list[str]) -> None:
    t = target(moto, alb)
    listener, original = alb["listener_arn"], alb["original_arn"]
    assert listener_certs(moto, listener) == {original: True}

    # 1. Default certificate: replaces the original default, which is remembered for removal.
    www = Binding("www--alb", ("www.example.test",))
    www_v1 = ca.bundle(["www.example.test"])
    live = t.deploy(www, www_v1)
    www = www.with_live(live)
    arn = live["certificate_arn"]
    assert live["replaced_default_arn"] == original and live["is_default"] is True
    assert listener_certs(moto, listener) == {arn: True}
    t.verify(www, www_v1)
    assert t.observe(www) == {DEFAULT: www_v1.fingerprint_sha256}

    # 2. An SNI certificate joins; the default stays.
    api = Binding("api--alb", ("api.example.test",), sni=True)
    api_v1 = ca.bundle(["api.example.test"], name="api")
    api = api.with_live(t.deploy(api, api_v1))
    api_arn = api.live["certificate_arn"]
    assert listener_certs(moto, listener) == {arn: True, api_arn: False}
    t.verify(api, api_v1)

    # 3. Renewal re-imports into the same ARN: the listener follows without a listener call.
    www_v2 = ca.bundle(["www.example.test"])
    calls.clear()
    live2 = t.deploy(www, www_v2)
    assert live2["certificate_arn"] == arn and live2["replaced_default_arn"] == original
    assert "ModifyListener" not in calls and calls.count("ImportCertificate") == 1
    assert listener_certs(moto, listener) == {arn: True, api_arn: False}
    t.verify(www.with_live(live2), www_v2)
    assert t.observe(www) == {DEFAULT: www_v2.fingerprint_sha256}
    with pytest.raises(DeployError) as err:
        t.verify(www, www_v1)
    assert str(err.value) == (f"aws_elbv2: ACM {arn} holds {www_v2.fingerprint_sha256}, "
                              f"expected {www_v1.fingerprint_sha256}")

    # 4. Removing the SNI binding detaches it before deleting it from ACM.
    calls.clear()
    t.remove(api)
    assert calls.index("RemoveListenerCertificates") < calls.index("DeleteCertificate")
    assert listener_certs(moto, listener) == {arn: True}
    assert api_arn not in [c["CertificateArn"] for c in acm(moto).list_certificates()["CertificateSummaryList"]]

    # 5. Removing the default restores the original default first, then deletes ours.
    calls.clear()
    t.remove(www.with_live(live2))
    assert calls.index("ModifyListener") < calls.index("DeleteCertificate")
    assert listener_certs(moto, listener) == {original: True}
    t.remove(www.with_live(live2))  # idempotent


def test_setting_the_default_keeps_sni_certificates(moto: MotoServer, alb: dict[str, Any], ca: LocalCa) -> None:
    """moto's modify_listener drops SNI certificates (AWS keeps them): the target re-adds them."""
    t = target(moto, alb)
    api = Binding("api--alb", ("api.example.test",), sni=True)
    api_arn = t.deploy(api, ca.bundle(["api.example.test"], name="api"))["certificate_arn"]
    assert listener_certs(moto, alb["listener_arn"]) == {alb["original_arn"]: True, api_arn: False}
    www_arn = t.deploy(Binding("www--alb", ("www.example.test",)), ca.bundle(["www.example.test"]))["certificate_arn"]
    assert listener_certs(moto, alb["listener_arn"]) == {www_arn: True, api_arn: False}


def test_switching_a_default_binding_to_sni_hands_the_default_back(moto: MotoServer, alb: dict[str, Any],
                                                                    ca: LocalCa) -> None:
    t = target(moto, alb)
    bundle = ca.bundle(["www.example.test"])
    live = t.deploy(Binding("www--alb", ("www.example.test",)), bundle)
    sni = Binding("www--alb", ("www.example.test",), sni=True, live=live)
    live = t.deploy(sni, bundle)
    assert listener_certs(moto, alb["listener_arn"]) == {alb["original_arn"]: True, live["certificate_arn"]: False}
    t.verify(sni.with_live(live), bundle)


def test_drift_someone_else_set_the_default(moto: MotoServer, alb: dict[str, Any], ca: LocalCa) -> None:
    t = target(moto, alb)
    ours = ca.bundle(["www.example.test"])
    binding = Binding("www--alb", ("www.example.test",))
    binding = binding.with_live(t.deploy(binding, ours))
    elb(moto).modify_listener(ListenerArn=alb["listener_arn"], Certificates=[{"CertificateArn": alb["original_arn"]}])
    assert t.observe(binding) == {DEFAULT: alb["original"].fingerprint_sha256}
    with pytest.raises(DeployError) as err:
        t.verify(binding, ours)
    assert str(err.value) == (f"aws_elbv2: {binding.live['certificate_arn']} is not the default certificate of "
                              f"listener {alb['listener_arn']}")
    t.deploy(binding, ours)  # redeploy repairs it
    assert t.observe(binding) == {DEFAULT: ours.fingerprint_sha256}


def test_the_listener_can_be_named_by_load_balancer_and_port(moto: MotoServer, alb: dict[str, Any],
                                                             ca: LocalCa) -> None:
    """Names survive re-creation of the load balancer; ARNs do not."""
    t = get_target("aws_elbv2", {"region": REGION, "load_balancer_name": "certplane-alb", "listener_port": 443,
                                 "endpoint_url": moto.endpoint_url})
    bundle = ca.bundle(["api.example.test"], name="api")
    live = t.deploy(Binding("api--alb", ("api.example.test",), sni=True), bundle)
    assert live["listener_arn"] == alb["listener_arn"]
    assert listener_certs(moto, alb["listener_arn"])[live["certificate_arn"]] is False
    missing = get_target("aws_elbv2", {"region": REGION, "load_balancer_name": "certplane-alb", "listener_port": 8443,
                                       "endpoint_url": moto.endpoint_url})
    with pytest.raises(DeployError) as err:
        missing.deploy(Binding("api--alb", ("api.example.test",), sni=True), bundle)
    assert str(err.value) == "aws_elbv2: load balancer certplane-alb has no listener on port 8443"


def test_a_failed_deploy_leaves_nothing_behind_in_acm(moto: MotoServer, alb: dict[str, Any], ca: LocalCa) -> None:
    def our_certificates() -> list[str]:
        return [c["CertificateArn"] for c in acm(moto).list_certificates()["CertificateSummaryList"]]

    before = our_certificates()
    typo = get_target("aws_elbv2", {"region": REGION, "load_balancer_name": "no-such-alb", "listener_port": 443,
                                    "endpoint_url": moto.endpoint_url})
    with pytest.raises(DeployError) as err:
        typo.deploy(Binding("api--alb", ("api.example.test",), sni=True), ca.bundle(["api.example.test"]))
    assert str(err.value) == "aws_elbv2: no load balancer named no-such-alb in us-east-1"
    assert our_certificates() == before  # the listener is resolved before anything is imported

    # Attaching fails after a fresh import (an API error, a quota): the imported certificate is deleted again.
    t = target(moto, alb)

    def refuse(*_: Any) -> dict[str, Any]:
        raise DeployError("aws_elbv2: modify_listener: ThrottlingException: Rate exceeded")

    t._attach = refuse  # type: ignore[method-assign]  # noqa: SLF001
    with pytest.raises(DeployError, match="Rate exceeded"):
        t.deploy(Binding("www--alb", ("www.example.test",)), ca.bundle(["www.example.test"]))
    assert our_certificates() == before


def test_never_leaves_a_listener_without_a_certificate(moto: MotoServer, ca: LocalCa) -> None:
    listener = create_https_listener(moto.endpoint_url, REGION)["listener_arn"]  # moto allows no certificate
    t = get_target("aws_elbv2", {"region": REGION, "listener_arn": listener, "endpoint_url": moto.endpoint_url})
    binding = Binding("www--alb", ("www.example.test",))
    binding = binding.with_live(t.deploy(binding, ca.bundle(["www.example.test"])))
    arn = binding.live["certificate_arn"]
    with pytest.raises(DeployError) as err:
        t.remove(binding)
    assert str(err.value) == (f"aws_elbv2: {arn} is the default certificate of listener {listener} and there is no "
                              "earlier default to restore; bind another default certificate first")
    assert listener_certs(moto, listener) == {arn: True}
    assert acm(moto).describe_certificate(CertificateArn=arn)["Certificate"]["CertificateArn"] == arn


def test_a_certificate_deleted_out_of_band_is_imported_again(moto: MotoServer, alb: dict[str, Any],
                                                             ca: LocalCa) -> None:
    t = target(moto, alb)
    binding = Binding("api--alb", ("api.example.test",), sni=True)
    bundle = ca.bundle(["api.example.test"], name="api")
    live = t.deploy(binding, bundle)
    elb(moto).remove_listener_certificates(ListenerArn=alb["listener_arn"],
                                           Certificates=[{"CertificateArn": live["certificate_arn"]}])
    acm(moto).delete_certificate(CertificateArn=live["certificate_arn"])
    assert t.observe(binding.with_live(live)) == {DEFAULT: None}
    live2 = t.deploy(binding.with_live(live), bundle)
    assert live2["certificate_arn"] != live["certificate_arn"]
    t.verify(binding.with_live(live2), bundle)


def test_errors_are_one_line(moto: MotoServer, alb: dict[str, Any], ca: LocalCa,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    t = target(moto, alb)
    bundle = ca.bundle(["www.example.test"])
    garbage = Bundle("www", bundle.cert_pem, "", PKCS8_HEADER + "\nAAAA\n" + PKCS8_FOOTER + "\n",
                     bundle.fingerprint_sha256)
    with pytest.raises(DeployError) as err:
        t.deploy(Binding("www--alb", ()), garbage)
    assert str(err.value) == ("aws_elbv2: import_certificate: ValidationException: "
                              "The private key is not PEM-encoded or is not valid.")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # the default session caches credentials it resolved
    with pytest.raises(DeployError) as err:
        t.deploy(Binding("www--alb", ()), bundle)
    # The listener is looked at before anything is imported, so that is the call that finds no credentials.
    assert str(err.value) == ("aws_elbv2: describe_listeners: no AWS credentials found (environment, shared files, "
                              "instance role): configure them, or name a profile (and a credentials_file) in the "
                              "settings")


@pytest.mark.parametrize(("raw", "message"), [
    ({"listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/c"}, "region: is required"),
    ({"region": "us-east-1", "listener_arn": "lb-123"},
     "listener_arn: must be an ELBv2 listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/...)"),
    ({"region": "us-east-1", "listener_arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/a/b/c"},
     "listener_arn: is in eu-west-1, but region is us-east-1"),
    ({"region": "Virginia", "listener_arn": "x"}, "region: 'Virginia' is not an AWS region like us-east-1"),
    ({"region": "us-east-1", "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/a",
      "secret_access_key": "x"},
     f"secret_access_key: unknown setting (known: {', '.join(AwsElbv2Settings.model_fields)})"),
    ({"region": "us-east-1"}, "listener_arn: is required (or load_balancer_name + listener_port)"),
    ({"region": "us-east-1", "load_balancer_name": "web"}, "listener_port: must be the HTTPS listener's port, e.g. 443"),
])
def test_bad_settings_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        get_target("aws_elbv2", raw)
    assert str(err.value) == message
