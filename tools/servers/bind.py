"""A throwaway BIND 9 authoritative server on a free 127.0.0.1 port, with a TSIG key allowed to update a
dynamic zone (default `example.test`). For RFC 2136 DNS-01 tests: point Pebble's `-dnsserver` at it."""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from . import ManagedServer, end_process
from . import free_port

NAMED = shutil.which("named") or "/usr/sbin/named"


class BindServer(ManagedServer):
    """`records` are extra zone-file lines (e.g. a CNAME delegating `_acme-challenge.x`)."""

    def __init__(self, *, zone: str = "example.test", key_name: str = "certplane-key",
                 algorithm: str = "hmac-sha256", records: list[str] | None = None,
                 start_timeout: float = 20.0) -> None:
        self.zone = zone.rstrip(".")
        self.key_name = key_name
        self.algorithm = algorithm
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.records = list(records or [])
        self.start_timeout = start_timeout
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="certplane-bind-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def dns_settings(self) -> dict[str, object]:
        """Settings for certplane's `rfc2136` DNS provider."""
        return {"provider": "rfc2136", "nameserver": "127.0.0.1", "port": self.port, "zone": self.zone,
                "tsig_key_name": self.key_name, "tsig_secret": self.secret, "tsig_algorithm": self.algorithm,
                "resolver": self.address}

    def _start(self) -> None:
        d = self.workdir
        zone_file = d / f"{self.zone}.zone"
        zone_file.write_text("\n".join([
            "$TTL 60",
            f"@ IN SOA ns1.{self.zone}. hostmaster.{self.zone}. (1 60 60 600 60)",
            f"@ IN NS ns1.{self.zone}.",
            "ns1 IN A 127.0.0.1",
            "@ IN A 127.0.0.1",
            "* IN A 127.0.0.1",
            *self.records,
            "",
        ]))
        (d / "named.conf").write_text(f"""
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{self.key_name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};
zone "{self.zone}" {{
    type primary;
    file "{zone_file}";
    update-policy {{ grant {self.key_name} zonesub ANY; }};
}};
""")
        log = open(d / "named.log", "wb")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen([NAMED, "-g", "-n", "1", "-c", str(d / "named.conf")],
                                      stdout=log, stderr=subprocess.STDOUT, cwd=d)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"named exited early (code {self._proc.returncode}): "
                                   f"{(d / 'named.log').read_text()[-2000:]}")
            try:
                q = dns.message.make_query(self.zone + ".", dns.rdatatype.SOA)
                r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=1)
                if r.answer:
                    return
            except Exception as err:  # noqa: BLE001 - not up yet
                last = err
            time.sleep(0.05)
        raise RuntimeError(f"named did not answer on {self.address} within {self.start_timeout:g}s: {last}")

    def stop(self) -> None:
        end_process(self._proc, timeout=10)
        self._proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


__all__ = ["BindServer"]
