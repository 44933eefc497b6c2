"""Uploaded third-party bundles: accepted in any order, or rejected with one exact line per problem."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.core import certificates as x509util
from providers.core import clock
from providers.core import keys
from providers.core.bundles import validate_bundle
from providers.core.errors import BundleError

from tests.support.pki import NOW, make_ca, make_leaf

pem = x509util.to_pem
key_pem = keys.private_key_to_pem


@pytest.fixture(scope="module")
def pki():
    root = make_ca("Vendor Root")
    inter = make_ca("Vendor TLS CA", issuer=root, path_length=0)
    leaf = make_leaf(inter, ("legacy.example.test",), spec=keys.KeySpec("rsa", size=2048))
    return root, inter, leaf


def test_any_order_and_pem_mix_is_accepted_and_ordered(pki):
    root, inter, leaf = pki
    mixed = pem(root.cert) + "\nnotes from the vendor\n" + key_pem(leaf.key) + pem(inter.cert)
    bundle = validate_bundle(mixed, pem(leaf.cert), "", passphrase=None, now=NOW)
    assert bundle.leaf == leaf.cert
    assert list(bundle.chain) == [inter.cert, root.cert]


def test_reversed_chain_is_reordered_leaf_to_root(pki):
    root, inter, leaf = pki
    bundle = validate_bundle(pem(leaf.cert), pem(root.cert) + pem(inter.cert), key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert list(bundle.chain) == [inter.cert, root.cert]


def test_encrypted_key_with_its_passphrase(pki):
    _root, inter, leaf = pki
    enc = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"vendor-pass")).decode()
    bundle = validate_bundle(pem(leaf.cert), pem(inter.cert), enc, passphrase="vendor-pass", now=NOW)
    assert keys.same_public_key(bundle.key, leaf.cert.public_key())


def _weak_leaf(inter):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = x509util.sign_certificate(x509util.CertificateTemplate(dns_names=("weak.example.test",)),
                                     subject_public_key=weak.public_key(), signing_key=inter.key,
                                     issuer=inter.cert, now=NOW)
    return weak, cert


def _forged_intermediate(root):
    """Same name as the real intermediate, different key: signatures below it do not verify."""
    return make_ca("Vendor TLS CA", issuer=root, path_length=0)


BAD = {
    "mismatched key": (lambda r, i, l, o: (pem(l.cert), pem(i.cert), key_pem(o.key)),
                       "the private key does not match the certificate 'CN=legacy.example.test'"),
    "missing intermediate (leaf only)": (lambda r, i, l, o: (pem(l.cert), "", key_pem(l.key)),
                                         "missing intermediate: no certificate for 'CN=Vendor TLS CA', the issuer of "
                                         "'CN=legacy.example.test'; add the CA's intermediate certificate to the chain"),
    "missing intermediate (leaf + root)": (lambda r, i, l, o: (pem(l.cert), pem(r.cert), key_pem(l.key)),
                                           "missing intermediate: no certificate for 'CN=Vendor TLS CA', the issuer "
                                           "of 'CN=legacy.example.test'; add the CA's intermediate certificate to the "
                                           "chain"),
    "empty": (lambda r, i, l, o: ("", "", ""),
              "the certificate bundle is empty: give the certificate, its chain and its private key"),
    "garbage": (lambda r, i, l, o: ("this is not a certificate", "", "nor a key"),
                "no PEM data found: expected '-----BEGIN CERTIFICATE-----' blocks (DER, PKCS#7 and PFX are not "
                "accepted; convert with openssl)"),
    "corrupt certificate": (lambda r, i, l, o: ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "",
                                                key_pem(l.key)),
                            "certificate #1 is not a valid X.509 certificate"),
    "pkcs7": (lambda r, i, l, o: ("-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n", "", key_pem(l.key)),
              "unsupported PEM block 'PKCS7': give certificates and one private key"),
    "no key": (lambda r, i, l, o: (pem(l.cert), pem(i.cert), ""),
               "no private key found: give the certificate's private key as a PEM block"),
    "two keys": (lambda r, i, l, o: (pem(l.cert), pem(i.cert), key_pem(l.key) + key_pem(o.key)),
                 "found 2 private keys: give exactly one"),
    "unrelated certificate": (lambda r, i, l, o: (pem(l.cert), pem(i.cert) + pem(make_ca("Other Root").cert),
                                                  key_pem(l.key)),
                              "certificate 'CN=Other Root' is not part of the chain of 'CN=legacy.example.test'"),
    "bad signature": (lambda r, i, l, o: (pem(l.cert), pem(_forged_intermediate(r).cert), key_pem(l.key)),
                      "the signature of 'CN=legacy.example.test' does not verify with its issuer 'CN=Vendor TLS CA'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bundles_get_one_exact_line(pki, case):
    root, inter, leaf = pki
    other = make_leaf(inter, ("other.example.test",))
    build, message = BAD[case]
    with pytest.raises(BundleError) as err:
        validate_bundle(*build(root, inter, leaf, other), passphrase=None, now=NOW)
    assert str(err.value) == message
    assert "PRIVATE KEY" not in str(err.value)


def test_expired_and_not_yet_valid(pki):
    _root, inter, leaf = pki
    args = (pem(leaf.cert), pem(inter.cert), key_pem(leaf.key))
    with pytest.raises(BundleError) as expired:
        validate_bundle(*args, passphrase=None, now=NOW + dt.timedelta(days=91))
    assert str(expired.value) == (
        f"certificate 'CN=legacy.example.test' expired on {clock.rfc3339(leaf.cert.not_valid_after_utc)}")
    with pytest.raises(BundleError) as early:
        validate_bundle(*args, passphrase=None, now=NOW - dt.timedelta(days=1))
    assert str(early.value) == (
        f"certificate 'CN=legacy.example.test' is not valid until {clock.rfc3339(leaf.cert.not_valid_before_utc)}")


def test_rsa_1024_is_rejected(pki):
    _root, inter, _leaf = pki
    weak, cert = _weak_leaf(inter)
    weak_pem = weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()).decode()
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(cert), pem(inter.cert), weak_pem, passphrase=None, now=NOW)
    assert str(err.value) == "the RSA key is 1024 bits: at least 2048 bits are required"


def test_wrong_passphrase(pki):
    _root, inter, leaf = pki
    enc = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"right")).decode()
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), pem(inter.cert), enc, passphrase="wrong", now=NOW)
    assert str(err.value) == "the private key cannot be decrypted: wrong passphrase or not a PEM key"
