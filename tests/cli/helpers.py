"""Helpers for the operator CLI tests: run ./certplane, build certificates and inventories, serve TLS."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
CERTPLANE = ROOT / "certplane"
BASE = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)  # the fixture certificates expire here


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_cli(*args: str, env: dict[str, str] | None = None, now: dt.datetime | None = None,
            timeout: float = 90, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """./certplane ARGS as a user runs it (the bash wrapper, the repo's venv), bounded in time."""
    full = {k: v for k, v in os.environ.items() if k not in ("CERTPLANE_NOW", "NO_COLOR")}
    full.update(env or {})
    if now is not None:
        full["CERTPLANE_NOW"] = rfc3339(now)
    return subprocess.run([str(CERTPLANE), *args], capture_output=True, text=True, timeout=timeout,
                          env=full, cwd=str(cwd or ROOT), stdin=subprocess.DEVNULL)




# --- certificates ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex(":").upper()


def issue(common_name: str, *, issuer: Issued | None = None, dns: tuple[str, ...] = (), ca: bool = False,
          days: int = 90) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)


@dataclass(frozen=True)
class Pki:
    root: Issued
    intermediate: Issued

    def leaf(self, *dns: str) -> Issued:
        return issue(dns[0], issuer=self.intermediate, dns=dns)




def entry(*, not_after: dt.datetime, lifetime_days: float = 180, renewal_before_days: float = 3,
          domains: tuple[str, ...] = ("www.example.test",), cert: Issued | None = None, serial: str = "01",
          owner: str = "platform-team", targets: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """One inventory entry as the stack exports it (dates decoupled from the real certificate's)."""
    doc: dict[str, Any] = {
        "domains": list(domains), "issuer": "internal", "issuer_dn": "CN=Test Intermediate CA",
        "serial": format(cert.cert.serial_number, "x") if cert else serial,
        "not_before": rfc3339(not_after - dt.timedelta(days=lifetime_days)), "not_after": rfc3339(not_after),
        "days_remaining": 0, "renewal_time": rfc3339(not_after - dt.timedelta(days=renewal_before_days)),
        "fingerprint_sha256": cert.fingerprint if cert else "AA:" * 31 + "AA", "key_algorithm": "ECDSA-P-256",
        "targets": list(targets), "tags": {"owner": owner, "env": "test"},
    }
    doc.update(extra)
    return doc


def write_inventory(path: Path, entries: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps(entries, indent=2))
    return path


# --- a real TLS server -----------------------------------------------------------------------------------------

class TlsServer:
    """Serves `chain` (leaf first) on 127.0.0.1:<free port>: handshake, then close. Stopped by the fixture."""

    def __init__(self, tmp: Path, leaf: Issued, chain: tuple[Issued, ...] = ()) -> None:
        pem = tmp / f"served-{id(self)}.pem"
        key = tmp / f"served-{id(self)}.key"
        pem.write_bytes(leaf.pem + b"".join(c.pem for c in chain))
        key.write_bytes(leaf.key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(pem), str(key))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.handshakes = 0
        self.server_names: list[str | None] = []
        self.context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)  # type: ignore[assignment, func-returns-value]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    self.handshakes += 1
            except (ssl.SSLError, OSError):
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()




# --- a tiny PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium writes) ---------------------------------

def decode_png(data: bytes) -> tuple[int, int, int, bytearray]:
    """(width, height, bytes per pixel, raw pixel rows without filter bytes)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, bpp, out
