"""Local step-ca (smallstep's open-source CA, github.com/smallstep/certificates) with an ACME provisioner on free
127.0.0.1 ports: the second, independent ACME server the engine test runs against (docs/ACME-SERVERS.md).

No `step` CLI is needed: the root and intermediate CA are generated here (ECDSA P-256, with `cryptography`) and
`ca.json` is written by hand. step-ca's own HTTPS listener is issued by that intermediate for 127.0.0.1 and
localhost, so `ca_bundle_path` (the root) is both what the ACME client trusts and the root every issued chain
ends under. DNS-01 lookups go to `--resolver` (its own pebble-challtestsrv by default, or e.g. a BIND address);
HTTP-01 connects to `http01_port` (`--insecure --acme-http-port`, step-ca's testing switch). Revocations are
visible through the CRL (`revoked_serials()`), regenerated on every revoke. Every wait is bounded; `stop()`
always stops both processes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from . import ManagedServer, end_process, free_port
from .pebble import ChalltestsrvDns

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools" / "bin"
PROVISIONER = "acme"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def _ca_cert(subject: str, key: ec.EllipticCurvePrivateKey, *, issuer: x509.Certificate | None = None,
             issuer_key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
    """A CA certificate: self-signed root (no issuer) or an intermediate (path length 0) under `issuer`."""
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certplane tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder().subject_name(name)
        .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else 1), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class StepCaServer(ChalltestsrvDns, ManagedServer):
    """step-ca + (by default) pebble-challtestsrv for DNS. Use as a context manager, or `start()` / `stop()`.

    - `http01_port`: where step-ca's validator connects for HTTP-01 (default: a free port; you serve it).
    - `dns_server`: where step-ca resolves names (host:port; default: its own challtestsrv, which answers A
      127.0.0.1 for every name and serves the TXT records set through `challtestsrv_url`).
    - `validity`: lifetime of issued certificates (default 90 days, like Pebble's default profile; step-ca's own
      default is 24 hours).
    - `workdir` (kept on stop when given) holds the CA, ca.json, the bbolt database and the logs.
    """

    def __init__(self, *, http01_port: int | None = None, dns_server: str | None = None,
                 validity: dt.timedelta = dt.timedelta(days=90), start_timeout: float = 30.0,
                 workdir: Path | None = None, acme_port: int | None = None, dns_port: int | None = None,
                 challtestsrv_port: int | None = None) -> None:
        self.http01_port = http01_port or free_port()
        self.validity = validity
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="certplane-stepca-"))
        self.acme_port = acme_port or free_port()
        self.own_dns = dns_server is None
        self.dns_port = dns_port or free_port()
        self.challtestsrv_port = challtestsrv_port or free_port()
        self.dns_server = dns_server or f"127.0.0.1:{self.dns_port}"
        self.root_path = self.workdir / "root_ca.crt"
        self.ca_bundle_path = self.root_path
        self.root_pem = ""
        self._procs: list[subprocess.Popen[bytes]] = []

    # --- addresses -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}"

    @property
    def directory_url(self) -> str:
        return f"{self.base_url}/acme/{PROVISIONER}/directory"


    # --- lifecycle ---------------------------------------------------------------------------------------
    def _write_ca(self) -> Path:
        root_key, int_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        root = _ca_cert("certplane local step-ca root", root_key)
        intermediate = _ca_cert("certplane local step-ca intermediate", int_key, issuer=root, issuer_key=root_key)
        self.root_pem = root.public_bytes(serialization.Encoding.PEM).decode()
        self.root_path.write_text(self.root_pem)
        int_path, int_key_path = self.workdir / "intermediate_ca.crt", self.workdir / "intermediate_ca.key"
        int_path.write_bytes(intermediate.public_bytes(serialization.Encoding.PEM))
        _write_key(int_key_path, int_key)
        hours = f"{int(self.validity.total_seconds() // 3600)}h"
        claims = {"minTLSCertDuration": "5m", "maxTLSCertDuration": hours, "defaultTLSCertDuration": hours}
        config: dict[str, Any] = {
            "root": str(self.root_path),
            "crt": str(int_path),
            "key": str(int_key_path),
            "address": f"127.0.0.1:{self.acme_port}",
            "dnsNames": ["127.0.0.1", "localhost"],
            "logger": {"format": "text"},
            "db": {"type": "bbolt", "dataSource": str(self.workdir / "db.bolt")},
            "crl": {"enabled": True, "generateOnRevoke": True},
            "authority": {
                "claims": claims,
                "provisioners": [{"type": "ACME", "name": PROVISIONER, "claims": claims,
                                  "challenges": ["http-01", "dns-01"]}],
            },
            "tls": {"minVersion": 1.2, "maxVersion": 1.3, "renegotiation": False},
        }
        path = self.workdir / "ca.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self._write_ca()
        if self.own_dns:
            self._start_challtestsrv()
        env = {**os.environ, "STEPPATH": str(self.workdir / "step")}
        self._spawn([str(BIN / "step-ca"), str(config_path), "--resolver", self.dns_server,
                     "--insecure", "--acme-http-port", str(self.http01_port)], "step-ca", env=env)
        self._wait_http(self.directory_url, what="step-ca")

    def stop(self) -> None:
        for proc in reversed(self._procs):  # step-ca first (it closes its database), then challtestsrv
            end_process(proc, timeout=10)
        self._procs.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- helpers for tests -----------------------------------------------------------------------------
    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base_url + path, timeout=10, context=self._ssl_context()) as r:
            return bytes(r.read())

    def crl(self) -> x509.CertificateRevocationList:
        """step-ca's current CRL (regenerated on every revocation: `generateOnRevoke`)."""
        return x509.load_der_x509_crl(self.get("/crl"))

    def revoked_serials(self) -> dict[int, x509.ReasonFlags | None]:
        """{serial: reason} of every certificate step-ca has revoked."""
        out: dict[int, x509.ReasonFlags | None] = {}
        for entry in self.crl():
            try:
                reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = None
            out[entry.serial_number] = reason
        return out



__all__ = ["PROVISIONER", "StepCaServer"]
