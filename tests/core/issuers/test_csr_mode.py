"""Every issuer with a CSR given with the certificate (its key held elsewhere, or given too): private_ca signs the
CSR's public key, self_signed needs the key, aws_pca (on moto) and acme (on Pebble, DNS-01 via challtestsrv)
submit the CSR as it is; the leaf is always for the CSR's key. The CSRs are made by the real `openssl req`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from providers.core import certificates as x509util
from providers.core import issuers, keys
from providers.core.certificates import CertificateRequest, load_csr
from providers.core.errors import InvalidInputError
from providers.core.issuers import IssueRequest
from providers.core.issuers import aws_pca, self_signed
from tests.support.acme import challtestsrv_dns, new_account, verify_chain
from tests.support import csr as support_csr
from tests.support.pki import make_ca
from tools.servers.moto import MotoServer, create_private_ca
from tools.servers.pebble import PebbleServer

NAMES = ("www.csr.example.test", "csr.example.test")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def openssl_csr(tmp_path: Path, names: tuple[str, ...] = NAMES, newkey: tuple[str, ...] = support_csr.EC_P256,
                name: str = "hsm") -> tuple[x509.CertificateSigningRequest, str]:
    """(the CSR, its key's PEM)."""
    csr, key = support_csr.openssl_csr(tmp_path, subject=f"/O=HSM Team/CN={names[0]}",
                                       san=support_csr.dns_san(names), newkey=newkey, name=name)
    return load_csr(csr.read_text()), key.read_text()


def spki(value: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return value.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)


def plugin_for(settings: dict[str, Any]) -> tuple[Any, Any]:
    parsed = issuers.REGISTRY.validate(settings, field="issuers.x")
    plugin = issuers.REGISTRY.plugin_of(parsed)
    return plugin, plugin.order_for(parsed, issuer="x", challenge=None)


# --- IssueRequest ---------------------------------------------------------------------------------------------

def test_an_issue_request_checks_the_csr_against_the_names_and_the_key(tmp_path: Path) -> None:
    csr, key_pem = openssl_csr(tmp_path)
    request = IssueRequest("www", CertificateRequest(domains=NAMES), None, now(), csr)
    assert request.public_key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo) == spki(csr)
    assert request.csr_pem(["ignored.example.test"]) == csr.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(InvalidInputError) as err:
        IssueRequest("www", CertificateRequest(domains=NAMES[:1]), None, now(), csr)
    assert str(err.value) == ("csr_pem: the CSR names www.csr.example.test, csr.example.test; the certificate asks "
                              "for www.csr.example.test (only in the CSR: csr.example.test): make them the same")
    other = keys.generate_private_key(keys.KeySpec("ecdsa"))
    with pytest.raises(InvalidInputError, match=r"^key_pem: is not the CSR's private key"):
        IssueRequest("www", CertificateRequest(domains=NAMES), other, now(), csr)
    IssueRequest("www", CertificateRequest(domains=NAMES), keys.load_private_key(key_pem), now(), csr)
    with pytest.raises(InvalidInputError, match=r"^key_pem: a certificate needs its private key or a CSR"):
        IssueRequest("www", CertificateRequest(domains=NAMES), None, now())


def test_only_self_signed_needs_the_private_key() -> None:
    needs = {kind: type(issuers.REGISTRY.plugin_of(issuers.REGISTRY.validate(settings, field="x"))).needs_private_key
             for kind, settings in (("self_signed", {"type": "self_signed"}),
                                    ("private_ca", {"type": "private_ca", "common_name": "X"}))}
    assert needs == {"self_signed": True, "private_ca": False}
    from providers.core.issuers import acme
    assert not acme.PLUGIN.needs_private_key and not aws_pca.PLUGIN.needs_private_key


# --- private_ca, self_signed -------------------------------------------------------------------------------------

def test_private_ca_signs_the_csrs_public_key(tmp_path: Path) -> None:
    root = make_ca("CSR Root", now=now())
    intermediate = make_ca("CSR Intermediate", issuer=root, path_length=0, now=now())
    plugin, order = plugin_for({"type": "private_ca", "common_name": "CSR Root"})
    credentials = plugin.credentials.model_validate({
        "ca_cert_pem": x509util.to_pem(intermediate.cert),
        "ca_private_key_pem": keys.private_key_to_pem(intermediate.key),
        "ca_chain_pem": x509util.to_pem(root.cert)})
    csr, _ = openssl_csr(tmp_path, newkey=("-newkey", "rsa:2048"))
    plugin.check_csr(order, CertificateRequest(domains=NAMES), csr)
    issued = plugin.build(order, credentials).issue(
        IssueRequest("www", CertificateRequest(domains=NAMES, validity_days=30), None, now(), csr))
    assert spki(issued.leaf) == spki(csr)
    assert x509util.dns_names_of(issued.leaf) == list(NAMES)
    # the CA decides the subject from the request: the CSR's O= is not copied
    assert not issued.leaf.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    verify_chain(issued.leaf, list(issued.chain), x509util.to_pem(root.cert), NAMES[0])


def test_self_signed_with_a_csr_and_its_key_signs_with_the_key(tmp_path: Path) -> None:
    csr, key_pem = openssl_csr(tmp_path)
    issuer = self_signed.PLUGIN.build(self_signed.SelfSignedOrder(), None)
    issued = issuer.issue(IssueRequest("www", CertificateRequest(domains=NAMES), keys.load_private_key(key_pem),
                                       now(), csr))
    assert spki(issued.leaf) == spki(csr)
    assert issued.leaf.issuer == issued.leaf.subject and issued.chain == ()
    issued.leaf.verify_directly_issued_by(issued.leaf)


def test_self_signed_without_the_key_is_refused(tmp_path: Path) -> None:
    csr, _ = openssl_csr(tmp_path)
    issuer = self_signed.PLUGIN.build(self_signed.SelfSignedOrder(), None)
    with pytest.raises(InvalidInputError) as err:
        issuer.issue(IssueRequest("www", CertificateRequest(domains=NAMES), None, now(), csr))
    assert str(err.value) == ("key_pem: a self-signed certificate is signed by its own key: give key_pem with the "
                              "CSR, or use a CA")


# --- aws_pca on moto -------------------------------------------------------------------------------------------

def test_aws_pca_submits_the_csr_as_is_and_its_token_follows_the_csr(moto: MotoServer, tmp_path: Path,
                                                                      calls: list[Any]) -> None:
    ca = create_private_ca(moto.endpoint_url, "us-east-1", "CSR Root PCA")
    plugin, order = plugin_for({"type": "aws_pca", "certificate_authority_arn": ca["arn"],
                                "endpoint_url": moto.endpoint_url})
    issuer = plugin.build(order, None)
    csr, _ = openssl_csr(tmp_path, name="a")
    again, _ = openssl_csr(tmp_path, name="b")  # another key: another request
    request = CertificateRequest(domains=NAMES, validity_days=90)
    plugin.check_csr(order, request, csr)
    first = issuer.issue(IssueRequest("www", request, None, now(), csr))
    issuer.issue(IssueRequest("www", request, None, now(), csr))
    other = issuer.issue(IssueRequest("www", request, None, now(), again))
    assert spki(first.leaf) == spki(csr) and spki(other.leaf) == spki(again)
    assert sorted(x509util.dns_names_of(first.leaf)) == sorted(NAMES)
    sent = [params for name, params in calls if name == "IssueCertificate"]
    assert sent[0]["Csr"] == csr.public_bytes(serialization.Encoding.PEM)
    tokens = [p["IdempotencyToken"] for p in sent]
    assert tokens[0] == tokens[1] != tokens[2]
    assert tokens[0] == aws_pca.idempotency_token(order, request, csr.public_key(), sent[0]["SigningAlgorithm"], csr)  # type: ignore[arg-type]
    # the same key in a new CSR (another subject) is a new request, and neither is the token of the key alone
    assert tokens[0] != aws_pca.idempotency_token(order, request, csr.public_key(), sent[0]["SigningAlgorithm"])  # type: ignore[arg-type]


def test_aws_pca_refuses_an_ed25519_csr_at_preview(moto: MotoServer, tmp_path: Path) -> None:
    plugin, order = plugin_for({"type": "aws_pca", "endpoint_url": moto.endpoint_url,
                                "certificate_authority_arn": "arn:aws:acm-pca:us-east-1:123456789012:"
                                "certificate-authority/0d0f3a6e-1111-2222-3333-444455556666"})
    csr, _ = openssl_csr(tmp_path, newkey=("-newkey", "ed25519"))
    with pytest.raises(InvalidInputError, match=r"^csr_pem: the CSR's key is Ed25519, which AWS Private CA does not "
                                                r"sign"):
        plugin.check_csr(order, CertificateRequest(domains=NAMES), csr)


# --- acme on Pebble ----------------------------------------------------------------------------------------------

def test_acme_issuer_orders_with_the_csr_and_renews_with_it_again(pebble: PebbleServer, tmp_path: Path) -> None:
    _client, account_key, url = new_account(pebble)
    plugin, order = plugin_for({"type": "acme", "directory_url": pebble.directory_url,
                                "ca_bundle": str(pebble.ca_bundle_path), "dns": challtestsrv_dns(pebble)})
    credentials = plugin.credentials.model_validate({"account_key_pem": keys.private_key_to_pem(account_key),
                                                     "account_url": url})
    csr, _ = openssl_csr(tmp_path, newkey=("-newkey", "rsa:2048"))
    request = CertificateRequest(domains=NAMES)
    plugin.check_csr(order, request, csr)
    issuer = plugin.build(order, credentials)
    first = issuer.issue(IssueRequest("www", request, None, now(), csr))
    renewed = issuer.issue(IssueRequest("www", request, None, now(), csr))  # a renewal: the same CSR again
    assert spki(first.leaf) == spki(renewed.leaf) == spki(csr)
    assert first.leaf.serial_number != renewed.leaf.serial_number
    assert sorted(x509util.dns_names_of(renewed.leaf)) == sorted(NAMES)
    verify_chain(renewed.leaf, list(renewed.chain), pebble.root_pem, NAMES[0])


def test_acme_refuses_an_ed25519_csr_at_preview(tmp_path: Path) -> None:
    plugin, order = plugin_for({"type": "acme", "directory_url": "https://acme.example.test/directory",
                                "dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:1"}})
    csr, _ = openssl_csr(tmp_path, newkey=("-newkey", "ed25519"))
    with pytest.raises(InvalidInputError) as err:
        plugin.check_csr(order, CertificateRequest(domains=NAMES), csr)
    assert str(err.value) == "csr_pem: ACME CAs do not accept Ed25519 keys: use rsa or ecdsa"
