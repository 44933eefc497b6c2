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


# --- re-keyed renewals, throttling, and what a failed deploy or rollback says ------------------------------------
#
# ACM refuses a re-import into the same ARN that changes the key's type or size ("The key type and size cannot be
# changed", ACM's re-import conditions); moto accepts it. `acm_as_aws` puts that rule back with a botocore event
# hook on every session the target makes (core/aws.py `session` is the seam), so these tests see AWS's behaviour.
# Throttling is injected the same way, as a `before-send` answer, so botocore's own retries see it.

import datetime as dt  # noqa: E402
import threading  # noqa: E402

from botocore.awsrequest import AWSResponse  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from providers.binding import _deploy_verified  # noqa: E402
from providers.core import certificates as x509util  # noqa: E402
from providers.core import keys  # noqa: E402
from tests.support.pki import make_leaf  # noqa: E402

RSA_2048, RSA_3072, EC_P256 = keys.KeySpec("rsa", size=2048), keys.KeySpec("rsa", size=3072), keys.KeySpec("ecdsa")


def keyed(ca: LocalCa, names: list[str], spec: keys.KeySpec, name: str = "www") -> Bundle:
    """A bundle from the test CA whose leaf key is `spec`."""
    leaf = make_leaf(ca.root, tuple(names), spec=spec, days=10, now=dt.datetime.now(dt.timezone.utc))
    return Bundle.from_pems(name, x509util.to_pem(leaf.cert), x509util.to_pem(ca.cert), keys.private_key_to_pem(leaf.key))


def acm_key_algorithm(cert_pem: str) -> str:
    """How ACM names the key of a certificate: RSA_2048, EC_prime256v1, ..."""
    key = x509util.load_certificates(cert_pem)[0].public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return {"secp256r1": "EC_prime256v1"}.get(key.curve.name, f"EC_{key.curve.name}")


class Hooks:
    """botocore event handlers registered on every session the target makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from providers.core import aws

        self.handlers: list[tuple[str, Any]] = []
        made = aws.session

        def hooked(access: Any) -> Any:
            session = made(access)
            for event, handler in self.handlers:
                session.events.register(event, handler)
            return session

        monkeypatch.setattr(aws, "session", hooked)
        # no real waiting between retries (either retry mode), so a test can throttle many times quickly
        monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0.0)
        monkeypatch.setattr("botocore.retryhandler.delay_exponential", lambda **_: 0.0)

    def on(self, event: str, handler: Any) -> None:
        self.handlers.append((event, handler))


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Hooks:
    return Hooks(monkeypatch)


@pytest.fixture
def acm_as_aws(moto: MotoServer, hooks: Hooks) -> list[str]:
    """ImportCertificate into an ARN whose key type or size differs fails as AWS fails it; returns the refusals."""
    refused: list[str] = []

    def refuse_rekeyed_reimport(params: dict[str, Any], **_: Any) -> None:
        arn = params.get("CertificateArn")
        if not arn:
            return
        held = acm(moto).describe_certificate(CertificateArn=arn)["Certificate"]["KeyAlgorithm"]
        cert = params["Certificate"]
        new = acm_key_algorithm(cert.decode() if isinstance(cert, bytes) else cert)
        if held != new:
            refused.append(arn)
            raise ClientError({"Error": {"Code": "ValidationException", "Message": (
                f"The certificate you are trying to reimport uses key algorithm {new}, but the certificate "
                f"{arn} uses {held}: the key type and size cannot be changed")}}, "ImportCertificate")

    hooks.on("before-parameter-build.acm.ImportCertificate", refuse_rekeyed_reimport)
    return refused


def key_algorithm(moto: MotoServer, arn: str) -> str:
    return str(acm(moto).describe_certificate(CertificateArn=arn)["Certificate"]["KeyAlgorithm"])


def certificates_in_acm(moto: MotoServer) -> set[str]:
    return {c["CertificateArn"] for c in acm(moto).list_certificates()["CertificateSummaryList"]}


def test_the_acm_hook_refuses_what_aws_refuses(moto: MotoServer, alb: dict[str, Any], ca: LocalCa,
                                               acm_as_aws: list[str]) -> None:
    """The hook itself: moto would take this re-import; with the hook, the target's session sees AWS's error."""
    from providers.core import aws

    rsa = keyed(ca, ["www.example.test"], RSA_2048)
    arn = imported(moto, rsa)
    ecdsa = keyed(ca, ["www.example.test"], EC_P256)
    client = aws.client(AwsElbv2Settings(region=REGION, listener_arn=alb["listener_arn"],
                                         endpoint_url=moto.endpoint_url), "acm")
    with pytest.raises(ClientError, match="the key type and size cannot be changed"):
        client.import_certificate(CertificateArn=arn, Certificate=ecdsa.cert_pem.encode(),
                                  PrivateKey=ecdsa.key_pem.encode())
    assert acm_as_aws == [arn]


def test_a_renewal_that_changes_the_key_type_or_size_is_a_new_certificate(
        moto: MotoServer, alb: dict[str, Any], ca: LocalCa, acm_as_aws: list[str]) -> None:
    """Same key type and size: re-imported into the same ARN. RSA -> ECDSA, 2048 -> 3072: a new ARN on the
    listener, the old one detached and deleted once the new one is verified; the listener's own original default
    stays remembered for removal throughout."""
    t = target(moto, alb)
    listener, original = alb["listener_arn"], alb["original_arn"]
    www = Binding("www--alb", ("www.example.test",))

    live = _deploy_verified(t, www, keyed(ca, ["www.example.test"], RSA_2048), None)
    first = live["certificate_arn"]
    renewed = keyed(ca, ["www.example.test"], RSA_2048)
    live = _deploy_verified(t, www.with_live(live), renewed, None)
    assert live["certificate_arn"] == first  # same type and size: in place

    for spec, algorithm in ((EC_P256, "EC_prime256v1"), (RSA_3072, "RSA_3072")):
        before = live["certificate_arn"]
        rekeyed = keyed(ca, ["www.example.test"], spec)
        live = _deploy_verified(t, www.with_live(live), rekeyed, renewed)
        assert live["certificate_arn"] != before and key_algorithm(moto, live["certificate_arn"]) == algorithm
        assert listener_certs(moto, listener) == {live["certificate_arn"]: True}
        assert before not in certificates_in_acm(moto)  # retired: detached, then deleted
        assert live["replaced_default_arn"] == original and not live["superseded"] and live["stale_arns"] == []
        assert t.observe(www.with_live(live)) == {DEFAULT: rekeyed.fingerprint_sha256}
        renewed = rekeyed
    assert acm_as_aws == []  # no re-import that AWS would refuse was ever tried

    # An SNI binding: the new ARN joins, the old one is detached and deleted.
    api = Binding("api--alb", ("api.example.test",), sni=True)
    api_v1 = keyed(ca, ["api.example.test"], RSA_2048, "api")
    api_live = _deploy_verified(t, api, api_v1, None)
    api_live2 = _deploy_verified(t, api.with_live(api_live), keyed(ca, ["api.example.test"], EC_P256, "api"), api_v1)
    assert api_live2["certificate_arn"] != api_live["certificate_arn"]
    assert listener_certs(moto, listener) == {live["certificate_arn"]: True, api_live2["certificate_arn"]: False}
    assert api_live["certificate_arn"] not in certificates_in_acm(moto)

    t.remove(www.with_live(live))
    assert listener_certs(moto, listener) == {original: True, api_live2["certificate_arn"]: False}
    assert live["certificate_arn"] not in certificates_in_acm(moto)


def test_a_rekeyed_renewal_that_fails_verification_points_back_at_the_old_arn(
        moto: MotoServer, alb: dict[str, Any], ca: LocalCa, acm_as_aws: list[str]) -> None:
    t = target(moto, alb)
    www = Binding("www--alb", ("www.example.test",))
    v1 = keyed(ca, ["www.example.test"], RSA_2048)
    live = _deploy_verified(t, www, v1, None)
    old = live["certificate_arn"]
    v2 = keyed(ca, ["www.example.test"], EC_P256)
    verify = t.verify

    def fails_for_v2(binding: Binding, bundle: Bundle) -> None:
        if bundle == v2:
            raise DeployError("aws_elbv2: the new certificate is not served (simulated)")
        verify(binding, bundle)

    t.verify = fails_for_v2
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, www.with_live(live), v2, v1)
    assert str(err.value) == "aws_elbv2: the new certificate is not served (simulated) (previous certificate restored)"
    assert listener_certs(moto, alb["listener_arn"]) == {old: True}
    assert certificates_in_acm(moto) == {alb["original_arn"], old}  # the new ARN is gone again
    t.verify = verify
    t.verify(www.with_live(live), v1)  # what state still says is true


def test_a_failure_before_anything_changed_says_so(moto: MotoServer, alb: dict[str, Any], ca: LocalCa) -> None:
    typo = get_target("aws_elbv2", {"region": REGION, "load_balancer_name": "no-such-alb", "listener_port": 443,
                                    "endpoint_url": moto.endpoint_url})
    with pytest.raises(DeployError) as err:
        _deploy_verified(typo, Binding("www--alb", ("www.example.test",)), ca.bundle(["www.example.test"]), None)
    assert str(err.value) == "aws_elbv2: no load balancer named no-such-alb in us-east-1 (nothing was changed)"


class Throttle:
    """Answers DescribeListenerCertificates with ELB's `Throttling` error, as AWS does under load, once the first
    ModifyListener went through: the next `attempts` attempts (botocore retries each), or every attempt until
    `reads` calls have failed for good (None: forever)."""

    BODY = (b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error>'
            b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
            b"<RequestId>throttled</RequestId></ErrorResponse>")

    def __init__(self, hooks: Hooks, *, attempts: int | None = None, reads: int | None = None) -> None:
        self.attempts, self.reads = attempts, reads
        self.armed, self.throttled, self.failed = False, 0, 0
        self._lock = threading.Lock()
        hooks.on("after-call.elastic-load-balancing-v2.ModifyListener", self._arm)
        hooks.on("before-send.elastic-load-balancing-v2.DescribeListenerCertificates", self._answer)
        hooks.on("after-call.elastic-load-balancing-v2.DescribeListenerCertificates", self._count)

    def _arm(self, **_: Any) -> None:
        self.armed = True

    def _count(self, http_response: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            self.failed += 1

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            done = (self.attempts is not None and self.throttled >= self.attempts) or \
                (self.reads is not None and self.failed >= self.reads)
            if not self.armed or done:
                return None
            self.throttled += 1

        class Raw:
            def stream(self) -> Any:
                yield Throttle.BODY

        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, Raw())


def test_throttled_reads_are_retried(moto: MotoServer, alb: dict[str, Any], ca: LocalCa, hooks: Hooks) -> None:
    """Five throttled answers in a row (more than botocore's default retries ride out) after the default swap:
    the deploy still goes through, with the bounded retries of core/aws.py."""
    throttle = Throttle(hooks, attempts=5)
    t = target(moto, alb)
    www = Binding("www--alb", ("www.example.test",))
    bundle = ca.bundle(["www.example.test"])
    live = _deploy_verified(t, www, bundle, None)
    assert throttle.throttled == 5
    assert listener_certs(moto, alb["listener_arn"]) == {live["certificate_arn"]: True}


def test_a_half_failed_default_swap_is_rolled_back_and_read_back(moto: MotoServer, alb: dict[str, Any], ca: LocalCa,
                                                                 hooks: Hooks) -> None:
    """modify_listener went through, then every retry of the read after it was throttled: the listener serves the
    new certificate, which the failed deploy hands to the rollback; the rollback puts the original back and reads
    it back before anything says "rolled back"."""
    t = target(moto, alb)
    api = _deploy_verified(t, Binding("api--alb", ("api.example.test",), sni=True), ca.bundle(["api.example.test"]),
                           None)["certificate_arn"]  # another binding's SNI certificate, read back after the swap
    Throttle(hooks, reads=1)  # one read fails for good (every retry throttled), the ones after it get through
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, Binding("www--alb", ("www.example.test",)), ca.bundle(["www.example.test"]), None)
    assert str(err.value) == "aws_elbv2: describe_listener_certificates: Throttling: Rate exceeded (rolled back)"
    assert listener_certs(moto, alb["listener_arn"]) == {alb["original_arn"]: True, api: False}
    assert certificates_in_acm(moto) == {alb["original_arn"], api}  # and the new certificate is not left in ACM


def test_a_rekeyed_swap_that_half_failed_restores_the_previous_certificate(
        moto: MotoServer, alb: dict[str, Any], ca: LocalCa, hooks: Hooks, acm_as_aws: list[str]) -> None:
    t = target(moto, alb)
    api = _deploy_verified(t, Binding("api--alb", ("api.example.test",), sni=True), ca.bundle(["api.example.test"]),
                           None)["certificate_arn"]
    www = Binding("www--alb", ("www.example.test",))
    v1 = keyed(ca, ["www.example.test"], RSA_2048)
    live = _deploy_verified(t, www, v1, None)
    Throttle(hooks, reads=1)
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, www.with_live(live), keyed(ca, ["www.example.test"], EC_P256), v1)
    assert str(err.value) == ("aws_elbv2: describe_listener_certificates: Throttling: Rate exceeded "
                              "(previous certificate restored)")
    assert listener_certs(moto, alb["listener_arn"]) == {live["certificate_arn"]: True, api: False}
    assert certificates_in_acm(moto) == {alb["original_arn"], live["certificate_arn"], api}
    t.verify(www.with_live(live), v1)


def test_a_rollback_that_cannot_read_the_listener_back_does_not_claim_it_rolled_back(
        moto: MotoServer, alb: dict[str, Any], ca: LocalCa, hooks: Hooks) -> None:
    t = target(moto, alb)
    _deploy_verified(t, Binding("api--alb", ("api.example.test",), sni=True), ca.bundle(["api.example.test"]), None)
    Throttle(hooks)  # the listener cannot be read at all after the swap
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, Binding("www--alb", ("www.example.test",)), ca.bundle(["www.example.test"]), None)
    message = str(err.value)
    assert "rolled back" not in message and "restored" not in message and "\n" not in message
    assert message.startswith("aws_elbv2: describe_listener_certificates: Throttling: Rate exceeded; rollback failed "
                              "too: ")
    assert (f"what listener {alb['listener_arn']} holds after the rollback could not be read back" in message
            and f"check that it holds {alb['original_arn']} as its default certificate, and not certplane's new "
            in message and message.endswith("then run `pulumi up` again"))
    held = listener_certs(moto, alb["listener_arn"])  # read without the hook: what is live, as the message says
    new = next(a for a, is_default in held.items() if is_default)
    assert new != alb["original_arn"] and new in message
