"""Hostile and broken uploads: every one is one line naming the input that is wrong, never a traceback.

Wrong key types, encrypted keys without the right passphrase, DER / PKCS#7 / PFX given as text, cut PEM, garbage,
huge chains and chain loops; then hypothesis feeds mutated PEM and DER and checks that only certplane's own errors
come out."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, x25519
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.bundles import validate_bundle
from providers.core.errors import BundleError, CertplaneError, InvalidInputError
from providers.uploaded_certificate import UploadedCertificateProvider

from tests.support.pem_markers import PKCS8_FOOTER
from tests.support.pki import NOW, make_ca, make_chain, make_leaf, reissue

pem = x509util.to_pem
key_pem = keys.private_key_to_pem
MAX_CERTIFICATES = 20  # certificates in one bundle, leaf included
PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
PKCS8, TRADITIONAL, OPENSSH = (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.PrivateFormat.OpenSSH)
PLAIN = serialization.NoEncryption()
NO_PEM = ("no PEM data found: expected '-----BEGIN CERTIFICATE-----' blocks (DER, PKCS#7 and PFX are not accepted; "
          "convert with openssl)")
BINARY = ("not PEM text: this looks like binary DER or PKCS#12 (PFX) data; convert it to PEM with openssl "
          "(`openssl x509 -inform der`, `openssl pkcs12 -nodes`)")


@pytest.fixture(scope="module")
def pki():
    root = make_ca("Vendor Root")
    inter = make_ca("Vendor TLS CA", issuer=root, path_length=0)
    leaf = make_leaf(inter, ("legacy.example.test",))
    return root, inter, leaf


def _key_text(key, fmt=PKCS8, encryption=PLAIN):
    return key.private_bytes(PEM, fmt, encryption).decode()


def _csr(leaf):
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(leaf.cert.subject).sign(leaf.key, hashes.SHA256()))
    return csr.public_bytes(PEM).decode()


def _loop():
    """Two CAs that certify each other and no root: the path from the leaf never ends at a self-signed one."""
    a0, b0 = make_ca("Loop A"), make_ca("Loop B")
    a, b = reissue(a0, by=b0), reissue(b0, by=a0)
    return make_leaf(a0, ("loop.example.test",)), a, b


def _cut(text, keep):
    return text[:keep]


def _body_cut(text):
    """The BEGIN and END lines kept, half the base64 lost (a copy-paste that dropped lines)."""
    lines = text.strip().splitlines()
    return "\n".join([lines[0], *lines[1:len(lines) // 2], lines[-1]]) + "\n"


# (certificate, chain, key, passphrase) from the fixture, and the exact line.
HOSTILE = {
    "DER certificate given as text": (
        lambda r, i, l: (l.cert.public_bytes(DER).decode("latin-1"), pem(i.cert), key_pem(l.key), None),
        f"certificate_pem: {BINARY}"),
    "PFX given as text": (
        lambda r, i, l: (pem(l.cert), pkcs12.serialize_key_and_certificates(
            b"x", l.key, l.cert, [i.cert], PLAIN).decode("latin-1"), key_pem(l.key), None),
        f"chain_pem: {BINARY}"),
    "DER key given as text": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), l.key.private_bytes(DER, PKCS8, PLAIN).decode("latin-1"), None),
        f"private_key_pem: {BINARY}"),
    "PKCS#7 chain": (
        lambda r, i, l: (pem(l.cert), pkcs7.serialize_certificates([i.cert, r.cert], PEM).decode(), key_pem(l.key),
                         None),
        "chain_pem: a PKCS#7 bundle: give its certificates as PEM blocks instead (`openssl pkcs7 -print_certs`)"),
    "chain cut before its END line": (
        lambda r, i, l: (pem(l.cert), pem(r.cert) + _cut(pem(i.cert), 300), key_pem(l.key), None),
        "chain_pem: PEM block #2 ('CERTIFICATE') is truncated: its '-----END CERTIFICATE-----' line is missing"),
    "certificate cut in the middle of its base64": (
        lambda r, i, l: (_body_cut(pem(l.cert)), pem(i.cert), key_pem(l.key), None),
        "certificate_pem: certificate #1 is not a valid X.509 certificate (corrupt or truncated PEM)"),
    "chain missing its first lines": (
        lambda r, i, l: (pem(l.cert), pem(i.cert)[200:], key_pem(l.key), None),
        "chain_pem: '-----END CERTIFICATE-----' has no BEGIN line before it: the PEM text is cut"),
    "key cut before its END line": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _cut(key_pem(l.key), 100), None),
        "private_key_pem: the private key's PEM block is truncated: its END line is missing"),
    "key block ended by another label": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), key_pem(l.key).replace(PKCS8_FOOTER, "-----END CERTIFICATE-----"),
                         None),
        "private_key_pem: PEM block #1 begins as a private key but ends as 'CERTIFICATE': the PEM text is damaged"),
    "non-ASCII inside a certificate block": (
        lambda r, i, l: (pem(l.cert).replace("M", "\u041c", 1), pem(i.cert), key_pem(l.key), None),
        "certificate_pem: PEM block #1 ('CERTIFICATE') holds characters that are not base64: the PEM text is "
        "damaged"),
    "a lone surrogate": (
        lambda r, i, l: (pem(l.cert), pem(i.cert).replace("M", "\ud800"), key_pem(l.key), None),
        "chain_pem: PEM block #1 ('CERTIFICATE') holds characters that are not base64: the PEM text is damaged"),
    "garbage chain": (
        lambda r, i, l: (pem(l.cert), "see the attached zip", key_pem(l.key), None),
        f"chain_pem: {NO_PEM}"),
    "garbage key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), "hunter2", None),
        "private_key_pem: no PEM data found: expected the private key as a PEM block (DER and PFX are not "
        "accepted; convert with openssl)"),
    "a CSR instead of the certificate": (
        lambda r, i, l: (_csr(l), pem(i.cert), key_pem(l.key), None),
        "certificate_pem: a certificate signing request (CSR), not a certificate: give the certificate the CA "
        "issued"),
    "a public key instead of the private key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), keys.public_key_pem(l.key), None),
        "private_key_pem: a public key, not a private key: give the private key that goes with the certificate"),
    "a DSA key (PKCS#8)": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(dsa.generate_private_key(2048)), None),
        "private_key_pem: unsupported private key type: use RSA, ECDSA or Ed25519"),
    "a DSA key (traditional)": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(dsa.generate_private_key(2048), TRADITIONAL), None),
        "private_key_pem: a DSA key: use an RSA, ECDSA or Ed25519 key"),
    "an Ed448 key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(ed448.Ed448PrivateKey.generate()), None),
        "private_key_pem: unsupported private key type: use RSA, ECDSA or Ed25519"),
    "an X25519 key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(x25519.X25519PrivateKey.generate()), None),
        "private_key_pem: unsupported private key type: use RSA, ECDSA or Ed25519"),
    "an ECDSA key on secp256k1": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(ec.generate_private_key(ec.SECP256K1())), None),
        "private_key_pem: the ECDSA key is on curve secp256k1: TLS clients accept P-256, P-384 or P-521"),
    "an OpenSSH key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(l.key, OPENSSH), None),
        "private_key_pem: an OpenSSH key: convert it to PEM (PKCS#8) with `ssh-keygen -p -m PKCS8 -f FILE`"),
    "encrypted key, wrong passphrase": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(l.key, encryption=serialization.BestAvailableEncryption(
            b"right")), "wrong"),
        "private_key_pem: the private key cannot be decrypted: wrong passphrase or not a PEM key"),
    "encrypted key, no passphrase": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(l.key, encryption=serialization.BestAvailableEncryption(
            b"right")), None),
        "private_key_pem: the private key is encrypted: give its passphrase"),
    "encrypted key, a passphrase that cannot be encoded": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), _key_text(l.key, encryption=serialization.BestAvailableEncryption(
            b"right")), "\ud800"),
        "private_key_pem: the private key cannot be decrypted: wrong passphrase or not a PEM key"),
    "a passphrase for a plain key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert), key_pem(l.key), "vendor-pass"),
        "private_key_pem: the private key passphrase is not needed: the key is not encrypted"),
    "a CRL in the chain": (
        lambda r, i, l: (pem(l.cert), pem(i.cert) + "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
                         key_pem(l.key), None),
        "chain_pem: a certificate revocation list (CRL), not a certificate"),
    "two different leaves for one key": (
        lambda r, i, l: (pem(l.cert), pem(i.cert) + pem(_same_key_leaf(i, l)), key_pem(l.key), None),
        "chain_pem: certificate 'CN=other.example.test' also matches the private key: give only the certificate "
        "to serve"),
}


def _same_key_leaf(inter, leaf):
    return x509util.sign_certificate(x509util.CertificateTemplate(dns_names=("other.example.test",)),
                                     subject_public_key=leaf.key.public_key(), signing_key=inter.key,
                                     issuer=inter.cert, now=NOW)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_gets_one_line_naming_its_field(pki, case):
    build, message = HOSTILE[case]
    certificate, chain, key, passphrase = build(*pki)
    with pytest.raises(BundleError) as err:
        validate_bundle(certificate, chain, key, passphrase=passphrase, now=NOW)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
    assert "PRIVATE KEY" not in str(err.value)


def test_a_huge_chain_is_refused():
    root, cas = make_chain(MAX_CERTIFICATES + 1)
    leaf = make_leaf(cas[-1], ("deep.example.test",))
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), x509util.chain_to_pem([c.cert for c in cas[::-1]]), key_pem(leaf.key),
                        passphrase=None, now=NOW)
    assert str(err.value) == (
        f"chain_pem: {MAX_CERTIFICATES + 2} different certificates: a chain has at most {MAX_CERTIFICATES} (leaf, "
        "intermediates, root); give only the certificates from the leaf up to its root, not a CA bundle")


def test_a_chain_at_the_limit_is_accepted():
    root, cas = make_chain(MAX_CERTIFICATES - 1)
    leaf = make_leaf(cas[-1], ("deep.example.test",))
    bundle = validate_bundle(pem(leaf.cert), x509util.chain_to_pem([c.cert for c in cas]), key_pem(leaf.key),
                             passphrase=None, now=NOW)
    assert list(bundle.chain) == [c.cert for c in cas[::-1]]


def test_a_flood_of_pem_blocks_is_refused_before_parsing(pki):
    _root, inter, leaf = pki
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), pem(inter.cert) * 200, key_pem(leaf.key), passphrase=None, now=NOW)
    assert str(err.value) == "chain_pem: 200 PEM blocks: far more than a certificate chain holds"


def test_a_chain_loop_is_refused():
    leaf, a, b = _loop()
    with pytest.raises(BundleError) as err:
        validate_bundle(pem(leaf.cert), pem(b.cert) + pem(a.cert), key_pem(leaf.key), passphrase=None, now=NOW)
    assert str(err.value) == ("chain_pem: the chain loops: 'CN=Loop B' is issued by 'CN=Loop A', which is already "
                              "in the chain; give the chain from the leaf up to one root")


def test_the_provider_names_the_config_field(pki, monkeypatch):
    """What `pulumi preview` shows: `upload.<field>` for a problem in one input, `upload:` for the bundle."""
    root, inter, leaf = pki
    monkeypatch.setenv("CERTPLANE_NOW", "2026-11-27T12:00:00Z")
    news = {"name": "legacy", "certificate_pem": pem(leaf.cert), "chain_pem": pem(inter.cert) + pem(root.cert),
            "private_key_pem": key_pem(leaf.key), "passphrase": None, "formats": ["pem"]}
    p = UploadedCertificateProvider()
    assert p.check({}, news).failures == []

    def reasons(**over):
        return [f.reason for f in p.check({}, {**news, **over}).failures]

    assert reasons(chain_pem=_cut(pem(inter.cert), 300)) == [
        "upload.chain_file: PEM block #1 ('CERTIFICATE') is truncated: its '-----END CERTIFICATE-----' line is "
        "missing"]
    assert reasons(private_key_pem="hunter2") == [
        "upload.private_key: no PEM data found: expected the private key as a PEM block (DER and PFX are not "
        "accepted; convert with openssl)"]
    assert reasons(certificate_pem=leaf.cert.public_bytes(DER).decode("latin-1")) == [f"upload.certificate_file: "
                                                                                      f"{BINARY}"]
    assert reasons(chain_pem="") == [
        "upload: missing intermediate: no certificate for 'CN=Vendor TLS CA', the issuer of 'CN=legacy.example.test'; "
        "add the CA's intermediate certificate to the chain"]


def test_the_provider_notes_an_intermediate_that_expires_before_the_leaf(pki, monkeypatch, capfd):
    root, inter, leaf = pki
    short = reissue(inter, by=root, days=30, path_length=0)
    monkeypatch.setenv("CERTPLANE_NOW", "2026-11-27T12:00:00Z")
    news = {"name": "legacy", "certificate_pem": pem(leaf.cert), "chain_pem": pem(short.cert),
            "private_key_pem": key_pem(leaf.key), "passphrase": None, "formats": ["pem"]}
    assert UploadedCertificateProvider().check({}, news).failures == []
    assert (f"certplane: legacy: upload: intermediate 'CN=Vendor TLS CA' expires "
            f"{short.cert.not_valid_after_utc.date()}, before the leaf ({leaf.cert.not_valid_after_utc.date()})"
            in capfd.readouterr().err)


# --- hypothesis: mutated and random input never escapes as another exception ---------------------------------

CERTPLANE_ERRORS = (BundleError, InvalidInputError, CertplaneError)
# Bounded and reproducible: the same 200 examples each run, nothing written to the work tree.
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def material():
    root = make_ca("Fuzz Root")
    inter = make_ca("Fuzz CA", issuer=root, path_length=0)
    leaf = make_leaf(inter, ("fuzz.example.test",), spec=keys.KeySpec("rsa", size=2048))
    encrypted = leaf.key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"fuzz")).decode()
    return {
        "leaf": pem(leaf.cert), "inter": pem(inter.cert), "root": pem(root.cert),
        "key": key_pem(leaf.key), "traditional": _key_text(leaf.key, TRADITIONAL), "encrypted": encrypted,
        "der": leaf.cert.public_bytes(DER).decode("latin-1"),
        "leaf_der": leaf.cert.public_bytes(DER), "inter_der": inter.cert.public_bytes(DER),
        "pkcs7": pkcs7.serialize_certificates([inter.cert], PEM).decode(),
    }


def _mutate(text: str, data: st.DataObject) -> str:
    """One of: a byte flipped, a slice cut out, a slice duplicated, random text spliced in, the text truncated."""
    if not text:
        return data.draw(st.text(max_size=50))
    kind = data.draw(st.sampled_from(["flip", "cut", "dup", "splice", "truncate", "none"]))
    at = data.draw(st.integers(0, len(text) - 1))
    if kind == "flip":
        return text[:at] + chr(ord(text[at]) ^ data.draw(st.integers(1, 127))) + text[at + 1:]
    if kind == "cut":
        return text[:at] + text[at + data.draw(st.integers(1, 64)):]
    if kind == "dup":
        return text[:at] + text[at:at + data.draw(st.integers(1, 400))] + text[at:]
    if kind == "splice":
        return text[:at] + data.draw(st.text(max_size=40)) + text[at:]
    if kind == "truncate":
        return text[:at]
    return text


PIECES = ["leaf", "inter", "root", "key", "traditional", "encrypted", "der", "pkcs7"]


@FUZZ
@given(data=st.data())
def test_mutated_bundles_raise_only_certplane_errors(material, data):
    fields = []
    for _ in range(3):
        pieces = data.draw(st.lists(st.sampled_from(PIECES), max_size=4))
        text = "".join(material[p] for p in pieces)
        fields.append(_mutate(text, data) if data.draw(st.booleans()) else text)
    passphrase = data.draw(st.sampled_from([None, "fuzz", "wrong", ""]))
    now = NOW + dt.timedelta(days=data.draw(st.integers(-400, 400)))
    try:
        bundle = validate_bundle(*fields, passphrase=passphrase, now=now)
    except CERTPLANE_ERRORS as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert keys.same_public_key(bundle.key, bundle.leaf.public_key())


def _armor(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


@FUZZ
@given(data=st.data())
def test_mutated_der_inside_pem_raises_only_certplane_errors(material, data):
    """Bytes changed inside a certificate's DER: it may still parse, and fail later on its key, names or
    extensions (which cryptography reads lazily)."""
    which = data.draw(st.sampled_from(["leaf_der", "inter_der"]))
    der = bytearray(material[which])
    for _ in range(data.draw(st.integers(1, 3))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    mutant = _armor(bytes(der)) if data.draw(st.booleans()) else bytes(der).decode("latin-1")
    certificate, chain = (mutant, material["inter"]) if which == "leaf_der" else (material["leaf"], mutant)
    try:
        validate_bundle(certificate, chain + data.draw(st.sampled_from(["", material["root"]])), material["key"],
                        passphrase=None, now=NOW)
    except CERTPLANE_ERRORS as err:
        assert str(err) and "\n" not in str(err)


@FUZZ
@given(certificate=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))),
       chain=st.text(alphabet=st.sampled_from(list("-BEGINENDCERTIFICATE PRIVATEKY\nMIIA=/+0")), max_size=300),
       key=st.text(max_size=200))
def test_random_text_raises_only_certplane_errors(certificate, chain, key):
    try:
        validate_bundle(certificate, chain, key, passphrase=None, now=NOW)
    except CERTPLANE_ERRORS as err:
        assert str(err) and "\n" not in str(err)


# --- stack config: the same PEM rules, each line naming the config field -------------------------------------

def test_config_names_the_upload_file_with_broken_pem(pki, tmp_path):
    from components.config import ConfigProblems, parse_fleet

    root, inter, leaf = pki
    (tmp_path / "cert.pem").write_text(pkcs7.serialize_certificates([leaf.cert], PEM).decode())
    (tmp_path / "chain.pem").write_text(_cut(pem(inter.cert), 300))
    (tmp_path / "empty.pem").write_text("\n")
    (tmp_path / "key.pem").write_text(key_pem(leaf.key))
    raw = {"certificates": {
        "old": {"upload": {"certificate_file": "cert.pem", "chain_file": "chain.pem", "private_key_file": "key.pem"}},
        "inline": {"upload": {"certificate_file": "key.pem", "chain_file": "empty.pem", "private_key": "hunter2"}},
        "fine": {"upload": {"certificate_file": "key.pem", "private_key_file": "key.pem"}},
    }}
    with pytest.raises(ConfigProblems) as err:
        parse_fleet(raw, base_dir=tmp_path)
    assert err.value.lines == [
        "certplane:certificates.old.upload.certificate_file: a PKCS#7 bundle: give its certificates as PEM blocks "
        "instead (`openssl pkcs7 -print_certs`)",
        "certplane:certificates.old.upload.chain_file: PEM block #1 ('CERTIFICATE') is truncated: its "
        "'-----END CERTIFICATE-----' line is missing",
        "certplane:certificates.inline.upload.chain_file: empty.pem is empty",
        "certplane:certificates.inline.upload.private_key: no PEM data found: expected the private key as a PEM "
        "block (DER and PFX are not accepted; convert with openssl)"]
