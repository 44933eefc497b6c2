"""CSR mode on the real engine: a key certplane never generates (held by another team, an HSM). The CSR is made by
the real `openssl req`; certplane has the CA sign it, renews by submitting it again (a new serial, the same key),
and, when the key is given with the CSR (a secret), renders a PKCS#12 that `openssl pkcs12` reads and deploys it.
Without the key, the state has no private key at all and the certificate is published for whoever holds it."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support import csr as support_csr

from .harness import EngineProject, changed_steps, from_now

pytestmark = pytest.mark.integration


def openssl_csr(directory: Path, name: str, names: list[str]) -> tuple[Path, str]:
    """A CSR file made by openssl, and its key's PEM (the key kept by the test only, as its owner would)."""
    csr, key = support_csr.openssl_csr(directory, subject=f"/CN={names[0]}", san=support_csr.dns_san(names),
                                       name=name)
    return csr, key.read_text()


def spki(value: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return value.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_csr_is_signed_renewed_by_resubmitting_it_and_rendered_as_pkcs12(tmp_path: Path) -> None:
    hsm, certs = tmp_path / "hsm", tmp_path / "certs"
    hsm.mkdir()
    held_csr, held_key = openssl_csr(hsm, "held", ["held.example.test"])
    given_csr, given_key = openssl_csr(hsm, "given", ["given.example.test", "www.given.example.test"])
    project = EngineProject(tmp_path, {
        "issuers": {"ca": {"type": "private_ca", "common_name": "CSR Root"}},
        "certificates": {
            # the key stays with its owner: the names come from the CSR
            "held": {"issuer": "ca", "csr": {"file": str(held_csr)}},
            # the key is given too (a secret): keystores and deploys work
            "given": {"issuer": "ca", "domains": ["given.example.test", "www.given.example.test"],
                      "csr": {"file": str(given_csr)}, "formats": ["pem", "pkcs12"],
                      "bindings": [{"target": "disk"}]},
        },
        "targets": {"disk": {"type": "files", "directory": str(certs), "formats": ["pem"]}},
    }, secrets={"certplane:certificates.given.csr.private_key": given_key})
    try:
        project.up()
        out = project.outputs()["certificates"]
        held_leaf = x509.load_pem_x509_certificate(out["held"]["cert_pem"].encode())
        csr = x509.load_pem_x509_csr(held_csr.read_bytes())
        assert spki(held_leaf) == spki(csr), "the leaf is for the CSR's key"
        assert not out["held"].get("private_key_pem"), "certplane never had held's key"
        export = json.dumps(project.stack.export_stack().deployment)  # every secret shown
        assert held_key.splitlines()[1] not in export, "held's key is nowhere in state"
        held_state = [r for r in project.stack.export_stack().deployment["resources"]
                      if r.get("outputs", {}).get("name") == "held"]
        assert held_state and "PRIVATE KEY" not in json.dumps(held_state[0]["outputs"])

        # PKCS#12 of the given key, read by openssl with the generated keystore password
        p12 = tmp_path / "given.p12"
        p12.write_bytes(base64.b64decode(out["given"]["pkcs12_base64"]))
        read = subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-nodes", "-passin",
                               f"pass:{out['given']['keystore_password']}"],
                              capture_output=True, text=True, timeout=60)
        assert read.returncode == 0, read.stderr
        assert "BEGIN PRIVATE KEY" in read.stdout and "subject=CN = given.example.test" in read.stdout, read.stdout
        deployed_key = serialization.load_pem_private_key((certs / "given.key").read_bytes(), None)
        assert deployed_key.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo) == \
            spki(x509.load_pem_x509_csr(given_csr.read_bytes())), "the files target deploys the given key"
        served = x509.load_pem_x509_certificate((certs / "given.crt").read_bytes())
        assert spki(served) == spki(x509.load_pem_x509_csr(given_csr.read_bytes()))

        # Renewal submits the same CSR again: a new certificate for the same key
        due = {"CERTPLANE_NOW": from_now(75)}
        assert changed_steps(project.preview(due)).get("update", 0) >= 2
        project.up(due)
        renewed = x509.load_pem_x509_certificate(project.outputs()["certificates"]["held"]["cert_pem"].encode())
        assert renewed.serial_number != held_leaf.serial_number and spki(renewed) == spki(held_leaf)
    finally:
        project.destroy()


def test_a_csr_that_does_not_match_the_certificate_is_one_line_at_preview(tmp_path: Path) -> None:
    csr, _key = openssl_csr(tmp_path, "other", ["other.example.test"])
    project = EngineProject(tmp_path, {
        "issuers": {"ca": {"type": "private_ca", "common_name": "CSR Root"}},
        "certificates": {"www": {"issuer": "ca", "domains": ["www.example.test"], "csr": {"file": str(csr)}}},
    })
    with pytest.raises(Exception) as failed:
        project.preview()
    text = str(failed.value)
    assert "certplane:certificates.www.csr: the CSR names other.example.test; the certificate asks for " \
           "www.example.test" in text, text
    assert "Traceback" not in text
