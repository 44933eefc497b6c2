"""The aws_pca issuer against moto's AWS Private CA on 127.0.0.1 (a root that issued its own certificate, and a
subordinate signed by a root outside AWS), and against a scripted endpoint for what moto cannot do (throttling,
a certificate that stays in progress, AWS's own error codes).

What moto does not do, so these tests cannot check it: it ignores `Validity` (every leaf is valid 365 days),
`SigningAlgorithm` (it signs SHA512WITHRSA with an RSA 2048 CA key, whatever the CA's KeyAlgorithm),
`IdempotencyToken` (a repeated call issues again) and a CA's status when issuing (a DISABLED CA still issues:
certplane's own status check is what refuses it); it accepts revoking one serial twice; and it answers an IAM
denial with an XML body and HTTP status 403. The tests assert what certplane sends and what it accepts."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from components.config import ConfigProblems, parse_fleet
from providers.core import aws, issuers, keys
from providers.core import certificates as x509util
from providers.core.certificates import CertificateRequest
from providers.core.errors import CertplaneError, RetryableError
from providers.core.issuers import IssueRequest
from providers.core.issuers import aws_pca
from tests.support.pki import make_ca
from tools.servers.moto import MotoServer, create_private_ca, pca_revocations

REGION = "us-east-1"
NAMES = ("www.example.test", "example.test")
ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/0d0f3a6e-1111-2222-3333-444455556666"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def pca(moto: MotoServer, ca: dict[str, str], **settings: Any) -> tuple[aws_pca.AwsPcaIssuer, aws_pca.AwsPcaOrder]:
    parsed = issuers.REGISTRY.validate({"type": "aws_pca", "certificate_authority_arn": ca["arn"],
                                        "endpoint_url": moto.endpoint_url, **settings}, field="issuers.pca")
    plugin = issuers.REGISTRY.plugin_of(parsed)
    order = plugin.order_for(parsed, issuer="pca", challenge=None)
    return plugin.build(order, None), order


def request(names: tuple[str, ...] = NAMES, days: int = 90) -> CertificateRequest:
    return CertificateRequest(domains=names, validity_days=days)


def issue(issuer: aws_pca.AwsPcaIssuer, key: keys.PrivateKey | None = None, **kwargs: Any) -> Any:
    key = key or keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    return issuer.issue(IssueRequest("www", request(**kwargs), key, now()))


def cert_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def verify(leaf: x509.Certificate, chain: tuple[x509.Certificate, ...], root: x509.Certificate) -> list[Any]:
    verifier = PolicyBuilder().store(Store([root])).time(now()).build_server_verifier(DNSName(NAMES[0]))
    return list(verifier.verify(leaf, list(chain)))


@pytest.fixture
def root_ca(moto: MotoServer) -> dict[str, str]:
    return create_private_ca(moto.endpoint_url, REGION, "Test Root PCA")


@pytest.fixture
def sub_ca(moto: MotoServer) -> dict[str, Any]:
    """A subordinate CA in AWS under a root kept outside AWS (the root is what clients trust)."""
    outside = make_ca("Outside Root", spec=keys.KeySpec("rsa", size=2048), now=now())
    return {**create_private_ca(moto.endpoint_url, REGION, "Test Sub PCA", parent=(outside.cert, outside.key)),
            "root": outside.cert}


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# --- config: one line per problem, at preview ----------------------------------------------------------------

def config_lines(issuer: dict[str, Any], cert: dict[str, Any] | None = None) -> list[str]:
    raw = {"issuers": {"pca": {"type": "aws_pca", **issuer}},
           "certificates": {"www": {"domains": list(NAMES), "issuer": "pca", **(cert or {})}}}
    try:
        parse_fleet(raw, Path("."))
    except ConfigProblems as problems:
        return problems.lines
    return []


@pytest.mark.parametrize(("issuer", "cert", "line"), [
    ({"certificate_authority_arn": "ca-123"}, None,
     "certplane:issuers.pca.certificate_authority_arn: must be an AWS Private CA ARN "
     "(arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID), not 'ca-123'"),
    ({"certificate_authority_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0d0f3a6e-1111-2222-3333-444455556666"},
     None, "certplane:issuers.pca.certificate_authority_arn: must be an AWS Private CA ARN "
           "(arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID), not "
           "'arn:aws:acm:us-east-1:123456789012:certificate/0d0f3a6e-1111-2222-3333-444455556666'"),
    ({}, None, "certplane:issuers.pca.certificate_authority_arn: is required"),
    ({"certificate_authority_arn": ARN, "region": "eu-west-1"}, None,
     "certplane:issuers.pca.certificate_authority_arn: is in us-east-1, but region is eu-west-1"),
    ({"certificate_authority_arn": ARN, "template_arn": "arn:aws:acm-pca:::template/RootCACertificate/V1"}, None,
     "certplane:issuers.pca.template_arn: RootCACertificate issues CA certificates: certplane issues end-entity "
     "certificates (e.g. EndEntityServerAuthCertificate/V1)"),
    ({"certificate_authority_arn": ARN, "template_arn": "EndEntityCertificate"}, None,
     "certplane:issuers.pca.template_arn: must be an AWS Private CA template ARN like "
     "arn:aws:acm-pca:::template/EndEntityCertificate/V1"),
    ({"certificate_authority_arn": ARN, "revoke_reason": "because"}, None,
     "certplane:issuers.pca.revoke_reason: must be one of 'UNSPECIFIED', 'KEY_COMPROMISE', "
     "'CERTIFICATE_AUTHORITY_COMPROMISE', 'AFFILIATION_CHANGED', 'SUPERSEDED', 'CESSATION_OF_OPERATION', "
     "'PRIVILEGE_WITHDRAWN' or 'A_A_COMPROMISE'"),
    ({"certificate_authority_arn": ARN, "aws_secret_access_key": "x"}, None,
     "certplane:issuers.pca.aws_secret_access_key: unknown setting (known: region, endpoint_url, profile, "
     "credentials_file, certificate_authority_arn, signing_algorithm, template_arn, revoke_on_destroy, "
     "revoke_reason, issue_timeout_seconds, reissue_before, key_storage)"),
    ({"certificate_authority_arn": ARN}, {"key": {"algorithm": "ed25519"}},
     "certplane:certificates.www.key: AWS Private CA does not sign Ed25519 keys: use rsa or ecdsa"),
    ({"certificate_authority_arn": ARN}, {"ip_addresses": ["10.0.0.1"]},
     "certplane:certificates.www.ip_addresses: not supported for aws_pca certificates yet"),
    ({"certificate_authority_arn": ARN}, {"challenge": "dns-01"},
     "certplane:certificates.www.challenge: aws_pca issuers validate no domain control: remove it"),
])
def test_config_problems_are_one_line_naming_the_field(issuer: dict[str, Any], cert: dict[str, Any] | None,
                                                       line: str) -> None:
    assert config_lines(issuer, cert) == [line]


def test_a_valid_block_takes_its_region_from_the_arn_and_carries_no_secret() -> None:
    assert config_lines({"certificate_authority_arn": ARN, "profile": "pca", "revoke_on_destroy": True}) == []
    settings = issuers.REGISTRY.validate({"type": "aws_pca", "certificate_authority_arn": ARN})
    order = issuers.REGISTRY.plugin_of(settings).order_for(settings, issuer="pca", challenge=None)
    assert order.region == "us-east-1" and order.revoke_reason == "CESSATION_OF_OPERATION"
    assert order.wire() == {"region": "us-east-1", "certificate_authority_arn": ARN, "revoke_on_destroy": False,
                            "revoke_reason": "CESSATION_OF_OPERATION", "issue_timeout_seconds": 60}
    from providers.core.validation import REISSUE, SECRET, marked
    assert marked(aws_pca.AwsPcaOrder, SECRET) == ()
    assert set(marked(aws_pca.AwsPcaOrder, REISSUE)) == {"certificate_authority_arn", "signing_algorithm",
                                                          "template_arn"}


# --- issuing on moto ------------------------------------------------------------------------------------------

def test_issue_from_a_root_pca(moto: MotoServer, root_ca: dict[str, str], calls: list[Any]) -> None:
    issuer, _ = pca(moto, root_ca)
    key = keys.generate_private_key(keys.KeySpec("rsa", size=2048))
    issued = issue(issuer, key)

    assert keys.same_public_key(issued.leaf.public_key(), key)  # type: ignore[arg-type]
    assert sorted(x509util.dns_names_of(issued.leaf)) == sorted(NAMES)
    assert issued.chain == ()  # AWS's chain is the root only: left out, as every issuer leaves it out
    root = cert_of(root_ca["certificate_pem"])
    assert verify(issued.leaf, issued.chain, root)[-1] == root
    assert [name for name, _ in calls] == ["DescribeCertificateAuthority", "IssueCertificate", "GetCertificate",
                                           "GetCertificate"]  # the waiter's poll, then the certificate
    sent = calls[1][1]
    assert sent["SigningAlgorithm"] == "SHA256WITHRSA"  # from the CA's KeyAlgorithm RSA_2048
    assert sent["Validity"] == {"Value": 90, "Type": "DAYS"} and "TemplateArn" not in sent
    csr = x509.load_pem_x509_csr(sent["Csr"])
    assert keys.same_public_key(csr.public_key(), key)  # type: ignore[arg-type]
    # moto ignores Validity: the leaf is valid 365 days, and certplane says so rather than pretend
    life = issued.leaf.not_valid_after_utc - issued.leaf.not_valid_before_utc
    assert life.days == 365
    assert issued.notes == ("the CA issued it for 365 days, not the 90 asked for (validity_days); renewal follows "
                            "the certificate's own expiry",)


def test_issue_from_a_subordinate_pca_serves_the_pca_certificate(moto: MotoServer, sub_ca: dict[str, Any]) -> None:
    issuer, _ = pca(moto, sub_ca)
    issued = issue(issuer)
    sub = cert_of(sub_ca["certificate_pem"])
    assert issued.chain == (sub,)
    path = verify(issued.leaf, issued.chain, sub_ca["root"])
    assert path == [issued.leaf, sub, sub_ca["root"]]


def test_the_idempotency_token_is_the_request(moto: MotoServer, root_ca: dict[str, str], calls: list[Any]) -> None:
    issuer, order = pca(moto, root_ca)
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    issue(issuer, key)
    issue(issuer, key)
    issue(issuer, key, names=("www.example.test",))
    issue(issuer)
    tokens = [params["IdempotencyToken"] for name, params in calls if name == "IssueCertificate"]
    assert tokens[0] == tokens[1] and len(set(tokens)) == 3  # same request, same token; other names or key: not
    assert all(1 <= len(t) <= 36 for t in tokens)
    assert tokens[0] == aws_pca.idempotency_token(order, request(), key, "SHA256WITHRSA")


def test_signing_algorithm_given_is_checked_against_the_ca_key(moto: MotoServer, root_ca: dict[str, str],
                                                                calls: list[Any]) -> None:
    issuer, _ = pca(moto, root_ca, signing_algorithm="SHA384WITHRSA")
    issue(issuer)
    assert [p["SigningAlgorithm"] for n, p in calls if n == "IssueCertificate"] == ["SHA384WITHRSA"]

    issuer, _ = pca(moto, root_ca, signing_algorithm="SHA256WITHECDSA")
    with pytest.raises(CertplaneError) as err:
        issue(issuer)
    assert one_line(err.value) == (
        f"aws_pca: issuing www.example.test, example.test from {root_ca['arn']}: signing_algorithm SHA256WITHECDSA "
        "does not fit the CA's RSA_2048 key: use one of SHA256WITHRSA, SHA384WITHRSA, SHA512WITHRSA, "
        "SHA256WITHRSA_PSS, SHA384WITHRSA_PSS, SHA512WITHRSA_PSS (or leave it out)")


def test_a_template_is_passed_through(moto: MotoServer, root_ca: dict[str, str], calls: list[Any]) -> None:
    template = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
    issuer, _ = pca(moto, root_ca, template_arn=template)
    issue(issuer)
    assert [p["TemplateArn"] for n, p in calls if n == "IssueCertificate"] == [template]


def test_a_lifetime_beyond_the_ca_is_refused_before_issuing(moto: MotoServer, root_ca: dict[str, str],
                                                             calls: list[Any]) -> None:
    issuer, _ = pca(moto, root_ca)  # moto's root certificate: 365 days
    with pytest.raises(CertplaneError, match=r"the CA's certificate expires \S+, before 400 days from now: renew "
                                             r"the CA, or ask for fewer validity_days$"):
        issue(issuer, days=400)
    assert "IssueCertificate" not in [n for n, _ in calls]


def test_a_disabled_ca_is_one_line_and_issues_nothing(moto: MotoServer, root_ca: dict[str, str],
                                                      calls: list[Any]) -> None:
    client = boto3.client("acm-pca", region_name=REGION, endpoint_url=moto.endpoint_url)
    client.update_certificate_authority(CertificateAuthorityArn=root_ca["arn"], Status="DISABLED")
    issuer, _ = pca(moto, root_ca)
    with pytest.raises(CertplaneError) as err:
        issue(issuer)
    assert one_line(err.value) == (
        f"aws_pca: issuing www.example.test, example.test from {root_ca['arn']}: the certificate authority is "
        "DISABLED, not ACTIVE: enable it (aws acm-pca update-certificate-authority --status ACTIVE) or name "
        "another CA")
    assert [n for n, _ in calls] == ["DescribeCertificateAuthority"]


def test_an_unknown_ca_is_one_line(moto: MotoServer) -> None:
    issuer, _ = pca(moto, {"arn": ARN})
    with pytest.raises(CertplaneError) as err:
        issue(issuer)
    assert one_line(err.value) == (
        f"aws_pca: issuing www.example.test, example.test from {ARN}: DescribeCertificateAuthority: "
        f"ResourceNotFoundException: Resource {ARN} not found (check certificate_authority_arn and region)")


def test_access_denied_is_one_line_and_names_no_key(moto: MotoServer, root_ca: dict[str, str],
                                                    tmp_path: Path) -> None:
    """moto's IAM enforcement on, for a user with no policy, reached through a profile of a credentials file."""
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto.endpoint_url)
    iam.create_user(UserName="nobody")
    access = iam.create_access_key(UserName="nobody")["AccessKey"]
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[pca-nobody]\naws_access_key_id = {access['AccessKeyId']}\n"
                           f"aws_secret_access_key = {access['SecretAccessKey']}\n")
    issuer, order = pca(moto, root_ca, profile="pca-nobody", credentials_file=str(credentials))
    assert access["SecretAccessKey"] not in repr(order) + json.dumps(order.wire())
    with moto_auth(moto):
        with pytest.raises(CertplaneError) as err:
            issue(issuer)
    text = one_line(err.value)
    assert text == (f"aws_pca: issuing www.example.test, example.test from {root_ca['arn']}: "
                    "DescribeCertificateAuthority: AccessDenied: User: arn:aws:iam::123456789012:user/nobody is not "
                    "authorized to perform: acm-pca:DescribeCertificateAuthority (the credentials need "
                    "acm-pca:DescribeCertificateAuthority on this CA)")
    assert access["SecretAccessKey"] not in text and access["AccessKeyId"] not in text


class moto_auth:  # noqa: N801 - a context manager
    """moto authenticates and authorizes every request while inside (its /moto-api/reset-auth switch)."""

    def __init__(self, moto: MotoServer) -> None:
        self.url = f"{moto.endpoint_url}/moto-api/reset-auth"

    def _set(self, value: str) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url, data=value.encode(), method="POST", headers={
            "Content-Type": "application/octet-stream"}), timeout=5).read()

    def __enter__(self) -> None:
        self._set("0")

    def __exit__(self, *_: object) -> None:
        self._set("inf")


# --- what the CA returns is checked (one rule with ACME's) -----------------------------------------------------

def test_a_leaf_for_another_key_or_other_names_is_refused(moto: MotoServer, root_ca: dict[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    issuer, _ = pca(moto, root_ca)
    build = x509util.build_csr  # what IssueRequest.csr_pem sends for certplane's own key
    other = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    monkeypatch.setattr(x509util, "build_csr", lambda key, names: build(other, names))
    with pytest.raises(CertplaneError) as err:
        issue(issuer)
    assert one_line(err.value).endswith(": the CA returned a certificate for another public key than the CSR's; "
                                        "refusing it")

    monkeypatch.setattr(x509util, "build_csr", lambda key, names: build(key, ["other.example.test"]))
    with pytest.raises(CertplaneError) as err:
        issue(issuer)
    assert one_line(err.value).endswith(": the CA returned a certificate for other.example.test instead of "
                                        "example.test, www.example.test; refusing it")


def test_a_chain_that_does_not_start_with_the_issuer_is_refused(moto: MotoServer, root_ca: dict[str, str]) -> None:
    # moto serves the CA certificate last imported as every leaf's chain: import a stranger's
    stranger = make_ca("Stranger", spec=keys.KeySpec("rsa", size=2048), now=now())
    client = boto3.client("acm-pca", region_name=REGION, endpoint_url=moto.endpoint_url)
    client.import_certificate_authority_certificate(CertificateAuthorityArn=root_ca["arn"],
                                                    Certificate=x509util.to_pem(stranger.cert).encode())
    issuer, _ = pca(moto, root_ca)
    with pytest.raises(CertplaneError) as err:
        issue(issuer)
    assert one_line(err.value).endswith(": the chain AWS returned does not start with the leaf's issuer "
                                        "('CN=Stranger'); refusing it")


# --- revocation -------------------------------------------------------------------------------------------

def test_revoke_only_when_asked_with_the_reason_given(moto: MotoServer, sub_ca: dict[str, Any]) -> None:
    plain, _ = pca(moto, sub_ca)
    leaf = issue(plain).leaf
    assert plain.revoke(leaf) is False
    assert pca_revocations(moto.endpoint_url, sub_ca["arn"]) == {}

    asked, _ = pca(moto, sub_ca, revoke_on_destroy=True)
    assert asked.revoke(leaf) is True
    serial = aws_pca.serial_for_aws(leaf)
    assert serial == ":".join(f"{b:02x}" for b in leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 7)
                                                                              // 8, "big"))
    assert pca_revocations(moto.endpoint_url, sub_ca["arn"]) == {serial: "CESSATION_OF_OPERATION"}

    superseded, _ = pca(moto, sub_ca, revoke_on_destroy=True, revoke_reason="SUPERSEDED")
    second = issue(superseded).leaf
    assert superseded.revoke(second) is True
    assert pca_revocations(moto.endpoint_url, sub_ca["arn"])[aws_pca.serial_for_aws(second)] == "SUPERSEDED"


def test_an_expired_leaf_is_not_revoked(moto: MotoServer, sub_ca: dict[str, Any]) -> None:
    asked, _ = pca(moto, sub_ca, revoke_on_destroy=True)
    old = make_ca("Old", now=now() - dt.timedelta(days=400), days=30).cert
    assert asked.revoke(old) is False
    assert pca_revocations(moto.endpoint_url, sub_ca["arn"]) == {}


def test_revoking_at_a_disabled_ca_says_how_to_destroy_without(moto: MotoServer, sub_ca: dict[str, Any]) -> None:
    asked, _ = pca(moto, sub_ca, revoke_on_destroy=True)
    leaf = issue(asked).leaf
    client = boto3.client("acm-pca", region_name=REGION, endpoint_url=moto.endpoint_url)
    client.update_certificate_authority(CertificateAuthorityArn=sub_ca["arn"], Status="DISABLED")
    with pytest.raises(CertplaneError) as err:
        asked.revoke(leaf)
    text = one_line(err.value)
    assert text.startswith(f"aws_pca: revoking serial {aws_pca.serial_for_aws(leaf)} at {sub_ca['arn']}: "
                           "RevokeCertificate: InvalidStateException: ")
    assert text.endswith("(the CA is not ACTIVE (disabled, expired or pending its certificate): enable it, or name "
                         "another CA); to destroy without revoking, set revoke_on_destroy: false and run `pulumi "
                         "up` first")


def test_serials_are_whole_bytes() -> None:
    class Fake:
        serial_number = 0xABC

    assert aws_pca.serial_for_aws(Fake()) == "0a:bc"  # type: ignore[arg-type]


# --- what moto cannot do: a scripted acm-pca endpoint --------------------------------------------------------

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class ScriptedPca:
    """acm-pca's JSON protocol on 127.0.0.1: each operation answered by a function of its request; every
    request recorded as (operation, body)."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers, self.seen = answers, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                operation = self.headers["X-Amz-Target"].split(".")[-1]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                outer.seen.append((operation, body))
                status, answer = outer.answers[operation](body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def operations(self) -> list[str]:
        return [op for op, _ in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def active(_: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"CertificateAuthority": {"Arn": ARN, "Status": "ACTIVE", "CertificateAuthorityConfiguration": {
        "KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "x"}}}}


def error(code: str, message: str = "", status: int = 400) -> Answer:
    return lambda _: (status, {"__type": code, "message": message})


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, Answer]], ScriptedPca]]:
    for key, value in {"AWS_ACCESS_KEY_ID": "scripted", "AWS_SECRET_ACCESS_KEY": "scripted-secret"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 2)  # one retry: the backoff stays under a second
    made: list[ScriptedPca] = []

    def start(answers: dict[str, Answer]) -> ScriptedPca:
        made.append(ScriptedPca(answers))
        return made[-1]

    yield start
    for server in made:
        server.close()


def _issuer_at(url: str, **settings: Any) -> aws_pca.AwsPcaIssuer:
    parsed = issuers.REGISTRY.validate({"type": "aws_pca", "certificate_authority_arn": ARN, "endpoint_url": url,
                                        **settings})
    plugin = issuers.REGISTRY.plugin_of(parsed)
    return plugin.build(plugin.order_for(parsed, issuer="pca", challenge=None), None)


def test_throttling_is_retried_with_the_same_token_then_retryable(scripted: Any) -> None:
    server = scripted({"DescribeCertificateAuthority": active,
                       "IssueCertificate": error("ThrottlingException", "Rate exceeded")})
    with pytest.raises(RetryableError) as err:
        issue(_issuer_at(server.url))
    assert one_line(err.value) == (f"aws_pca: issuing www.example.test, example.test from {ARN}: IssueCertificate: "
                                   "ThrottlingException: Rate exceeded")
    issued = [body for op, body in server.seen if op == "IssueCertificate"]
    assert len(issued) == 2 and issued[0]["IdempotencyToken"] == issued[1]["IdempotencyToken"]
    assert issued[0]["SigningAlgorithm"] == "SHA256WITHECDSA"  # from the CA's EC_prime256v1 key


def test_a_certificate_still_in_progress_is_waited_for_then_retryable(scripted: Any) -> None:
    server = scripted({"DescribeCertificateAuthority": active,
                       "IssueCertificate": lambda _: (200, {"CertificateArn": f"{ARN}/certificate/abc"}),
                       "GetCertificate": error("RequestInProgressException", "not yet")})
    started = now()
    with pytest.raises(RetryableError) as err:
        issue(_issuer_at(server.url, issue_timeout_seconds=5))
    assert (now() - started).total_seconds() < 15
    assert one_line(err.value) == (f"aws_pca: issuing www.example.test, example.test from {ARN}: "
                                   f"{ARN}/certificate/abc was not issued within 5 s (AWS still says "
                                   "RequestInProgress): the next `pulumi up` asks again")
    assert server.operations().count("GetCertificate") == 5


@pytest.mark.parametrize(("operation", "code", "said"), [
    ("IssueCertificate", "InvalidStateException",
     "IssueCertificate: InvalidStateException: CA disabled (the CA is not ACTIVE (disabled, expired or pending its "
     "certificate): enable it, or name another CA)"),
    ("IssueCertificate", "AccessDeniedException",
     "IssueCertificate: AccessDeniedException: CA disabled (the credentials need acm-pca:IssueCertificate on this "
     "CA)"),
    ("GetCertificate", "AccessDeniedException",
     "GetCertificate: AccessDeniedException: CA disabled (the credentials need acm-pca:GetCertificate on this CA)"),
    ("IssueCertificate", "MalformedCSRException",
     "IssueCertificate: MalformedCSRException: CA disabled (AWS refused certplane's CSR: check the key type (rsa "
     "or ecdsa))"),
])
def test_aws_errors_are_one_line_naming_the_operation(scripted: Any, operation: str, code: str, said: str) -> None:
    answers: dict[str, Answer] = {"DescribeCertificateAuthority": active,
                                  "IssueCertificate": lambda _: (200, {"CertificateArn": f"{ARN}/certificate/abc"}),
                                  operation: error(code, "CA disabled")}
    server = scripted(answers)
    with pytest.raises(CertplaneError) as err:
        issue(_issuer_at(server.url))
    assert not isinstance(err.value, RetryableError)
    assert one_line(err.value) == f"aws_pca: issuing www.example.test, example.test from {ARN}: {said}"
    assert "scripted-secret" not in str(err.value)


def test_an_already_revoked_certificate_is_not_revoked_again(scripted: Any, moto: MotoServer,
                                                             root_ca: dict[str, str]) -> None:
    leaf = issue(pca(moto, root_ca)[0]).leaf
    server = scripted({"RevokeCertificate": error("RequestAlreadyProcessedException", "done")})
    assert _issuer_at(server.url, revoke_on_destroy=True).revoke(leaf) is False
    assert server.operations() == ["RevokeCertificate"]
