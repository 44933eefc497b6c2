"""HAProxy: certificates swapped in the running process through its runtime API (`set ssl cert` + `commit ssl
cert`: no reload, no dropped handshake), written to disk for the next start, confirmed by an SNI handshake per
name; a reload only as the fallback when the API cannot be reached.

What the team's haproxy.cfg has (certplane never writes it):
    global
        stats socket /run/haproxy/admin.sock mode 600 level admin
    frontend https
        bind :443 ssl crt /etc/haproxy/default.pem crt-list /etc/haproxy/certplane.crt-list

`crt_list` is that crt-list file (certplane adds and removes its own lines, `<pem> <server names>`, and keeps the
team's), or a directory given as `crt <dir>` (HAProxy loads a directory as a crt-list; names then come from
each certificate). Each binding's PEM (leaf, chain, key; 0600) is `certs_dir/<binding>.pem`.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

from ..certificates import check_dns_name, fingerprint_of_pem
from ..errors import DeployError, DeployFailed, InvalidInputError
from ..net import parse_address
from ..validation import HostPort
from ..tls import probe_name, served_fingerprint
from ..validation import LOCATION, Argv, ProjectPath, number, project_path, whole_number
from . import base
from ._support import FileSet, atomic_write, ensure_dir, locked, read_or_none, require_served, run, server_lock
from .base import Binding, Bundle, Endpoint, TargetPlugin, TargetSettings

KIND = "haproxy"


def _runtime_api_address(value: str, info: ValidationInfo) -> str:
    """HOST:PORT (or HAProxy's own `ipv4@HOST:PORT`) stays an address; anything else is a unix socket path,
    relative to the project like every path in settings."""
    if "/" not in value:
        parse_address(value.removeprefix("ipv4@"))
        return value
    return project_path(value, info)


RuntimeApiAddress = Annotated[str, AfterValidator(_runtime_api_address)]


class HaproxySettings(TargetSettings):
    """crt_list (the crt-list file or crt directory on the team's bind line), listen (HOST:PORT, for
    verification); optional certs_dir (default: crt_list itself when it is a directory, else a `certplane`
    directory beside it), socket (the runtime API: a unix socket path or HOST:PORT; default
    /run/haproxy/admin.sock), config (checked with `haproxy -c` before a fallback reload), haproxy_bin,
    reload_command (the fallback, e.g. [systemctl, reload, haproxy]), poll_tries, poll_interval (s),
    confirmations, command_timeout (s)."""

    crt_list: Annotated[ProjectPath, LOCATION]
    listen: HostPort
    certs_dir: Annotated[ProjectPath | None, LOCATION] = None
    socket: RuntimeApiAddress = "/run/haproxy/admin.sock"
    config: ProjectPath = "/etc/haproxy/haproxy.cfg"
    haproxy_bin: str = "/usr/sbin/haproxy"
    reload_command: Argv | None = None
    poll_tries: Annotated[int, whole_number(1, 10000)] = 50
    poll_interval: Annotated[float, number(0, 60)] = 0.1
    confirmations: Annotated[int, whole_number(1, 100)] = 3
    command_timeout: Annotated[float, number(1, 3600)] = 30.0


class ApiUnreachable(Exception):
    """The runtime API socket does not answer: the fallback (reload) may apply."""


class RuntimeApi:
    """HAProxy's runtime API (the stats socket), one command per connection, as `socat` would send it."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address, self.timeout = address, timeout

    def _connect(self) -> socket.socket:
        if "/" in self.address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = self.address
        else:
            hp = parse_address(self.address.removeprefix("ipv4@"))
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (hp.reachable_host, hp.port)
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError as err:
            sock.close()
            raise ApiUnreachable(f"{self.address}: {err.strerror or err}") from None
        return sock

    def send(self, command: str, payload: str | None = None) -> str:
        """The response text. A payload (a PEM, a crt-list line) follows `<<` and ends at an empty line."""
        message = f"{command}\n" if payload is None else f"{command} <<\n{payload.rstrip(chr(10))}\n\n"
        with contextlib.closing(self._connect()) as sock:
            try:
                sock.sendall(message.encode())
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError as err:
                raise ApiUnreachable(f"{self.address}: {err.strerror or err}") from None
        return b"".join(chunks).decode(errors="replace").strip()

    def expect(self, command: str, ok: str, payload: str | None = None) -> str:
        """Send; raise DeployError with HAProxy's own first line unless the response contains `ok`."""
        answer = self.send(command, payload)
        if ok not in answer:
            first = answer.splitlines()[0] if answer else "no answer"
            raise DeployError(f"haproxy: {command.split(' /')[0]}: {first}")
        return answer

    def loaded(self, pem: Path) -> bool:
        return self.send(f"show ssl cert {pem}").startswith("Filename:")

    def crt_list_entries(self, crt_list: Path, pem: Path) -> list[tuple[int, str]]:
        """(line number, line without it) of each entry for `pem` in the running crt-list."""
        out = []
        for line in self.send(f"show ssl crt-list -n {crt_list}").splitlines():
            head, _, rest = line.partition(" ")
            path, _, number = head.rpartition(":")
            if path == str(pem) and number.isdigit():
                out.append((int(number), f"{path} {rest}".strip()))
        return out


@dataclass(frozen=True)
class _Plan:
    pem: Path
    line: str  # the crt-list line for this binding


class HaproxyTarget(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: HaproxySettings) -> None:
        self.settings = settings
        self.crt_list = Path(settings.crt_list)
        self.certs_dir = Path(settings.certs_dir) if settings.certs_dir else \
            self.crt_list if self.crt_list.is_dir() else self.crt_list.parent / "certplane"
        self.listen = settings.listen
        address = parse_address(settings.listen)
        self.host, self.port = address.reachable_host, address.port
        self.api = RuntimeApi(settings.socket, min(settings.command_timeout, 10.0))
        self.config = Path(settings.config)

    @property
    def is_directory(self) -> bool:
        return self.crt_list.is_dir()

    def endpoints(self, server_names: Sequence[str]) -> list[Endpoint]:
        return [Endpoint(self.host, self.port, probe_name(name)) for name in server_names]

    def check_binding(self, binding: Binding) -> None:
        if not binding.server_names:
            raise InvalidInputError("server_names", "HAProxy serves a certificate by name: give at least one")
        for name in binding.server_names:
            check_dns_name(name, "server_names")

    def _plan(self, binding: Binding) -> _Plan:
        pem = self.certs_dir / f"{binding.binding_id}.pem"
        return _Plan(pem, str(pem) if self.is_directory else f"{pem} {' '.join(binding.server_names)}")

    # --- the verbs -----------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        self.check_binding(binding)
        plan = self._plan(binding)
        with self._locked():
            ensure_dir(self.certs_dir, 0o700)
            files = [plan.pem] if self.is_directory else [plan.pem, self.crt_list]
            snapshot = FileSet(files)
            how = ""
            try:
                atomic_write(plan.pem, (bundle.fullchain_pem + bundle.key_pem).encode(), 0o600)
                if not self.is_directory:
                    self._write_crt_list(binding, keep=True)
                try:
                    self._swap_in(plan, bundle)
                    how = "runtime API"
                except ApiUnreachable as err:
                    how = "reload"
                    self._reload(f"the runtime API is unreachable ({err})")
            except DeployError as err:
                snapshot.restore()
                if how == "reload":  # the running HAProxy never took the new files, and they are put back
                    raise DeployFailed(str(err), nothing_changed=True) from None
                raise
            except BaseException:
                snapshot.restore()
                raise
        self._wait_served(binding, bundle.fingerprint_sha256)
        return {"listen": self.listen, "pem_file": str(plan.pem), "crt_list": str(self.crt_list), "applied_by": how}

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        self._wait_served(binding, bundle.fingerprint_sha256)

    def observe(self, binding: Binding) -> dict[str, str | None]:
        return {name: served_fingerprint(self.host, self.port, probe_name(name)) for name in binding.server_names}

    def remove(self, binding: Binding) -> None:
        """Out of the running process (names fall back to the bind line's default certificate), then off disk."""
        plan = self._plan(binding)
        with self._locked():
            gone = fingerprint_of_pem(read_or_none(plan.pem))
            files = [plan.pem] if self.is_directory else [plan.pem, self.crt_list]
            snapshot = FileSet(files)
            try:
                try:
                    for number, _ in self.api.crt_list_entries(self.crt_list, plan.pem):
                        self.api.expect(f"del ssl crt-list {self.crt_list} {plan.pem}:{number}", "deleted")
                    if self.api.loaded(plan.pem):
                        self.api.expect(f"del ssl cert {plan.pem}", "deleted")
                    reload_reason = None
                except ApiUnreachable as err:
                    reload_reason = f"the runtime API is unreachable ({err})"
                if not self.is_directory:
                    self._write_crt_list(binding, keep=False)
                plan.pem.unlink(missing_ok=True)
                if reload_reason:
                    self._reload(reload_reason)
            except BaseException:
                snapshot.restore()
                raise
        if gone and not self._served_elsewhere(plan.pem, gone):
            self._wait_served(binding, gone, present=False)

    # --- mechanics ------------------------------------------------------------------------------------------

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """HAProxy runs one certificate transaction at a time, process-wide: one change at a time per
        HAProxy, named by its config (see server_lock)."""
        return locked(server_lock("haproxy", str(self.config)))

    def _served_elsewhere(self, pem: Path, fingerprint: str) -> bool:
        """Another binding holds the same certificate (a renamed binding taking over): it may stay served."""
        return any(fingerprint_of_pem(read_or_none(p)) == fingerprint for p in self.certs_dir.glob("*.pem") if p != pem)

    def _swap_in(self, plan: _Plan, bundle: Bundle) -> None:
        """Into the running process, hitless: a loaded certificate is replaced in one commit; a new one is
        created, committed, then added to the crt-list (from then on its names are served by it)."""
        pem_text = bundle.fullchain_pem + bundle.key_pem
        created = not self.api.loaded(plan.pem)
        if created:
            self.api.expect(f"new ssl cert {plan.pem}", "New empty certificate store")
        try:
            self.api.send(f"abort ssl cert {plan.pem}")  # a transaction an interrupted run left open
            self.api.expect(f"set ssl cert {plan.pem}", "Transaction", pem_text)
            try:
                self.api.expect(f"commit ssl cert {plan.pem}", "Success!")
            except DeployError as err:
                self.api.send(f"abort ssl cert {plan.pem}")
                raise DeployError(f"{err}; previous certificate kept") from None
            # New server names: the new line goes in before the old one goes out, so no name is ever without it.
            entries = self.api.crt_list_entries(self.crt_list, plan.pem)
            if not any(text.split() == plan.line.split() for _, text in entries):
                self.api.expect(f"add ssl crt-list {self.crt_list}", "Success!", plan.line)
            for number, text in entries:
                if text.split() != plan.line.split():
                    self.api.expect(f"del ssl crt-list {self.crt_list} {plan.pem}:{number}", "deleted")
        except DeployError:
            if created:
                with contextlib.suppress(DeployError, ApiUnreachable):
                    self.api.send(f"del ssl cert {plan.pem}")
            raise

    def _write_crt_list(self, binding: Binding, *, keep: bool) -> None:
        """The team's crt-list with this binding's line added (keep) or taken out; every other line as it was."""
        plan = self._plan(binding)
        text = (read_or_none(self.crt_list) or b"").decode()
        lines = [ln for ln in text.splitlines() if ln.split(" ", 1)[0] != str(plan.pem)]
        if keep:
            lines.append(plan.line)
        mode = self.crt_list.stat().st_mode & 0o777 if self.crt_list.exists() else 0o644
        atomic_write(self.crt_list, ("\n".join(lines) + "\n").encode() if lines else b"", mode)

    def _reload(self, why: str) -> None:
        if not self.settings.reload_command:
            raise DeployError(f"haproxy: {why}, and no reload_command is set to fall back on; previous "
                              f"certificate kept")
        code, lines = run([self.settings.haproxy_bin, "-c", "-q", "-f", str(self.config)],
                          timeout=self.settings.command_timeout, what="haproxy")
        if code != 0:
            detail = next((ln for ln in lines if "ALERT" in ln), lines[-1] if lines else "no message")
            raise DeployError(f"haproxy: configuration check failed, previous certificate kept: {detail}")
        code, lines = run(self.settings.reload_command, timeout=self.settings.command_timeout, what="haproxy")
        if code != 0:
            raise DeployError(f"haproxy: reload failed (exit {code}), previous certificate kept: "
                              f"{lines[-1] if lines else 'no message'}")

    def _wait_served(self, binding: Binding, fingerprint: str, *, present: bool = True) -> None:
        s = self.settings
        require_served("haproxy", self.host, self.port, self.listen, binding.server_names, fingerprint,
                       present=present, tries=s.poll_tries, interval=s.poll_interval, confirmations=s.confirmations,
                       hint=lambda _name: f"; is {self.crt_list} on the bind line for {self.listen}?")


PLUGIN = TargetPlugin(KIND, HaproxySettings, HaproxyTarget)
