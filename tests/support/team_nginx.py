"""A team's own nginx, as certplane finds it: a hand-written main config and two sites that `proxy_pass` to a
local HTTP backend, serving certificates the team made before certplane. The only change the team makes for
certplane is the migration step its docs give: move each site's two `ssl_certificate` lines into
`certplane/<binding>.conf` and `include` that file."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from providers.core import certificates as x509util
from tests.support.https import https_get
from tests.support.pki import LocalCa
from tools.servers import free_port
from tools.servers.nginx import NginxServer

SITES = {"app": ("app.example.test",), "shop": ("shop.example.test", "www.shop.example.test")}
TARGET = "edge"


def binding_id(site: str) -> str:
    return f"{site}--{TARGET}"


MAIN = """# The team's nginx.conf, written by hand.
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 4; }}
    include {d}/sites/*.conf;
}}
"""

SITE = """# {site}: the team's site.
server {{
    listen {listen} ssl;
    server_name {names};
    include {d}/certplane/{binding}.conf;
    location / {{
        proxy_pass http://backend;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
    }}
    location = /healthz {{ return 200 "ok\\n"; }}
}}
"""

PLACEHOLDER = """# Moved here from sites/{site}.conf so certplane can manage it.
ssl_certificate {d}/tls/{site}.crt;
ssl_certificate_key {d}/tls/{site}.key;
"""


class _Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"backend: hello {self.headers.get('Host')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class TeamNginx:
    root: Path
    server: NginxServer
    old_ca: LocalCa  # what the team's certificates before certplane were signed by
    backend_port: int
    user_files: list[Path] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def certplane_dir(self) -> Path:
        return self.root / "certplane"

    def target_settings(self) -> dict[str, object]:
        """What the team writes in `certplane:targets`: snippet mode is the default; its own config to test."""
        return {"type": "nginx", "conf_dir": str(self.certplane_dir), "listen": self.server.listen,
                "conf": str(self.conf)}

    def snapshot(self) -> dict[Path, bytes]:
        """The team's own files (main config, sites, its old certificates), byte for byte."""
        return {p: p.read_bytes() for p in self.user_files}

    def get(self, name: str, trust: LocalCa) -> tuple[int, str, str]:
        """GET https://name/ through nginx, the certificate validated for `name` against `trust`."""
        return https_get(self.server.host, self.server.port, name, trust_pem=x509util.to_pem(trust.cert))


@contextmanager
def team_nginx(tmp_path: Path) -> Iterator[TeamNginx]:
    root = tmp_path / "team-nginx"
    for sub in ("sites", "tls", "certplane", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=backend.serve_forever, daemon=True)
    thread.start()
    listen = f"127.0.0.1:{free_port()}"
    old_ca = LocalCa()
    (root / "nginx.conf").write_text(MAIN.format(d=root, backend=backend.server_address[1]))
    files = [root / "nginx.conf"]
    for site, names in SITES.items():
        bundle = old_ca.bundle(list(names), name=site)
        (root / "tls" / f"{site}.crt").write_text(bundle.fullchain_pem)
        (root / "tls" / f"{site}.key").write_text(bundle.key_pem)
        (root / "tls" / f"{site}.key").chmod(0o600)
        (root / "sites" / f"{site}.conf").write_text(
            SITE.format(site=site, listen=listen, names=" ".join(names), d=root, binding=binding_id(site)))
        (root / "certplane" / f"{binding_id(site)}.conf").write_text(PLACEHOLDER.format(site=site, d=root))
        files += [root / "sites" / f"{site}.conf", root / "tls" / f"{site}.crt", root / "tls" / f"{site}.key"]
    server = NginxServer(root, listen, conf=root / "nginx.conf")
    try:
        server.start(timeout=10)
        yield TeamNginx(root, server, old_ca, backend.server_address[1], files)
    finally:
        server.stop(timeout=10)
        backend.shutdown()
        backend.server_close()
