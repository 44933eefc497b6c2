"""Local Pebble ACME CA + pebble-challtestsrv on free 127.0.0.1 ports, for tests and the demo.

Pebble's own TLS listener gets a certificate generated here (not the test cert shipped with Pebble, which
expires in 2027), so `ca_bundle_path` is under our control. Every wait is bounded; `stop()` always kills both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
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

from . import ManagedServer, SpawnedProcesses, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools" / "bin"
DEFAULT_PROFILES = {
    "default": {"description": "90 days", "validityPeriod": 90 * 86400},
    "shortlived": {"description": "6 days", "validityPeriod": 6 * 86400},
}


def _tls_pair(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA certificate for 127.0.0.1/localhost: the CA bundle for Pebble's HTTPS endpoints."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certplane local pebble")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pebble-tls.pem", directory / "pebble-tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return cert_path, key_path


class ChalltestsrvDns(SpawnedProcesses):
    """pebble-challtestsrv as a test CA's DNS (A 127.0.0.1 for every name; TXT records set through its
    management API) and optionally its HTTP-01 responder. Subclasses set `dns_port`, `challtestsrv_port` and
    `root_pem`."""

    dns_port: int
    challtestsrv_port: int
    root_pem: str

    @property
    def challtestsrv_url(self) -> str:
        return f"http://127.0.0.1:{self.challtestsrv_port}"

    @property
    def challtestsrv_dns(self) -> str:
        """challtestsrv's DNS server (host:port) — also the resolver tests check propagation against."""
        return f"127.0.0.1:{self.dns_port}"

    def _start_challtestsrv(self, http01: str = "") -> None:
        """`http01`: where challtestsrv answers HTTP-01 ("" : not at all; the test serves it)."""
        self._spawn([str(BIN / "pebble-challtestsrv"), "-http01", http01, "-https01", "", "-tlsalpn01", "",
                     "-doh", "", "-dnsserver", self.challtestsrv_dns,
                     "-management", f"127.0.0.1:{self.challtestsrv_port}",
                     "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], "challtestsrv")
        self._wait_http(self.challtestsrv_url + "/", what="pebble-challtestsrv", any_status=True)

    def challtestsrv(self, path: str, **body: Any) -> bytes:
        """POST to challtestsrv's management API, e.g. `challtestsrv("/set-cname", host=..., target=...)`."""
        req = urllib.request.Request(self.challtestsrv_url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return bytes(r.read())

    def root_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_pem.encode())


class PebbleServer(ChalltestsrvDns, ManagedServer):
    """Pebble + challtestsrv. Use as a context manager, or call `start()` / `stop()`.

    - `http01_port`: the port Pebble's VA connects to for HTTP-01 (default: a free port).
    - `challtestsrv_http01`: let challtestsrv answer HTTP-01 on that port (False: you serve it yourself).
    - `dns_server`: where Pebble's VA resolves names (default: challtestsrv's DNS; e.g. a BIND address).
    - ports default to free ones; `workdir` (kept on stop when given) holds config, TLS pair, root and logs.
    - `eab_keys` {kid: base64url HMAC key}, `eab_required`, `domain_blocklist`, `profiles`,
      `nonce_reject` (PEBBLE_WFE_NONCEREJECT %), `authz_reuse` (PEBBLE_AUTHZREUSE %).
    """

    def __init__(self, *, http01_port: int | None = None, challtestsrv_http01: bool = False,
                 dns_server: str | None = None, eab_keys: dict[str, str] | None = None,
                 eab_required: bool = False, domain_blocklist: list[str] | None = None,
                 profiles: dict[str, Any] | None = None, nonce_reject: int = 0, authz_reuse: int = 0,
                 start_timeout: float = 20.0, workdir: Path | None = None, acme_port: int | None = None,
                 management_port: int | None = None, dns_port: int | None = None,
                 challtestsrv_port: int | None = None) -> None:
        self.http01_port = http01_port or free_port()
        self.challtestsrv_http01 = challtestsrv_http01
        self.eab_keys = dict(eab_keys or {})
        self.eab_required = eab_required
        self.domain_blocklist = list(domain_blocklist or [])
        self.profiles = profiles or DEFAULT_PROFILES
        self.nonce_reject = nonce_reject
        self.authz_reuse = authz_reuse
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="certplane-pebble-"))
        self.acme_port = acme_port or free_port()
        self.management_port = management_port or free_port()
        self._ports_given = acme_port is not None or management_port is not None
        self.dns_port = dns_port or free_port()
        self.challtestsrv_port = challtestsrv_port or free_port()
        self.dns_server = dns_server or f"127.0.0.1:{self.dns_port}"
        self.ca_bundle_path = self.workdir / "pebble-tls.pem"
        self.root_pem = ""
        self._procs: list[subprocess.Popen[bytes]] = []

    # --- addresses -------------------------------------------------------------------------------------
    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    @property
    def acme_tls(self) -> tuple[Path, Path]:
        """(certificate, key) of the ACME API's own TLS: what a test proxy in front of it serves, so the same
        `ca_bundle` trusts it."""
        return self.ca_bundle_path, self.workdir / "pebble-tls.key"

    @property
    def root_path(self) -> Path:
        """Pebble's root CA (fetched from /roots/0 at start; regenerated on every launch)."""
        return self.workdir / "pebble-root.pem"

    # --- lifecycle: start(), stop(), `with` come from ManagedServer ---------------------------------
    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = _tls_pair(self.workdir)
        config: dict[str, Any] = {
            "listenAddress": f"127.0.0.1:{self.acme_port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(cert_path),
            "privateKey": str(key_path),
            "httpPort": self.http01_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.eab_required,
            "externalAccountMACKeys": self.eab_keys,
            "domainBlocklist": self.domain_blocklist,
            "retryAfter": {"authz": 1, "order": 1},
            "profiles": self.profiles,
        }
        config_path = self.workdir / "pebble-config.json"
        self._start_challtestsrv(f"127.0.0.1:{self.http01_port}" if self.challtestsrv_http01 else "")
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": str(self.nonce_reject),
               "PEBBLE_AUTHZREUSE": str(self.authz_reuse)}
        for attempt in range(3):  # a free port can be taken between choosing it and Pebble binding it
            config_path.write_text(json.dumps({"pebble": config}, indent=2))
            self._spawn([str(BIN / "pebble"), "-config", str(config_path), "-dnsserver", self.dns_server],
                        "pebble", env=env)
            try:
                self._wait_http(self.directory_url, what="pebble")
                break
            except RuntimeError as err:
                if attempt == 2 or self._ports_given or "address already in use" not in str(err):
                    raise
                self._procs.pop().wait(timeout=5)  # it exited: start again on other ports
                self.acme_port, self.management_port = free_port(), free_port()
                config.update(listenAddress=f"127.0.0.1:{self.acme_port}", tlsPort=free_port(),
                              managementListenAddress=f"127.0.0.1:{self.management_port}")
        self.root_pem = self.get_management("/roots/0").decode()
        self.root_path.write_text(self.root_pem)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._procs.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- helpers for tests -----------------------------------------------------------------------------
    def get_management(self, path: str) -> bytes:
        with urllib.request.urlopen(self.management_url + path, timeout=10, context=self._ssl_context()) as r:
            return bytes(r.read())

    def post_management(self, path: str, body: dict[str, Any]) -> bytes:
        req = urllib.request.Request(self.management_url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10, context=self._ssl_context()) as r:
            return bytes(r.read())

    def cert_status(self, serial_hex: str) -> dict[str, Any]:
        """Pebble's view of a certificate: {"Status": "Valid"|"Revoked", "Reason", "RevokedAt", ...}."""
        result: dict[str, Any] = json.loads(self.get_management(f"/cert-status-by-serial/{serial_hex}"))
        return result


__all__ = ["PebbleServer", "free_port", "DEFAULT_PROFILES"]
