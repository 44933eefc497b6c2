from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.errors import InputProblems, InvalidInputError
from providers.core.validation import parse

from tests.support.pki import NOW, make_ca, make_leaf


def verify(leaf, intermediates, root, name, at=NOW):
    builder = PolicyBuilder().store(Store([root])).time(at + dt.timedelta(minutes=1))
    verifier = builder.build_server_verifier(x509.DNSName(name))
    return verifier.verify(leaf, intermediates)


@pytest.mark.parametrize("spec", [keys.KeySpec("rsa", size=2048), keys.KeySpec("ecdsa", curve="P-256"),
                                  keys.KeySpec("ecdsa", curve="P-384")])
def test_root_intermediate_leaf_chain_verifies(spec):
    root = make_ca("Root", spec=keys.KeySpec("ecdsa", curve="P-384"))
    inter = make_ca("Intermediate", issuer=root, path_length=0, days=1825)
    leaf = make_leaf(inter, ("www.example.test", "example.test"), spec=spec)
    chain = verify(leaf.cert, [inter.cert], root.cert, "example.test")
    assert [c.subject for c in chain] == [leaf.cert.subject, inter.cert.subject, root.cert.subject]


def test_wrong_hostname_fails_verification():
    root = make_ca()
    leaf = make_leaf(root, ("www.example.test",))
    with pytest.raises(VerificationError):
        verify(leaf.cert, [], root.cert, "other.example.test")


def test_leaf_extensions_san_eku_and_random_128_bit_serial():
    root = make_ca()
    key = keys.generate_private_key(keys.KeySpec("rsa", size=2048))
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(dns_names=("*.apps.example.test", "apps.example.test"),
                                     ip_addresses=("127.0.0.1",), client_auth=True, validity_days=30),
        subject_public_key=key.public_key(), signing_key=root.key, issuer=root.cert, now=NOW)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["*.apps.example.test", "apps.example.test"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment  # RSA
    assert cert.serial_number.bit_length() == 127 and cert.serial_number > 0
    assert cert.not_valid_after_utc - NOW == dt.timedelta(days=30)


def test_validity_is_capped_by_the_issuer():
    short_ca = make_ca("Short CA", days=10)
    leaf = make_leaf(short_ca, days=90)
    assert leaf.cert.not_valid_after_utc == short_ca.cert.not_valid_after_utc


def test_expired_issuer_is_refused():
    ca = make_ca("Old CA", days=1, now=NOW - dt.timedelta(days=5))
    with pytest.raises(InvalidInputError, match="the issuing CA certificate has expired"):
        make_leaf(ca)


def test_name_constraints_reject_names_outside_the_permitted_domain():
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    root_cert = x509util.sign_certificate(
        x509util.CertificateTemplate(common_name="Constrained Root", is_ca=True, validity_days=365,
                                     permitted_dns_domains=("example.test",)),
        subject_public_key=key.public_key(), signing_key=key, issuer=None, now=NOW)
    root = type("R", (), {"key": key, "cert": root_cert})()
    inside = make_leaf(root, ("a.example.test",))
    outside = make_leaf(root, ("evil.example.org",))
    verify(inside.cert, [], root_cert, "a.example.test")
    with pytest.raises(VerificationError):
        verify(outside.cert, [], root_cert, "evil.example.org")


def test_ed25519_private_ca_chain_checks_with_openssl(tmp_path):
    root = make_ca("Ed Root", spec=keys.KeySpec("ed25519"))
    leaf = make_leaf(root, ("ed.example.test",), spec=keys.KeySpec("ed25519"))
    (tmp_path / "root.pem").write_text(x509util.to_pem(root.cert))
    (tmp_path / "leaf.pem").write_text(x509util.to_pem(leaf.cert))
    out = subprocess.run(["openssl", "verify", "-attime", str(int(NOW.timestamp()) + 60), "-CAfile",
                          str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(": OK")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"domains": ["bad_name.example.test"]}, "domains: 'bad_name.example.test' is not a valid DNS name"),
        ({"domains": ["www.*.example.test"]}, "domains: 'www.*.example.test' is not a valid DNS name"),
        ({"domains": ["*.test"]}, "domains: wildcard '*.test' must cover a domain with at least two labels"),
        ({"domains": ["a.example.test", "A.example.test"]}, "domains: 'A.example.test' is listed twice"),
        ({"ip_addresses": ["300.1.1.1"]}, "ip_addresses: '300.1.1.1' is not an IP address"),
        ({}, "domains: a certificate needs at least one domain or IP address"),
        ({"is_ca": True}, "common_name: a certificate authority needs a common name"),
        ({"domains": ["a.example.test"], "validity_days": 0},
         "validity_days: must be a whole number of days from 1 to 36500"),
        ({"domains": ["a.example.test"], "colour": "blue"},
         "colour: unknown setting (known: domains, ip_addresses, common_name, organization, validity_days, "
         "client_auth, is_ca, path_length, permitted_dns_domains)"),
    ],
)
def test_bad_requests_name_the_field(raw, message):
    with pytest.raises(InputProblems) as err:
        parse(x509util.CertificateRequest, raw)
    assert err.value.lines == [message]


def test_pem_helpers_ignore_text_between_blocks():
    root = make_ca()
    text = "junk\n" + x509util.to_pem(root.cert) + "more junk\n" + x509util.to_pem(root.cert)
    assert len(x509util.load_certificates(text)) == 2
    assert x509util.fingerprint_sha256(root.cert).count(":") == 31
