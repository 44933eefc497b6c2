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

from tests.support.pki import NOW, make_ca, make_chain, make_leaf, reissue

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
                "certificate_pem: no PEM data found: expected '-----BEGIN CERTIFICATE-----' blocks (DER, PKCS#7 and "
                "PFX are not accepted; convert with openssl)"),
    "corrupt certificate": (lambda r, i, l, o: ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "",
                                                key_pem(l.key)),
                            "certificate_pem: certificate #1 is not a valid X.509 certificate (corrupt or truncated "
                            "PEM)"),
    "pkcs7": (lambda r, i, l, o: ("-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n", "", key_pem(l.key)),
              "certificate_pem: a PKCS#7 bundle: give its certificates as PEM blocks instead (`openssl pkcs7 "
              "-print_certs`)"),
    "unknown block": (lambda r, i, l, o: ("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "", key_pem(l.key)),
                      "certificate_pem: unsupported PEM block 'FOO': give certificates and one private key"),
    "no key": (lambda r, i, l, o: (pem(l.cert), pem(i.cert), ""),
               "private_key_pem: no private key found: give the certificate's private key as a PEM block"),
    "two keys": (lambda r, i, l, o: (pem(l.cert), pem(i.cert), key_pem(l.key) + key_pem(o.key)),
                 "private_key_pem: found 2 private keys: give exactly one"),
    "two keys in two inputs": (lambda r, i, l, o: (pem(l.cert) + key_pem(o.key), pem(i.cert), key_pem(l.key)),
                               "private_key_pem: found 2 private keys: give exactly one"),
    "unrelated certificate": (lambda r, i, l, o: (pem(l.cert), pem(i.cert) + pem(make_ca("Other Root").cert),
                                                  key_pem(l.key)),
                              "chain_pem: certificate 'CN=Other Root' is not part of the chain of "
                              "'CN=legacy.example.test'"),
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
    assert str(err.value) == "private_key_pem: the RSA key is 1024 bits: at least 2048 bits are required"


def test_wrong_passphrase(pki):
    _root, inter, leaf = pki
    enc = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"right")).decode()
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), pem(inter.cert), enc, passphrase="wrong", now=NOW)
    assert str(err.value) == "private_key_pem: the private key cannot be decrypted: wrong passphrase or not a PEM key"


# --- real-world layouts: duplicates, fullchains, cross-signed roots ----------------------------------------

def _served(bundle):
    return [c for c in bundle.chain if not x509util.is_self_issued(c)]


def test_certbot_fullchain_as_certificate_and_chain_as_chain(pki):
    """certbot's `fullchain.pem` as the certificate and `chain.pem` as the chain: the intermediate twice."""
    root, inter, leaf = pki
    bundle = validate_bundle(pem(leaf.cert) + pem(inter.cert), pem(inter.cert), key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert bundle.leaf == leaf.cert
    assert list(bundle.chain) == [inter.cert]


def test_leaf_given_twice_and_fullchain_with_root(pki):
    root, inter, leaf = pki
    bundle = validate_bundle(pem(leaf.cert), pem(leaf.cert) + pem(root.cert) + pem(inter.cert) + pem(root.cert),
                             key_pem(leaf.key), passphrase=None, now=NOW)
    assert bundle.leaf == leaf.cert
    assert list(bundle.chain) == [inter.cert, root.cert]
    assert _served(bundle) == [inter.cert]


def test_a_combined_pem_beside_its_key_file_is_one_key(pki):
    """haproxy's combined PEM (certificate, chain and key in one file) given with the key file as well."""
    root, inter, leaf = pki
    bundle = validate_bundle(pem(leaf.cert) + pem(inter.cert) + key_pem(leaf.key), "", key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert (bundle.leaf, list(bundle.chain)) == (leaf.cert, [inter.cert])


def test_ec_parameters_before_the_key_are_ignored(pki):
    """`openssl ecparam -genkey` writes an EC PARAMETERS block before the key."""
    root, inter, leaf = pki
    params = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    bundle = validate_bundle(pem(leaf.cert), pem(inter.cert), params + key_pem(leaf.key), passphrase=None, now=NOW)
    assert bundle.leaf == leaf.cert


def test_leaf_first_fullchain_alone_is_split(pki):
    root, inter, leaf = pki
    bundle = validate_bundle(pem(leaf.cert) + pem(inter.cert) + pem(root.cert), "", key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert (bundle.leaf, list(bundle.chain)) == (leaf.cert, [inter.cert, root.cert])


@pytest.fixture(scope="module")
def cross():
    """A new root (self-signed) that an older root cross-signed, so old clients chain up to the old root."""
    old = make_ca("Old Root")
    new = make_ca("New Root")
    cross_signed = reissue(new, by=old)
    inter = make_ca("Issuing CA", issuer=new, path_length=0)
    leaf = make_leaf(inter, ("cross.example.test",))
    return old, new, cross_signed, inter, leaf


@pytest.mark.parametrize("order", ["inter cross root", "root cross inter", "cross root inter", "inter root cross"])
def test_cross_signed_root_beside_the_self_signed_one_is_served(cross, order):
    old, new, cross_signed, inter, leaf = cross
    given = {"inter": inter, "cross": cross_signed, "root": new}
    chain = "".join(pem(given[name].cert) for name in order.split())
    bundle = validate_bundle(pem(leaf.cert), chain, key_pem(leaf.key), passphrase=None, now=NOW)
    assert list(bundle.chain) == [inter.cert, cross_signed.cert]  # the path that verifies, up to the old root
    assert _served(bundle) == [inter.cert, cross_signed.cert]


def test_cross_signed_root_with_both_roots(cross):
    old, new, cross_signed, inter, leaf = cross
    chain = pem(new.cert) + pem(old.cert) + pem(cross_signed.cert) + pem(inter.cert)
    bundle = validate_bundle(pem(leaf.cert), chain, key_pem(leaf.key), passphrase=None, now=NOW)
    assert list(bundle.chain) == [inter.cert, cross_signed.cert, old.cert]
    assert _served(bundle) == [inter.cert, cross_signed.cert]


@pytest.mark.parametrize("forged_first", [True, False])
def test_intermediates_are_matched_by_signature_not_by_name(pki, forged_first):
    """A CA with the intermediate's name but another key is named (with its serial) as not belonging."""
    root, inter, leaf = pki
    forged = _forged_intermediate(root)
    chain = [forged.cert, inter.cert] if forged_first else [inter.cert, forged.cert]
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), x509util.chain_to_pem(chain), key_pem(leaf.key), passphrase=None, now=NOW)
    assert str(err.value) == (f"chain_pem: certificate 'CN=Vendor TLS CA' (serial {forged.cert.serial_number:x}) "
                              "is not part of the chain of 'CN=legacy.example.test'")


def test_two_levels_of_intermediates_in_any_order():
    root, (upper, lower) = make_chain(2)
    leaf = make_leaf(lower, ("deep.example.test",))
    bundle = validate_bundle(pem(root.cert) + pem(leaf.cert) + pem(upper.cert), pem(lower.cert) + pem(upper.cert),
                             key_pem(leaf.key), passphrase=None, now=NOW)
    assert list(bundle.chain) == [lower.cert, upper.cert, root.cert]


def test_two_copies_of_the_intermediate_serve_the_one_that_lasts(pki):
    """The CA re-issued its intermediate (same name and key, longer validity); the vendor sent both."""
    root, inter, leaf = pki
    short = reissue(inter, by=root, days=30, path_length=0)
    bundle = validate_bundle(pem(leaf.cert), pem(short.cert) + pem(inter.cert), key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert list(bundle.chain) == [inter.cert]


# --- expiry across the chain ------------------------------------------------------------------------------------

def test_intermediate_expiring_before_the_leaf_is_accepted_and_exposed(pki):
    root, inter, leaf = pki
    short = reissue(inter, by=root, days=30, path_length=0)
    bundle = validate_bundle(pem(leaf.cert), pem(short.cert), key_pem(leaf.key), passphrase=None, now=NOW)
    assert list(bundle.chain) == [short.cert]
    assert bundle.expires_first == short.cert
    assert bundle.earliest_expiry == short.cert.not_valid_after_utc < leaf.cert.not_valid_after_utc
    assert bundle.early_expiry() == (
        f"intermediate 'CN=Vendor TLS CA' expires {short.cert.not_valid_after_utc.date()}, before the leaf "
        f"({leaf.cert.not_valid_after_utc.date()})")


def test_a_chain_that_outlives_the_leaf_says_nothing(pki):
    root, inter, leaf = pki
    bundle = validate_bundle(pem(leaf.cert), pem(inter.cert) + pem(root.cert), key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert bundle.expires_first == leaf.cert
    assert bundle.earliest_expiry == leaf.cert.not_valid_after_utc
    assert bundle.early_expiry() is None


def test_an_expired_intermediate_is_refused(pki):
    root, inter, leaf = pki
    stale = reissue(inter, by=root, days=30, now=NOW - dt.timedelta(days=60), path_length=0)
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), pem(stale.cert), key_pem(leaf.key), passphrase=None, now=NOW)
    assert str(err.value) == (
        f"intermediate 'CN=Vendor TLS CA' expired on {clock.rfc3339(stale.cert.not_valid_after_utc)}: clients "
        "reject the chain; give the CA's current intermediate")
