"""Uploaded third-party certificates on the real engine: secret key config, preview-time validation."""

from __future__ import annotations

import json

import pytest
from pulumi import automation as auto

from providers.core import certificates as x509util
from providers.core import keys
from tests.support.pki import make_ca, make_leaf

from .harness import EngineProject

pytestmark = pytest.mark.integration


def vendor_files():
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    root = make_ca("Vendor Root", now=now)
    inter = make_ca("Vendor TLS CA", issuer=root, path_length=0, now=now)
    leaf = make_leaf(inter, ("legacy.example.test",), spec=keys.KeySpec("rsa", size=2048), now=now)
    other = make_leaf(inter, ("other.example.test",), now=now)
    files = {"certs/legacy.pem": x509util.to_pem(leaf.cert), "certs/legacy-chain.pem": x509util.to_pem(inter.cert)}
    return files, keys.private_key_to_pem(leaf.key), keys.private_key_to_pem(other.key), leaf


CONFIG = {"certificates": {"legacy": {
    "upload": {"certificate_file": "certs/legacy.pem", "chain_file": "certs/legacy-chain.pem"},
    "formats": ["pem", "pkcs12"], "tags": {"owner": "vendor-team"}}}}
KEY_PATH = "certplane:certificates.legacy.upload.private_key"


def test_upload_with_a_secret_key_from_config(tmp_path):
    files, key_pem, _other, leaf = vendor_files()
    project = EngineProject(tmp_path, CONFIG, files=files, secrets={KEY_PATH: key_pem})
    try:
        project.up()
        entry = project.outputs()["inventory"]["legacy"]
        assert entry["issuer"] == "upload"
        assert entry["domains"] == ["legacy.example.test"]
        assert entry["fingerprint_sha256"] == x509util.fingerprint_sha256(leaf.cert)
        state = project.export_text()
        body = key_pem.splitlines()[1]
        assert body not in state and "PRIVATE KEY-----" not in state
        assert body not in (project.dir / f"Pulumi.{project.stack_name}.yaml").read_text()
        downloads = project.outputs()["certificates"]["legacy"]
        assert x509util.load_certificates(downloads["fullchain_pem"])[0] == leaf.cert
    finally:
        project.destroy()


def test_mismatched_key_fails_preview_with_one_line_and_no_key(tmp_path):
    files, _key_pem, other_key, _leaf = vendor_files()
    project = EngineProject(tmp_path, CONFIG, files=files, secrets={KEY_PATH: other_key})
    with pytest.raises(auto.errors.CommandError) as err:
        project.preview()
    text = str(err.value)
    assert ("error: pulumi-python:dynamic/certplane:UploadedCertificate resource 'legacy' has a problem: upload: the private key does "
            "not match the certificate 'CN=legacy.example.test'") in text
    assert "PRIVATE KEY" not in text and other_key.splitlines()[1] not in text
    assert "Traceback" not in text
    state = json.loads(project.export_text())["deployment"]
    assert [r for r in state.get("resources") or [] if "dynamic" in r["type"]] == []
