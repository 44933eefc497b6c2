"""Every download format is read back by the tools users run: openssl and Java's keytool."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from providers.core import certificates as x509util
from providers.core import formats, keys

from tests.support.pki import make_ca, make_leaf

PASSWORD = "Changeit-123"


@pytest.fixture(scope="module", params=[keys.KeySpec("rsa", size=2048), keys.KeySpec("ecdsa", curve="P-256")],
                ids=["rsa", "ecdsa"])
def rendered(request):
    root = make_ca("Formats Root")
    inter = make_ca("Formats Intermediate", issuer=root, path_length=0)
    leaf = make_leaf(inter, ("formats.example.test",), spec=request.param)
    out = formats.render(["pem", "pkcs12", "jks", "der"], key=leaf.key, leaf=leaf.cert, chain=[inter.cert],
                         password=PASSWORD)
    return leaf, inter, out


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


def test_pem_outputs(rendered):
    leaf, inter, out = rendered
    assert out["fullchain_pem"] == out["cert_pem"] + out["chain_pem"]
    assert x509util.load_certificates(out["fullchain_pem"]) == [leaf.cert, inter.cert]
    assert keys.same_public_key(keys.load_private_key(out["private_key_pem"]), leaf.cert.public_key())


def test_pkcs12_reads_with_openssl(rendered, tmp_path):
    leaf, _inter, out = rendered
    p12 = tmp_path / "bundle.p12"
    p12.write_bytes(base64.b64decode(out["pkcs12_base64"]))
    res = run(["openssl", "pkcs12", "-in", str(p12), "-passin", f"pass:{PASSWORD}", "-nokeys"])
    assert res.returncode == 0, res.stderr
    certs = x509util.load_certificates(res.stdout)
    assert leaf.cert in certs and len(certs) == 2
    keyout = run(["openssl", "pkcs12", "-in", str(p12), "-passin", f"pass:{PASSWORD}", "-nocerts", "-nodes"])
    assert keyout.returncode == 0
    assert keys.same_public_key(keys.load_private_key(keyout.stdout[keyout.stdout.index("-----BEGIN"):]),
                                leaf.cert.public_key())
    bad = run(["openssl", "pkcs12", "-in", str(p12), "-passin", "pass:wrong", "-nokeys"])
    assert bad.returncode != 0


@pytest.mark.parametrize(("field", "storetype"), [("pkcs12_base64", "PKCS12"), ("jks_base64", "JKS")])
def test_keystores_read_with_keytool(rendered, tmp_path, field, storetype):
    assert shutil.which("keytool"), "keytool (OpenJDK) is installed by tools/bootstrap.sh"
    leaf, _inter, out = rendered
    store = tmp_path / f"store.{storetype.lower()}"
    store.write_bytes(base64.b64decode(out[field]))
    res = run(["keytool", "-list", "-v", "-keystore", str(store), "-storetype", storetype, "-storepass", PASSWORD])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PrivateKeyEntry" in res.stdout
    assert "Certificate chain length: 2" in res.stdout
    assert x509util.fingerprint_sha256(leaf.cert) in res.stdout


def test_der_is_the_leaf(rendered):
    from cryptography import x509

    leaf, _inter, out = rendered
    assert x509.load_der_x509_certificate(base64.b64decode(out["cert_der_base64"])) == leaf.cert


def test_unknown_format_is_rejected():
    from providers.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as err:
        formats.check_formats(["pem", "p7b"])
    assert str(err.value) == "unknown format 'p7b': use pem, pkcs12, jks, der"  # the caller names the field
