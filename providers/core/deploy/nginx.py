"""nginx: one `server {}` file per binding plus its fullchain and key, tested with `nginx -t`, reloaded, and
confirmed by real TLS handshakes with each server name.

Layout under `conf_dir` (shared with tools/servers/nginx.py, which runs the project's own nginx):
    nginx.conf                      main config (written here when missing; includes certplane/*.conf)
    default.crt, default.key        self-signed default server, so nginx starts before any binding exists
    certplane/<binding_id>.conf     one server block per binding
    certplane/certs/<binding_id>.fullchain.pem, <binding_id>.key.pem   (directory 0700, key 0600)
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import certificates as x509util
from .. import keys
from ..errors import DeployError, InvalidInputError
from . import base
from ._support import (FileSet, atomic_write, ensure_dir, fingerprint_of_pem, locked, probe_name, read_or_none, run,
                       served_fingerprint)
from .base import Binding, Bundle

KIND = "nginx"
SETTINGS = ("conf_dir", "listen", "conf", "prefix", "nginx_bin", "reload_command", "test_command",
            "poll_tries", "poll_interval", "confirmations", "command_timeout")
_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")
_SERVER_NAME = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


@dataclass(frozen=True)
class Layout:
    """Where everything lives under conf_dir; the one place both the target and the server module read."""

    conf_dir: Path

    @property
    def main_conf(self) -> Path:
        return self.conf_dir / "nginx.conf"

    @property
    def sites(self) -> Path:
        return self.conf_dir / "certplane"

    @property
    def certs(self) -> Path:
        return self.sites / "certs"

    @property
    def default_cert(self) -> Path:
        return self.conf_dir / "default.crt"

    @property
    def default_key(self) -> Path:
        return self.conf_dir / "default.key"

    @property
    def pid_file(self) -> Path:
        return self.conf_dir / "nginx.pid"

    def site(self, binding_id: str) -> Path:
        return self.sites / f"{binding_id}.conf"

    def fullchain(self, binding_id: str) -> Path:
        return self.certs / f"{binding_id}.fullchain.pem"

    def key(self, binding_id: str) -> Path:
        return self.certs / f"{binding_id}.key.pem"


def parse_listen(value: str, field: str = "listen") -> tuple[str, int]:
    """HOST:PORT -> (host to probe, port). A wildcard address is probed on loopback."""
    match = _LISTEN.match(value or "")
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise InvalidInputError(field, "must be HOST:PORT, e.g. 127.0.0.1:8443")
    host = match["host"].strip("[]")
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}.get(host, host), int(match["port"])


def render_main_config(layout: Layout, listen: str) -> str:
    """The main config certplane manages: unprivileged-friendly paths (pid, temp dirs) under conf_dir, a default
    TLS server on `listen`, and the per-binding server blocks."""
    d = layout.conf_dir
    tmp = d / "tmp"
    return f"""# Managed by certplane. Per-binding server blocks live in {layout.sites}/.
worker_processes 1;
pid {layout.pid_file};
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
        ssl_certificate {layout.default_cert};
        ssl_certificate_key {layout.default_key};
        return 421 "no certplane binding for this name\\n";
    }}
    include {layout.sites}/*.conf;
}}
"""


def write_main_config(layout: Layout, listen: str) -> None:
    """Create conf_dir with a self-signed default certificate and the main config (idempotent)."""
    ensure_dir(layout.conf_dir, 0o700)
    ensure_dir(layout.sites, 0o700)
    ensure_dir(layout.certs, 0o700)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (layout.conf_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    if not layout.default_cert.exists() or not layout.default_key.exists():
        key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
        cert = x509util.sign_certificate(
            x509util.CertificateTemplate(common_name="certplane default", dns_names=("certplane.invalid",),
                                         validity_days=3650),
            subject_public_key=key.public_key(), signing_key=key, issuer=None, now=dt.datetime.now(dt.timezone.utc),
        )
        atomic_write(layout.default_key, keys.private_key_to_pem(key).encode(), 0o600)
        atomic_write(layout.default_cert, x509util.to_pem(cert).encode(), 0o644)
    text = render_main_config(layout, listen).encode()
    if layout.main_conf.exists() and layout.main_conf.read_bytes() == text:
        return
    atomic_write(layout.main_conf, text, 0o600)


def render_site(layout: Layout, binding: Binding, listen: str) -> str:
    return (f"# Managed by certplane: binding {binding.binding_id}\n"
            f"server {{\n"
            f"    listen {listen} ssl;\n"
            f"    server_name {' '.join(binding.server_names)};\n"
            f"    ssl_certificate {layout.fullchain(binding.binding_id)};\n"
            f"    ssl_certificate_key {layout.key(binding.binding_id)};\n"
            f"    return 200 \"{binding.binding_id}\\n\";\n"
            f"}}\n")


def _nginx_error(lines: list[str]) -> str:
    """The first `[emerg]`/`[alert]`/`[error]` line without its prefix, else the last line."""
    picked = next((ln for ln in lines if re.search(r"\[(emerg|alert|crit|error)\]", ln)), lines[-1] if lines else "")
    return re.sub(r"^(nginx: )?([\d/]+ [\d:]+ )?\[\w+\] (\d+#\d+: )?", "", picked).strip() or "no message"


class NginxTarget(base.RedeployRollback):
    """Settings: conf_dir, listen (HOST:PORT); optional conf, prefix, nginx_bin, reload_command, test_command,
    poll_tries (50), poll_interval (0.1 s), confirmations (3 consecutive good rounds), command_timeout (30 s)."""

    kind = KIND

    def __init__(self, settings: Mapping[str, Any]) -> None:
        base.reject_unknown(settings, SETTINGS)
        self.layout = Layout(Path(base.required_text(settings, "conf_dir")).expanduser().resolve())
        self.listen = base.required_text(settings, "listen")
        self.host, self.port = parse_listen(self.listen)
        conf = base.text(settings, "conf")
        self.manage_main = conf is None
        self.conf = Path(conf).expanduser().resolve() if conf else self.layout.main_conf
        self.prefix = Path(base.text(settings, "prefix") or str(self.layout.conf_dir)).expanduser().resolve()
        self.nginx_bin = base.text(settings, "nginx_bin", default="/usr/sbin/nginx") or "/usr/sbin/nginx"
        ctl = [self.nginx_bin, "-p", f"{self.prefix}/", "-c", str(self.conf), "-e", "stderr"]
        self.test_command = base.argv(settings, "test_command") or (ctl[0], "-t", "-q", *ctl[1:])
        self.reload_command = base.argv(settings, "reload_command") or (ctl[0], "-s", "reload", *ctl[1:])
        self.poll_tries = base.whole(settings, "poll_tries", 50)
        self.poll_interval = base.number(settings, "poll_interval", 0.1)
        self.confirmations = base.whole(settings, "confirmations", 3, maximum=100)
        self.command_timeout = base.number(settings, "command_timeout", 30.0, minimum=1.0)

    def check_binding(self, binding: Binding) -> None:
        if not binding.server_names:
            raise InvalidInputError("server_names", "nginx serves a certificate by name: give at least one")
        for name in binding.server_names:
            if not _SERVER_NAME.match(name):
                raise InvalidInputError("server_names", f"{name!r} is not a DNS name nginx can match")

    # --- the five verbs -------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        self.check_binding(binding)
        layout = self.layout
        with locked(layout.sites / ".lock"):
            if self.manage_main:
                write_main_config(layout, self.listen)
            ensure_dir(layout.certs, 0o700)
            files = {
                layout.key(binding.binding_id): (bundle.key_pem.encode(), 0o600),
                layout.fullchain(binding.binding_id): (bundle.fullchain_pem.encode(), 0o644),
                layout.site(binding.binding_id): (render_site(layout, binding, self.listen).encode(), 0o644),
            }
            self._apply(files)
        self._wait_served(binding, bundle.fingerprint_sha256)
        return {"listen": self.listen, "conf_file": str(layout.site(binding.binding_id)),
                "cert_file": str(layout.fullchain(binding.binding_id)),
                "key_file": str(layout.key(binding.binding_id))}

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        self._wait_served(binding, bundle.fingerprint_sha256)

    def observe(self, binding: Binding) -> dict[str, str | None]:
        return {name: served_fingerprint(self.host, self.port, probe_name(name)) for name in binding.server_names}

    def remove(self, binding: Binding) -> None:
        layout = self.layout
        with locked(layout.sites / ".lock"):
            paths = [layout.site(binding.binding_id), layout.fullchain(binding.binding_id),
                     layout.key(binding.binding_id)]
            if not any(p.exists() for p in paths):
                return
            gone = fingerprint_of_pem(read_or_none(layout.fullchain(binding.binding_id)))
            self._apply({p: None for p in paths})
            # Names another binding serves (a renamed target taking over) may keep serving the same certificate.
            still_ours = tuple(n for n in binding.server_names if n not in self._claimed_by_others(binding))
        if gone and still_ours:
            self._wait_served(Binding(binding.binding_id, still_ours, binding.sni, binding.live), gone, present=False)

    def _claimed_by_others(self, binding: Binding) -> set[str]:
        names: set[str] = set()
        for site in self.layout.sites.glob("*.conf"):
            if site != self.layout.site(binding.binding_id):
                for match in re.finditer(r"^\s*server_name\s+([^;]+);", site.read_text(), re.M):
                    names.update(match.group(1).split())
        return names

    # --- mechanics ------------------------------------------------------------------------------------------

    def _apply(self, files: Mapping[Path, tuple[bytes, int] | None]) -> None:
        """Write or delete files, `nginx -t`, reload; on any failure put every file back as it was."""
        snapshot = FileSet(list(files))
        try:
            for path, content in files.items():
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write(path, content[0], content[1])
            code, lines = run(self.test_command, timeout=self.command_timeout, what="nginx")
            if code != 0:
                raise DeployError(f"nginx: configuration test failed, previous certificate kept: {_nginx_error(lines)}")
            code, lines = run(self.reload_command, timeout=self.command_timeout, what="nginx")
            if code != 0:
                raise DeployError(f"nginx: reload failed (exit {code}), previous certificate kept: {_nginx_error(lines)}")
        except BaseException:
            snapshot.restore()
            raise

    def _wait_served(self, binding: Binding, fingerprint: str, *, present: bool = True) -> None:
        """Reload is asynchronous: for a moment old and new workers both accept connections. Poll real
        handshakes until every name serves `fingerprint` (or, with present=False, none does) in `confirmations`
        consecutive rounds; bounded by poll_tries rounds, poll_interval apart."""
        seen: dict[str, str | None] = {}
        streak = 0
        for attempt in range(self.poll_tries):
            for name in binding.server_names:
                seen[name] = served_fingerprint(self.host, self.port, probe_name(name))
            pending = [n for n in binding.server_names if (seen[n] == fingerprint) != present]
            streak = 0 if pending else streak + 1
            if streak >= self.confirmations:
                return
            if attempt + 1 < self.poll_tries:
                time.sleep(self.poll_interval if pending else self.poll_interval / 2)
        name = next((n for n in binding.server_names if (seen[n] == fingerprint) != present), binding.server_names[0])
        if not present:
            raise DeployError(f"nginx: {name} on {self.listen} still serves {fingerprint} after its binding was "
                              f"removed (checked {self.poll_tries} times)")
        got = seen.get(name) or "no certificate (handshake failed)"
        raise DeployError(f"nginx: {name} on {self.listen} serves {got}, expected {fingerprint} "
                          f"(checked {self.poll_tries} times over {self.poll_tries * self.poll_interval:g} s)")
