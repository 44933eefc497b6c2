"""CSR mode: a certificate requested with a CSR whose key certplane may never see. load_csr against CSRs made by
the real `openssl req` and by cryptography, and what it refuses; the names a CSR asks for; the checks of a CSR
against the certificate's request and a key given with it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.certificates import (CertificateRequest, check_csr_key, check_csr_request, csr_names,
                                         load_csr)
from providers.core.errors import InvalidInputError
from tests.support import csr as support_csr
from tests.support.pki import make_ca


def openssl_csr(tmp_path: Path, newkey: list[str], subject: str, san: str | None, name: str = "req") -> tuple[str, str]:
    """(CSR PEM, key PEM) made by the openssl binary."""
    csr, key = support_csr.openssl_csr(tmp_path, subject=subject, san=san, newkey=newkey, name=name)
    return csr.read_text(), key.read_text()


def crypto_csr(key: keys.PrivateKey | ec.EllipticCurvePrivateKey, dns: list[str], *, cn: str | None = None,
               ips: list[str] | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips or ()]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, keys.signature_hash(key)).public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[arg-type]


def refusal(pem: str) -> str:
    with pytest.raises(InvalidInputError) as err:
        load_csr(pem)
    text = str(err.value)
    assert "\n" not in text
    return text


# --- load_csr ---------------------------------------------------------------------------------------------------

def test_openssl_rsa_and_ec_csrs_load(tmp_path: Path) -> None:
    rsa_pem, rsa_key = openssl_csr(tmp_path, ["-newkey", "rsa:2048"], "/CN=www.example.test",
                                   "DNS:www.example.test,DNS:example.test", "rsa")
    ec_pem, ec_key = openssl_csr(tmp_path, ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
                                 "/O=Example/CN=api.example.test", "DNS:api.example.test,IP:10.0.0.7", "ec")
    rsa_csr, ec_csr = load_csr(rsa_pem), load_csr(ec_pem)
    assert isinstance(rsa_csr.public_key(), rsa.RSAPublicKey)
    assert csr_names(rsa_csr) == (("www.example.test", "example.test"), ())
    assert isinstance(ec_csr.public_key(), ec.EllipticCurvePublicKey)
    assert csr_names(ec_csr) == (("api.example.test",), ("10.0.0.7",))
    check_csr_key(rsa_csr, keys.load_private_key(rsa_key))
    check_csr_key(ec_csr, keys.load_private_key(ec_key))


def test_new_certificate_request_label_and_surrounding_text_load(tmp_path: Path) -> None:
    key = keys.generate_private_key(keys.KeySpec("ed25519"))
    pem = crypto_csr(key, ["a.example.test"])
    old_style = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
    csr = load_csr("Subject: a.example.test\n" + old_style)
    assert csr.public_bytes(serialization.Encoding.PEM).decode() == pem
    check_csr_key(csr, key)


def test_a_certificate_is_refused_as_a_certificate() -> None:
    ca = make_ca("Not A Request")
    assert refusal(x509util.to_pem(ca.cert)) == (
        "is a certificate, not a certificate request: give the CSR (-----BEGIN CERTIFICATE REQUEST-----)")


def test_garbage_and_a_private_key_are_refused_without_echo() -> None:
    assert refusal("hello world") == "is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)"
    assert refusal("") == "is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)"
    key_pem = keys.private_key_to_pem(keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256")))
    text = refusal(key_pem)
    assert text.startswith("is a private key, not a certificate request")
    body = key_pem.splitlines()[1]
    assert body[:16] not in text
    broken = "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n"
    assert refusal(broken) == "is not a valid certificate request: its PEM does not decode"
    two = crypto_csr(keys.generate_private_key(keys.KeySpec("ecdsa")), ["a.example.test"]) * 2
    assert refusal(two) == "holds 2 certificate requests: give one"


def test_a_tampered_signature_is_refused() -> None:
    pem = crypto_csr(keys.generate_private_key(keys.KeySpec("rsa", size=2048)), ["t.example.test"])
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature BIT STRING
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    assert refusal(tampered) == ("the certificate request's signature does not verify: it was altered or not "
                                 "signed by its own key; make it again")


def test_weak_keys_are_refused(tmp_path: Path) -> None:
    weak, _ = openssl_csr(tmp_path, ["-newkey", "rsa:1024"], "/CN=weak.example.test", None, "weak")
    assert refusal(weak) == ("the CSR's RSA key has 1024 bits, too weak: use RSA of 2048 bits or more, ECDSA "
                             "P-256 or P-384, or Ed25519")
    p521 = crypto_csr(ec.generate_private_key(ec.SECP521R1()), ["p521.example.test"])
    assert refusal(p521) == ("the CSR's ECDSA key is on secp521r1: use RSA of 2048 bits or more, ECDSA P-256 or "
                             "P-384, or Ed25519")


# --- csr_names ----------------------------------------------------------------------------------------------------

def test_csr_names_adds_a_dns_common_name_lowercased_once() -> None:
    key = keys.generate_private_key(keys.KeySpec("ecdsa"))
    csr = load_csr(crypto_csr(key, ["WWW.Example.test", "b.example.test", "www.example.test"], cn="Apex.Example.Test",
                              ips=["192.0.2.1", "2001:db8::1"]))
    assert csr_names(csr) == (("www.example.test", "b.example.test", "apex.example.test"),
                              ("192.0.2.1", "2001:db8::1"))
    human = load_csr(crypto_csr(key, ["a.example.test"], cn="My Service"))
    assert csr_names(human) == (("a.example.test",), ())
    ip_cn = load_csr(crypto_csr(key, [], cn="10.1.2.3", ips=["10.1.2.3"]))
    assert csr_names(ip_cn) == ((), ("10.1.2.3",))
    only_cn = load_csr(crypto_csr(key, [], cn="legacy.example.test"))
    assert csr_names(only_cn) == (("legacy.example.test",), ())


# --- check_csr_request, check_csr_key ---------------------------------------------------------------------------

def test_check_csr_request_accepts_the_same_names_in_any_order_and_case() -> None:
    key = keys.generate_private_key(keys.KeySpec("ecdsa"))
    csr = load_csr(crypto_csr(key, ["b.example", "A.example"], ips=["10.0.0.1"]))
    check_csr_request(csr, CertificateRequest(domains=("a.example", "b.example"), ip_addresses=("10.0.0.1",)))


def test_check_csr_request_names_what_differs() -> None:
    key = keys.generate_private_key(keys.KeySpec("ecdsa"))
    csr = load_csr(crypto_csr(key, ["a.example", "b.example"]))
    with pytest.raises(InvalidInputError) as err:
        check_csr_request(csr, CertificateRequest(domains=("a.example",)))
    assert err.value.field == "csr_pem"
    assert str(err.value) == ("csr_pem: the CSR names a.example, b.example; the certificate asks for a.example "
                              "(only in the CSR: b.example): make them the same")
    with pytest.raises(InvalidInputError) as err:
        check_csr_request(csr, CertificateRequest(domains=("a.example", "c.example"), ip_addresses=("10.0.0.2",)))
    assert str(err.value) == ("csr_pem: the CSR names a.example, b.example; the certificate asks for a.example, "
                              "c.example, 10.0.0.2 (only in the CSR: b.example; not in the CSR: c.example, "
                              "10.0.0.2): make them the same")


def test_check_csr_key_compares_the_public_keys() -> None:
    key, other = (keys.generate_private_key(keys.KeySpec("ecdsa")) for _ in range(2))
    csr = load_csr(crypto_csr(key, ["k.example.test"]))
    check_csr_key(csr, key)
    with pytest.raises(InvalidInputError) as err:
        check_csr_key(csr, other)
    assert str(err.value) == ("key_pem: is not the CSR's private key: give the key the CSR was made with, or leave "
                              "key_pem out")


def test_issued_mismatch_takes_a_public_key() -> None:
    key = keys.generate_private_key(keys.KeySpec("ecdsa"))
    leaf = x509util.sign_certificate(x509util.CertificateTemplate(dns_names=("m.example.test",)),
                                     subject_public_key=key.public_key(), signing_key=key, issuer=None,
                                     now=dt.datetime.now(dt.timezone.utc))
    assert x509util.issued_mismatch(leaf, key.public_key(), ["m.example.test"]) is None
    assert x509util.issued_mismatch(leaf, key, ["m.example.test"]) is None
    other = keys.generate_private_key(keys.KeySpec("ecdsa")).public_key()
    assert x509util.issued_mismatch(leaf, other, ["m.example.test"]) == (
        "the CA returned a certificate for another public key than the CSR's; refusing it")


def test_fingerprint_hash_is_sha256() -> None:
    key = keys.generate_private_key(keys.KeySpec("ecdsa"))
    csr = load_csr(crypto_csr(key, ["f.example.test"]))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(csr.public_bytes(serialization.Encoding.DER))
    assert x509util.csr_fingerprint(csr) == digest.finalize().hex()
