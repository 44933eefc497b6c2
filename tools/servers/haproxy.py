"""Run Debian's HAProxy on 127.0.0.1 the way a team configures it for certplane (the demo and the tests): a
frontend whose bind line has a default certificate and a crt-list, and the runtime API on a unix socket.
Master-worker mode, so a reload (the target's fallback) is SIGUSR2 to the master. Every wait is bounded.

    python -m tools.servers.haproxy start WORKDIR LISTEN     # e.g. .certplane/haproxy 127.0.0.1:9443
    python -m tools.servers.haproxy stop  WORKDIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.deploy._support import atomic_write, ensure_dir
from providers.core.net import parse_address
from tools.servers import end_pid, end_process

HAPROXY_BIN = "/usr/sbin/haproxy"

CONFIG = """# The team's haproxy.cfg (certplane never writes this file: tools/servers/haproxy.py does, for the local server).
global
    stats socket {socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend https
    bind {listen} ssl crt {default_pem} {crt_keyword} {crt_list}
    http-request return status 200 content-type text/plain string "haproxy: ok"
"""


class HaproxyServer:
    def __init__(self, workdir: str | Path, listen: str, *, haproxy_bin: str = HAPROXY_BIN,
                 crt_dir: bool = False) -> None:
        """`crt_dir`: the bind line names a certificate directory (`crt <dir>`) instead of a crt-list file."""
        self.workdir = Path(workdir).expanduser().resolve()
        self.crt_dir = crt_dir
        self.listen = listen
        address = parse_address(listen)
        self.host, self.port = address.reachable_host, address.port
        self.haproxy_bin = haproxy_bin
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "haproxy.cfg"

    @property
    def socket(self) -> Path:
        return self.workdir / "admin.sock"

    @property
    def crt_list(self) -> Path:
        """What the bind line names after the default certificate: a crt-list file, or a directory."""
        return self.workdir / ("certs" if self.crt_dir else "certplane.crt-list")

    @property
    def default_pem(self) -> Path:
        return self.workdir / "default.pem"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "haproxy.pid"

    @property
    def default_fingerprint(self) -> str | None:
        return x509util.fingerprint_of_pem(self.default_pem.read_bytes()) if self.default_pem.exists() else None

    def reload_command(self) -> list[str]:
        return ["/bin/sh", "-c", f'exec kill -USR2 "$(cat {self.pid_file})"']

    def target_settings(self) -> dict[str, object]:
        """Settings for the haproxy deploy target that drive this server."""
        return {"crt_list": str(self.crt_list), "listen": self.listen, "socket": str(self.socket),
                "config": str(self.config), "haproxy_bin": self.haproxy_bin, "reload_command": self.reload_command()}

    def write_config(self) -> None:
        ensure_dir(self.workdir, 0o700)
        if not self.default_pem.exists():
            key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
            cert = x509util.sign_certificate(
                x509util.CertificateTemplate(common_name="haproxy default", dns_names=("haproxy.invalid",),
                                             validity_days=3650),
                subject_public_key=key.public_key(), signing_key=key, issuer=None, now=dt.datetime.now(dt.timezone.utc))
            atomic_write(self.default_pem, (x509util.to_pem(cert) + keys.private_key_to_pem(key)).encode(), 0o600)
        if self.crt_dir:
            ensure_dir(self.crt_list, 0o700)
        elif not self.crt_list.exists():
            atomic_write(self.crt_list, b"", 0o600)
        text = CONFIG.format(socket=self.socket, listen=self.listen, default_pem=self.default_pem,
                             crt_keyword="crt" if self.crt_dir else "crt-list", crt_list=self.crt_list)
        if not self.config.exists() or self.config.read_text() != text:
            atomic_write(self.config, text.encode(), 0o600)

    def _start(self, *, foreground: bool = True, timeout: float = 10.0) -> None:
        self.write_config()
        check = subprocess.run([self.haproxy_bin, "-c", "-q", "-f", str(self.config)], capture_output=True,
                               text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c failed: {(check.stderr or check.stdout).strip().splitlines()[-1:]}")
        if self.running():
            return
        args = [self.haproxy_bin, "-W", "-f", str(self.config), "-p", str(self.pid_file)]
        if foreground:
            self.proc = subprocess.Popen([*args, "-db"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
        else:
            log = self.workdir / "haproxy.log"
            with open(log, "ab") as sink:
                code = subprocess.run([*args, "-D"], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                      timeout=30, check=False).returncode
            if code != 0:
                raise RuntimeError(f"haproxy failed to start (exit {code}): see {log}")
        self.wait_ready(timeout)

    def start(self, *, foreground: bool = True, timeout: float = 10.0) -> HaproxyServer:
        """Write the config, check it, start HAProxy and wait (bounded) until it answers; a failed start stops
        what it started."""
        try:
            self._start(foreground=foreground, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """The TLS port accepts and the runtime API answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}: {err.strip().splitlines()[-1:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
                with socket.socket(socket.AF_UNIX) as api:
                    api.settimeout(0.5)
                    api.connect(str(self.socket))
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"haproxy did not answer on {self.listen} and {self.socket} within {timeout:g} s")

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the master (it stops its workers), then SIGKILL, each bounded."""
        if self.proc is not None:
            end_process(self.proc, timeout=timeout)
            self.proc = None
            return
        end_pid(self.pid(), self.running, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers.haproxy")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("workdir")
    parser.add_argument("listen", nargs="?", default="127.0.0.1:9443")
    args = parser.parse_args(argv)
    server = HaproxyServer(args.workdir, args.listen)
    if args.action == "start":
        server.start(foreground=False)
        print(f"haproxy: serving on {args.listen} (runtime API {server.socket})")
    elif args.action == "stop":
        server.stop()
    else:
        print("running" if server.running() else "stopped")
        return 0 if server.running() else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
