"""nginx: the certificate files plus, per binding, either a snippet the user's own `server {}` includes (mode
`snippet`, the default: certplane never writes a main config or a server block it does not own) or a whole
`server {}` block certplane owns (mode `server`, for an nginx that serves nothing else, like the demo's). Every
change is tested with `nginx -t` against the user's main config, reloaded, and confirmed by a real TLS handshake
with each server name; any failure puts every file back.

Layout under `conf_dir`:
    snippet mode                                        server mode
    <binding>.conf        ssl_certificate lines         certplane/<binding>.conf        one server block
    <binding>.conf.before-certplane  the user's own     certplane/certs/<binding>.fullchain.pem, .key.pem
                          file, kept until remove
    certs/<binding>.fullchain.pem, .key.pem   (directory 0700, key 0600)

Snippet mode, step by step for a team's nginx: put your current `ssl_certificate`/`ssl_certificate_key` lines in
`<conf_dir>/<binding>.conf` and `include` it in the site's `server {}` (so `nginx -t` passes before certplane
exists); the first deploy keeps that file as `.before-certplane` and writes certplane's; removing the binding
puts yours back, so the site never loses its certificate.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from ..certificates import check_dns_name, fingerprint_of_pem
from ..errors import DeployError, DeployFailed, InvalidInputError
from ..net import parse_address
from ..validation import HostPort
from ..tls import probe_name, served_fingerprint
from ..validation import LOCATION, Argv, ProjectPath, number, whole_number
from . import base
from ._support import FileSet, atomic_write, ensure_dir, locked, read_or_none, require_served, run, run_capturing, scrub, server_lock
from .base import Binding, Bundle, Endpoint, TargetPlugin, TargetSettings

KIND = "nginx"
SYSTEM_CONF = "/etc/nginx/nginx.conf"
MANAGED = "# Managed by certplane"  # the first line of every file certplane writes and may overwrite or delete
SAVED_SUFFIX = ".before-certplane"

Mode = Literal["snippet", "server"]


class NginxSettings(TargetSettings):
    """conf_dir, listen (HOST:PORT the sites listen on, for verification); mode (snippet | server); optional
    conf (the main config to test and reload; default /etc/nginx/nginx.conf in snippet mode, conf_dir/nginx.conf
    in server mode), prefix (nginx -p; default none in snippet mode, conf_dir in server mode), nginx_bin,
    reload_command (e.g. [systemctl, reload, nginx]), test_command, poll_tries, poll_interval (s), confirmations
    (consecutive good rounds), command_timeout (s)."""

    conf_dir: Annotated[ProjectPath, LOCATION]
    listen: HostPort
    mode: Annotated[Mode, LOCATION] = "snippet"
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
    """Where a mode keeps its files under conf_dir; the one place the target, its tests and the local server
    module read."""

    conf_dir: Path
    mode: Mode = "server"

    @property
    def files_dir(self) -> Path:
        """Where the per-binding config files live (and the lock)."""
        return self.conf_dir if self.mode == "snippet" else self.conf_dir / "certplane"

    @property
    def certs(self) -> Path:
        return self.files_dir / "certs"

    @property
    def main_conf(self) -> Path:
        """Server mode's default main config (written by whoever runs that nginx, never by the target)."""
        return self.conf_dir / "nginx.conf"

    def conf_file(self, binding_id: str) -> Path:
        """The binding's snippet (snippet mode) or server block (server mode)."""
        return self.files_dir / f"{binding_id}.conf"

    def saved(self, binding_id: str) -> Path:
        """The user's own snippet from before certplane, restored by remove (snippet mode)."""
        return self.files_dir / f"{binding_id}.conf{SAVED_SUFFIX}"

    def fullchain(self, binding_id: str) -> Path:
        return self.certs / f"{binding_id}.fullchain.pem"

    def key(self, binding_id: str) -> Path:
        return self.certs / f"{binding_id}.key.pem"


def render_snippet(layout: Layout, binding: Binding) -> str:
    conf = layout.conf_file(binding.binding_id)
    return (f"{MANAGED}: binding {binding.binding_id}. Include it in the server {{}} that serves "
            f"{', '.join(binding.server_names)}:\n"
            f"#     include {conf};\n"
            f"# Your own file from before, if there was one, is {layout.saved(binding.binding_id).name} and comes "
            f"back when the binding is removed.\n"
            f"ssl_certificate {layout.fullchain(binding.binding_id)};\n"
            f"ssl_certificate_key {layout.key(binding.binding_id)};\n")


def render_site(layout: Layout, binding: Binding, listen: str) -> str:
    return (f"{MANAGED}: binding {binding.binding_id}\n"
            f"server {{\n"
            f"    listen {listen} ssl;\n"
            f"    server_name {' '.join(binding.server_names)};\n"
            f"    ssl_certificate {layout.fullchain(binding.binding_id)};\n"
            f"    ssl_certificate_key {layout.key(binding.binding_id)};\n"
            f"    return 200 \"{binding.binding_id}\\n\";\n"
            f"}}\n")


def _managed(data: bytes | None) -> bool:
    return data is not None and data.startswith(MANAGED.encode())


def _nginx_error(lines: list[str]) -> str:
    """The first `[emerg]`/`[alert]`/`[error]` line without its prefix, else the last line."""
    picked = next((ln for ln in lines if re.search(r"\[(emerg|alert|crit|error)\]", ln)), lines[-1] if lines else "")
    return re.sub(r"^(nginx: )?([\d/]+ [\d:]+ )?\[\w+\] (\d+#\d+: )?", "", picked).strip() or "no message"


class NginxTarget(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings
        self.snippet = settings.mode == "snippet"
        self.layout = Layout(Path(settings.conf_dir), settings.mode)
        self.listen = settings.listen
        address = parse_address(settings.listen)
        self.host, self.port = address.reachable_host, address.port
        self.conf = Path(settings.conf) if settings.conf else \
            Path(SYSTEM_CONF) if self.snippet else self.layout.main_conf
        prefix = settings.prefix or (None if self.snippet else self.layout.conf_dir)
        ctl = [*(("-p", f"{prefix}/") if prefix else ()), "-c", str(self.conf), "-e", "stderr"]
        self.test_command = settings.test_command or (settings.nginx_bin, "-t", "-q", *ctl)
        # Snippet mode proves the snippet is included: `nginx -T` (test, then print the whole config) in place
        # of the test; a test_command of the user's own is used with its -t as -T, if it has one.
        command = list(self.test_command)
        self.dump_command = tuple(["-T" if a == "-t" else a for a in command]) if "-t" in command else None
        self.reload_command = settings.reload_command or (settings.nginx_bin, "-s", "reload", *ctl)
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
        layout, bid = self.layout, binding.binding_id
        conf_file = layout.conf_file(bid)
        with self._locked():
            if not self.snippet:
                ensure_dir(layout.files_dir, 0o700)
            ensure_dir(layout.certs, 0o700)
            text = render_snippet(layout, binding) if self.snippet else render_site(layout, binding, self.listen)
            files: dict[Path, tuple[bytes, int] | None] = {
                layout.key(bid): (bundle.key_pem.encode(), 0o600),
                layout.fullchain(bid): (bundle.fullchain_pem.encode(), 0o644),
                conf_file: (text.encode(), 0o644),
            }
            users = read_or_none(conf_file)
            if self.snippet and users is not None and not _managed(users):
                if layout.saved(bid).exists():
                    raise DeployError(f"nginx: {conf_file} was changed by hand since certplane wrote it, and "
                                      f"{layout.saved(bid).name} holds the file from before; keep the one you want "
                                      "(delete the other) and run again. Nothing was changed")
                # Theirs, back on remove: saved first, so no moment exists without a copy of it.
                files = {layout.saved(bid): (users, conf_file.stat().st_mode & 0o777), **files}
            self._apply(files, included=conf_file if self.snippet else None, names=binding.server_names)
        self._wait_served(binding, bundle.fingerprint_sha256)
        return {"listen": self.listen, "mode": self.settings.mode, "conf_file": str(conf_file),
                "cert_file": str(layout.fullchain(bid)), "key_file": str(layout.key(bid))}

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        self._wait_served(binding, bundle.fingerprint_sha256)

    def observe(self, binding: Binding) -> dict[str, str | None]:
        return {name: served_fingerprint(self.host, self.port, probe_name(name)) for name in binding.server_names}

    def remove(self, binding: Binding) -> None:
        """Server mode deletes the block; snippet mode puts the user's own snippet back (or, when there was none,
        deletes certplane's and lets `nginx -t` prove nothing includes it any more)."""
        layout, bid = self.layout, binding.binding_id
        conf_file, saved_file = layout.conf_file(bid), layout.saved(bid)
        with self._locked():
            conf, saved = read_or_none(conf_file), read_or_none(saved_file)
            certs = [layout.fullchain(bid), layout.key(bid)]
            if not any(p.exists() for p in certs) and not _managed(conf):
                return
            gone = fingerprint_of_pem(read_or_none(layout.fullchain(bid)))
            files: dict[Path, tuple[bytes, int] | None] = {}
            if _managed(conf):  # a file the user took back by hand stays theirs
                files[conf_file] = (saved, saved_file.stat().st_mode & 0o777) if saved is not None else None
                if saved is not None:
                    files[saved_file] = None
            files.update({p: None for p in certs})  # after the file that names them
            try:
                self._apply(files)
            except DeployError as err:
                if self.snippet and str(conf_file) in str(err):
                    raise DeployError(
                        f"nginx: binding {bid} is not removed: your config still includes {conf_file} and nginx "
                        f"would have no certificate for {', '.join(binding.server_names)}; give that server {{}} "
                        f"a certificate of its own (or your own lines in {saved_file.name}) and remove again. "
                        f"Nothing was changed. ({err})") from None
                raise
            serving_elsewhere = self._serving_elsewhere(binding, gone)
        still_ours = tuple(n for n in binding.server_names if n not in serving_elsewhere)
        if gone and still_ours:
            self._wait_served(Binding(binding.binding_id, still_ours, binding.sni, binding.live), gone, present=False)

    def _serving_elsewhere(self, binding: Binding, fingerprint: str | None) -> set[str]:
        """Names another binding serves with the same certificate (a renamed binding taking over), which may
        keep serving it after this one is gone."""
        others = [p for p in self.layout.files_dir.glob("*.conf") if p != self.layout.conf_file(binding.binding_id)]
        if self.snippet:  # which server {} includes a snippet is the user's config: compare certificates
            same = any(fingerprint_of_pem(read_or_none(self.layout.fullchain(p.stem))) == fingerprint for p in others)
            return set(binding.server_names) if same else set()
        names: set[str] = set()
        for site in others:
            for match in re.finditer(r"^\s*server_name\s+([^;]+);", site.read_text(), re.M):
                names.update(match.group(1).split())
        return names

    # --- mechanics ------------------------------------------------------------------------------------------

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """One change at a time per nginx, whichever target (conf_dir, mode) makes it: every binding's
        `nginx -t` sees every other binding whole. One nginx is one main config (see server_lock)."""
        return locked(server_lock("nginx", str(self.conf)))

    def _apply(self, files: Mapping[Path, tuple[bytes, int] | None], *, included: Path | None = None,
               names: Sequence[str] = ()) -> None:
        """Write or delete files (in order), `nginx -t`, reload; on any failure put every file back as it was.
        `included`: a snippet the test proves the user's config includes (`nginx -T`), before any reload."""
        snapshot = FileSet(list(files))
        try:
            for path, content in files.items():
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write(path, content[0], content[1])
            self._test(included, names)
            code, lines = run(self.reload_command, timeout=self.command_timeout, what="nginx")
            if code != 0:
                raise DeployError(f"nginx: reload failed (exit {code}), previous certificate kept: {_nginx_error(lines)}")
        except DeployError as err:  # nginx never loaded the new files, and they are back as they were
            snapshot.restore()
            raise DeployFailed(str(err), nothing_changed=True) from None
        except BaseException:
            snapshot.restore()
            raise

    def _test(self, included: Path | None, names: Sequence[str]) -> None:
        if included is None or self.dump_command is None:
            code, lines = run(self.test_command, timeout=self.command_timeout, what="nginx")
        else:
            code, dump, stderr = run_capturing(self.dump_command, timeout=self.command_timeout, what="nginx")
            lines = [scrub(ln.strip()) for ln in stderr.splitlines() if ln.strip()]
            if code == 0 and f"# configuration file {included}:" not in dump:
                raise DeployError(f"nginx: {self.conf} does not include {included}: put `include {included};` in "
                                  f"the server {{}} for {', '.join(names)} and run again. Nothing was changed")
        if code != 0:
            raise DeployError(f"nginx: configuration test failed, previous certificate kept: {_nginx_error(lines)}")

    def _wait_served(self, binding: Binding, fingerprint: str, *, present: bool = True) -> None:
        """Reload is asynchronous: poll real handshakes until every name settles (see tls.await_served)."""
        def hint(name: str) -> str:
            return (f"; is `include {self.layout.conf_file(binding.binding_id)};` in the server {{}} for {name}?"
                    if self.snippet else "")

        require_served("nginx", self.host, self.port, self.listen, binding.server_names, fingerprint,
                       present=present, tries=self.poll_tries, interval=self.poll_interval,
                       confirmations=self.confirmations, hint=hint)


PLUGIN = TargetPlugin(KIND, NginxSettings, NginxTarget)
