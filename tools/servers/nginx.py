"""Run the project's own unprivileged nginx on 127.0.0.1 from a certplane conf_dir (the demo and the tests).

This module owns that nginx's main config: pid and temp paths under conf_dir, a self-signed default TLS server on
`listen` (so nginx starts before any binding exists), an include of the server blocks the nginx deploy target
writes in server mode (providers.core.deploy.nginx.Layout), and an include of `conf_dir/sites/*.conf`, where a
caller puts hand-written sites of its own (the demo's, tools/servers/demo_sites.py). Or it runs a config given
whole (`conf=`), written by hand and never touched here, as a team's own nginx would be. Every wait is bounded.

    python -m tools.servers.nginx start  CONF_DIR LISTEN     # e.g. .certplane/nginx 127.0.0.1:8443
    python -m tools.servers.nginx stop   CONF_DIR
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import datetime as dt

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.deploy._support import atomic_write, ensure_dir
from providers.core.deploy.nginx import Layout
from providers.core.net import parse_address
from tools.servers import end_pid, end_process

NGINX_BIN = "/usr/sbin/nginx"


def pid_file(conf_dir: Path) -> Path:
    return conf_dir / "nginx.pid"


def sites_dir(conf_dir: Path) -> Path:
    """Hand-written sites of the caller's own, included before certplane's server blocks."""
    return conf_dir / "sites"


def default_certificate(conf_dir: Path) -> tuple[Path, Path]:
    """The self-signed certificate and key of the default server (what a name with no binding is served)."""
    return conf_dir / "default.crt", conf_dir / "default.key"


def render_main_config(layout: Layout, listen: str) -> str:
    """Unprivileged-friendly paths (pid, temp dirs) under conf_dir, a default TLS server on `listen`, the
    caller's own sites and the per-binding server blocks."""
    d = layout.conf_dir
    tmp = d / "tmp"
    cert, key = default_certificate(d)
    return f"""# Written by tools/servers/nginx.py for certplane's local nginx. Per-binding server blocks: {layout.files_dir}/.
worker_processes 1;
pid {pid_file(d)};
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {listen} ssl default_server;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        return 421 "no certplane binding for this name\\n";
    }}
    include {sites_dir(d)}/*.conf;
    include {layout.files_dir}/*.conf;
}}
"""


def write_main_config(layout: Layout, listen: str) -> None:
    """Create conf_dir with a self-signed default certificate and the main config (idempotent)."""
    for directory in (layout.conf_dir, layout.files_dir, layout.certs, sites_dir(layout.conf_dir)):
        ensure_dir(directory, 0o700)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (layout.conf_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    cert_path, key_path = default_certificate(layout.conf_dir)
    if not cert_path.exists() or not key_path.exists():
        key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
        cert = x509util.sign_certificate(
            x509util.CertificateTemplate(common_name="certplane default", dns_names=("certplane.invalid",),
                                         validity_days=3650),
            subject_public_key=key.public_key(), signing_key=key, issuer=None, now=dt.datetime.now(dt.timezone.utc))
        atomic_write(key_path, keys.private_key_to_pem(key).encode(), 0o600)
        atomic_write(cert_path, x509util.to_pem(cert).encode(), 0o644)
    text = render_main_config(layout, listen).encode()
    if not layout.main_conf.exists() or layout.main_conf.read_bytes() != text:
        atomic_write(layout.main_conf, text, 0o600)


class NginxServer:
    """One nginx master process for `conf_dir`. `start()` runs it in the foreground of a child process
    (daemon off) when `foreground`, else lets nginx daemonize (for `make demo`, which outlives this process)."""

    def __init__(self, conf_dir: str | Path, listen: str, *, nginx_bin: str = NGINX_BIN,
                 conf: str | Path | None = None) -> None:
        self.layout = Layout(Path(conf_dir).expanduser().resolve(), "server")
        self.listen = listen
        address = parse_address(listen)
        self.host, self.port = address.reachable_host, address.port
        self.nginx_bin = nginx_bin
        self.own_config = conf is None
        self.main_conf = self.layout.main_conf if conf is None else Path(conf).resolve()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_dir(self) -> Path:
        return self.layout.conf_dir

    @property
    def default_fingerprint(self) -> str | None:
        """The self-signed default server's certificate: what a name with no binding is served."""
        path = default_certificate(self.conf_dir)[0]
        return x509util.fingerprint_of_pem(path.read_text()) if path.exists() else None

    def target_settings(self) -> dict[str, object]:
        """Settings for the nginx deploy target in server mode (whole server blocks) that drive this server."""
        return {"mode": "server", "conf_dir": str(self.conf_dir), "listen": self.listen, "nginx_bin": self.nginx_bin,
                "conf": str(self.main_conf)}

    def _ctl(self, *extra: str) -> list[str]:
        return [self.nginx_bin, *extra, "-p", f"{self.conf_dir}/", "-c", str(self.main_conf), "-e", "stderr"]

    def write_config(self) -> None:
        """The main config this module owns; a config given whole is the caller's and is never written."""
        if self.own_config:
            write_main_config(self.layout, self.listen)

    def test(self) -> None:
        out = subprocess.run(self._ctl("-t", "-q"), capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {out.stderr.strip().splitlines()[-1:]}")

    def start(self, *, foreground: bool = True, timeout: float = 10.0) -> None:
        """Write the main config, test it, start nginx and wait (bounded) until the port answers."""
        self.write_config()
        self.test()
        if self.running():
            return
        if foreground:
            self.proc = subprocess.Popen([*self._ctl("-g", "daemon off;")], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        else:
            # The daemon keeps the launcher's stderr: send it to a log file, not a pipe nobody drains.
            log = self.conf_dir / "error.log"
            with open(log, "ab") as sink:
                code = subprocess.run(self._ctl(), stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                      timeout=30, check=False).returncode
            if code != 0:
                raise RuntimeError(f"nginx failed to start (exit {code}): see {log}")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {err.strip().splitlines()[-1:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not answer on {self.listen} within {timeout:g} s")

    def reload(self) -> None:
        out = subprocess.run(self._ctl("-s", "reload"), capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"nginx reload failed: {out.stderr.strip().splitlines()[-1:]}")

    def pid(self) -> int | None:
        try:
            return int(pid_file(self.conf_dir).read_text().strip())
        except (FileNotFoundError, ValueError):
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
        """Graceful quit, then terminate/kill, each bounded."""
        if self.proc is not None:
            end_process(self.proc, sig=signal.SIGQUIT, timeout=timeout)
            self.proc = None
            return
        end_pid(self.pid(), self.running, sig=signal.SIGQUIT, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers.nginx")
    parser.add_argument("action", choices=["start", "stop", "reload", "status"])
    parser.add_argument("conf_dir")
    parser.add_argument("listen", nargs="?", default="127.0.0.1:8443")
    args = parser.parse_args(argv)
    server = NginxServer(args.conf_dir, args.listen)
    if args.action == "start":
        server.start(foreground=False)
        print(f"nginx: serving on {args.listen} (conf {server.main_conf})")
    elif args.action == "stop":
        server.stop()
    elif args.action == "reload":
        server.reload()
    else:
        print("running" if server.running() else "stopped")
        return 0 if server.running() else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
