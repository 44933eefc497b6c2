"""An `aws_pca` certificate on the real engine, against moto: issued by a private CA in AWS Private CA (a
subordinate whose root is kept outside AWS), deployed to an ALB's HTTPS listener as its default certificate,
renewed and redeployed, revoked on destroy when asked. Both the issuer and the target reach moto through a profile
of a credentials file of the stack's own; the AWS variables of the environment are blanked.

What moto cannot show: the lifetime asked for (it issues every leaf for 365 days, so renewal is time-travelled
past two thirds of that), the idempotency of IssueCertificate, and what a revocation does beyond its record
(moto publishes no CRL nor OCSP: its model view, /moto-api/data.json, is what is checked)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.issuers import aws_pca
from tests.support.pki import make_ca
from tools.servers.moto import (DUMMY_ENV, MotoServer, create_https_listener, create_private_ca,
                                import_placeholder_certificate, pca_revocations)

from .harness import EngineProject, changed_steps, from_now

pytestmark = pytest.mark.integration

REGION = "us-east-1"
PROFILE = "certplane-pca"
KEY_ID, SECRET_KEY = "AKIACERTPLANEPCATEST", "pca-test-secret-7d1f0c2b9e"
NO_AWS_ENV = {key: "" for key in DUMMY_ENV}
RENEWAL_DUE = {**NO_AWS_ENV, "CERTPLANE_NOW": from_now(300)}  # moto's leaves live 365 days: renewal is at 2/3


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=moto.endpoint_url)


@pytest.fixture
def aws(moto: MotoServer, tmp_path: Path) -> dict[str, Any]:
    """A subordinate PCA under a root outside AWS, an ALB whose HTTPS listener serves a placeholder, and a
    credentials file with a profile for both."""
    now = dt.datetime.now(dt.timezone.utc)
    root = make_ca("Engine Outside Root", spec=keys.KeySpec("rsa", size=2048), now=now)
    ca = create_private_ca(moto.endpoint_url, REGION, "Engine Sub PCA", parent=(root.cert, root.key))
    placeholder = import_placeholder_certificate(moto.endpoint_url, REGION)
    listener = create_https_listener(moto.endpoint_url, REGION, placeholder)["listener_arn"]
    credentials = tmp_path / "aws" / "credentials"
    credentials.parent.mkdir()
    credentials.write_text(f"[{PROFILE}]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET_KEY}\n")
    credentials.chmod(0o600)
    return {"ca": ca, "root": root.cert, "sub": x509.load_pem_x509_certificate(ca["certificate_pem"].encode()),
            "listener": listener, "placeholder": placeholder, "credentials": str(credentials)}


def config(moto: MotoServer, aws: dict[str, Any], **issuer: Any) -> dict[str, Any]:
    access = {"endpoint_url": moto.endpoint_url, "profile": PROFILE, "credentials_file": aws["credentials"]}
    return {
        "issuers": {"pca": {"type": "aws_pca", "certificate_authority_arn": aws["ca"]["arn"], **access, **issuer}},
        "certificates": {"www": {"domains": ["www.example.test", "example.test"], "issuer": "pca",
                                 "key": {"algorithm": "ecdsa", "curve": "P-256"}, "validity_days": 90,
                                 "tags": {"owner": "platform-team", "env": "test"},
                                 "bindings": [{"target": "alb"}]}},
        "targets": {"alb": {"type": "aws_elbv2", "region": REGION, "listener_arn": aws["listener"], **access}},
    }


def default_certificate(moto: MotoServer, listener: str) -> str:
    found = client(moto, "elbv2").describe_listeners(ListenerArns=[listener])["Listeners"][0]["Certificates"]
    return str(found[0]["CertificateArn"])


def served_by_alb(moto: MotoServer, aws: dict[str, Any]) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The listener's default certificate as ACM holds it: (leaf, the chain imported with it). moto's ACM appends
    a root of its own ("Amazon", as it says AWS does) to every chain it returns: that one is left out."""
    held = client(moto, "acm").get_certificate(CertificateArn=default_certificate(moto, aws["listener"]))
    chain = x509util.load_certificates(held.get("CertificateChain") or "")
    assert chain and chain[-1].subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "Amazon"
    return x509.load_pem_x509_certificate(held["Certificate"].encode()), chain[:-1]


def assert_issued_by_the_pca(moto: MotoServer, aws: dict[str, Any], leaf: x509.Certificate,
                             chain: list[x509.Certificate]) -> None:
    pca_cert = client(moto, "acm-pca").get_certificate_authority_certificate(
        CertificateAuthorityArn=aws["ca"]["arn"])["Certificate"]
    assert chain == [aws["sub"]] and x509util.to_pem(chain[0]).strip() == pca_cert.strip()
    assert x509util.signed_by(leaf, aws["sub"])
    verifier = (PolicyBuilder().store(Store([aws["root"]])).time(dt.datetime.now(dt.timezone.utc))
                .build_server_verifier(DNSName("example.test")))
    assert verifier.verify(leaf, chain) == [leaf, aws["sub"], aws["root"]]


def assert_no_secret_in(text: str, where: str) -> None:
    assert "PRIVATE KEY-----" not in text, where
    assert SECRET_KEY not in text and KEY_ID not in text, where


def test_an_aws_pca_certificate_deploys_to_the_alb_renews_and_redeploys(tmp_path: Path, moto: MotoServer,
                                                                         aws: dict[str, Any]) -> None:
    project = EngineProject(tmp_path / "stack", config(moto, aws))
    destroyed = False
    try:
        up = project.up(env=NO_AWS_ENV)
        assert "www: the CA issued it for 365 days, not the 90 asked for (validity_days)" in up.stdout, up.stdout
        inv = project.outputs()["inventory"]["www"]
        leaf, chain = served_by_alb(moto, aws)
        assert x509util.fingerprint_sha256(leaf) == inv["fingerprint_sha256"]
        assert sorted(x509util.dns_names_of(leaf)) == ["example.test", "www.example.test"]
        assert_issued_by_the_pca(moto, aws, leaf, chain)
        arn = default_certificate(moto, aws["listener"])
        assert arn != aws["placeholder"]

        first = project.preview(env=NO_AWS_ENV)
        assert changed_steps(first) == {}, first.stdout

        # Renewal: re-issued by the PCA (a new key: reuse_key is off) and re-imported into the same ACM ARN.
        preview = project.preview(env=RENEWAL_DUE)
        assert changed_steps(preview) == {"update": 2}, preview.stdout  # www and its binding
        project.up(env=RENEWAL_DUE)
        renewed = project.outputs()["inventory"]["www"]
        assert renewed["serial"] != inv["serial"]
        leaf2, chain2 = served_by_alb(moto, aws)
        assert x509util.fingerprint_sha256(leaf2) == renewed["fingerprint_sha256"]
        assert not keys.same_public_key(leaf2.public_key(), leaf.public_key())  # type: ignore[arg-type]
        assert_issued_by_the_pca(moto, aws, leaf2, chain2)
        assert default_certificate(moto, aws["listener"]) == arn
        assert changed_steps(project.preview(env=NO_AWS_ENV)) == {}

        for where, text in {"state": project.state_text(), "stack export": project.export_text(),
                            "up output": up.stdout + up.stderr}.items():
            assert_no_secret_in(text, where)
        assert aws["ca"]["arn"] in project.state_text()  # the state file was read (the order is in it), not nothing

        project.destroy()
        destroyed = True
        assert default_certificate(moto, aws["listener"]) == aws["placeholder"]
        assert pca_revocations(moto.endpoint_url, aws["ca"]["arn"]) == {}  # revoke_on_destroy is off
    finally:
        if not destroyed:
            project.destroy()


def test_destroy_revokes_when_asked(tmp_path: Path, moto: MotoServer, aws: dict[str, Any]) -> None:
    project = EngineProject(tmp_path / "stack", config(moto, aws))
    try:
        project.up(env=NO_AWS_ENV)
        serial = project.outputs()["inventory"]["www"]["serial"]
        # Asking for revocation later re-issues nothing: the certificate keeps its order, re-rendered (in a
        # preview its outputs are not known yet, so the binding is listed too; the `up` serves the same leaf).
        project.set_config(config(moto, aws, revoke_on_destroy=True, revoke_reason="SUPERSEDED"))
        later = project.preview(env=NO_AWS_ENV)
        lines = {ln.split()[2]: ln for ln in later.stdout.splitlines() if ln.startswith(" ~ ")}
        assert lines["www"].endswith("update [diff: ~issuer_settings]"), later.stdout
        project.up(env=NO_AWS_ENV)
        assert project.outputs()["inventory"]["www"]["serial"] == serial
        assert served_by_alb(moto, aws)[0].serial_number == int(serial, 16)
        assert pca_revocations(moto.endpoint_url, aws["ca"]["arn"]) == {}
    finally:
        project.destroy()
    leaf = x509.load_pem_x509_certificate(
        client(moto, "acm").get_certificate(CertificateArn=aws["placeholder"])["Certificate"].encode())
    assert leaf.serial_number != int(serial, 16)
    assert pca_revocations(moto.endpoint_url, aws["ca"]["arn"]) == {
        aws_pca.serial_for_aws(_with_serial(int(serial, 16))): "SUPERSEDED"}


def _with_serial(number: int) -> Any:
    class Serial:
        serial_number = number

    return Serial()
