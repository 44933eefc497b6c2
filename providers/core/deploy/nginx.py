"""nginx: one `server {}` file per binding plus its fullchain and key, tested with `nginx -t`, reloaded, and
confirmed by real TLS handshakes with each server name.

Layout under `conf_dir` (the main config that includes `certplane/*.conf` is the server's own; for the demo and
the tests it is written by tools/servers/nginx.py):
    certplane/<binding_id>.conf     one server block per binding
    certplane/certs/<binding_id>.fullchain.pem, <binding_id>.key.pem   (directory 0700, key 0600)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from ..certificates import check_dns_name, fingerprint_of_pem
from ..errors import DeployError, InvalidInputError
from ..net import HostPort, parse_address
from ..tls import probe_name, served_fingerprint
from ..validation import LOCATION, Argv, ProjectPath, number, whole_number
from . import base
from ._support import FileSet, atomic_write, ensure_dir, locked, read_or_none, run
from .base import Binding, Bundle, Endpoint, TargetPlugin, TargetSettings

KIND = "nginx"


class NginxSettings(TargetSettings):
    """conf_dir, listen (HOST:PORT); optional conf (the main config to test and reload; default
    conf_dir/nginx.conf), prefix, nginx_bin, reload_command, test_command, poll_tries, poll_interval (s),
    confirmations (consecutive good rounds), command_timeout (s)."""

    conf_dir: Annotated[ProjectPath, LOCATION]
    listen: HostPort
    conf: ProjectPath | None = None
    prefix: ProjectPath | None = None
    nginx_bin: str = "/usr/sbin/nginx"
    reload_command: Argv | None = None
    test_command: Argv | None = None
    poll_tries: Annotated[int, whole_number(1, 10000)] = 50
    poll_interval: Annotated[float, number(0, 60)] = 0.1
    confirmations: Annotated[int, whole_number(1, 100)] = 3
    command_timeout: Annotated[float, number(1, 3600)] = 30.0


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
    def pid_file(self) -> Path:
        return self.conf_dir / "nginx.pid"

    def site(self, binding_id: str) -> Path:
        return self.sites / f"{binding_id}.conf"

    def fullchain(self, binding_id: str) -> Path:
        return self.certs / f"{binding_id}.fullchain.pem"

    def key(self, binding_id: str) -> Path:
        return self.certs / f"{binding_id}.key.pem"


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
    kind = KIND

    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings
        self.layout = Layout(Path(settings.conf_dir))
        self.listen = settings.listen
        address = parse_address(settings.listen)
        self.host, self.port = address.reachable_host, address.port
        self.conf = Path(settings.conf) if settings.conf else self.layout.main_conf
        self.prefix = Path(settings.prefix) if settings.prefix else self.layout.conf_dir
        ctl = [settings.nginx_bin, "-p", f"{self.prefix}/", "-c", str(self.conf), "-e", "stderr"]
        self.test_command = settings.test_command or (ctl[0], "-t", "-q", *ctl[1:])
        self.reload_command = settings.reload_command or (ctl[0], "-s", "reload", *ctl[1:])
        self.poll_tries = settings.poll_tries
        self.poll_interval = settings.poll_interval
        self.confirmations = settings.confirmations
        self.command_timeout = settings.command_timeout

    def endpoints(self, server_names: Sequence[str]) -> list[Endpoint]:
        return [Endpoint(self.host, self.port, probe_name(name)) for name in server_names]

    def check_binding(self, binding: Binding) -> None:
        if not binding.server_names:
            raise InvalidInputError("server_names", "nginx serves a certificate by name: give at least one")
        for name in binding.server_names:
            check_dns_name(name, "server_names")

    # --- the verbs -----------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        self.check_binding(binding)
        layout = self.layout
        with locked(layout.sites / ".lock"):
            ensure_dir(layout.sites, 0o700)
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


PLUGIN = TargetPlugin(KIND, NginxSettings, NginxTarget)
