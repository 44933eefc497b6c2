"""Interrupting a real `pulumi up` at a chosen moment, and what the fault tests need around it.

- `Checkout`: a fresh copy of the repo (tracked files, this machine's .venv and .tools) with a `local` stack of
  the test's own, run from a fresh shell, so docs/RECOVERY.md's commands run exactly as written.
- Pause points, so a kill lands at a known step: `HoldingProxy` (an HTTP proxy in front of challtestsrv or moto
  that forwards one chosen request, then holds its response: the change happened, the caller has not heard) and
  `ReloadGate` (an nginx reload_command that waits while a file exists).
- `RunningUp.power_cut()`: SIGKILL the engine and every process it started, as a crash or the OOM killer of the
  whole job does. The engine puts each plugin (language host, provider) in a process group of its own, so
  `os.killpg` of the engine's group alone leaves them running: the whole tree is stopped first (nothing can
  spawn or reparent), then killed. `RunningUp.kill_cli()` kills only the `pulumi` process, as `kill -9 PID` does.
- `PebbleLog`: Pebble's own count of orders, issued certificates and accounts (its management API lists none).

Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
STACK = "local"  # the stack docs/RECOVERY.md names, as README does
RECOVERY_SECTION = "When an up is interrupted"


# --- a fresh checkout with a stack of the test's own ----------------------------------------------------------

def fresh_shell() -> dict[str, str]:
    """What a new login shell has: no AWS, Pulumi or certplane variables of the test run."""
    return {"HOME": os.environ.get("HOME", "/root"), "USER": os.environ.get("USER", "root"), "LANG": "C.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}


def recovery_commands() -> list[str]:
    """The shell lines of the first ```sh block under `## When an up is interrupted` in docs/RECOVERY.md."""
    text = (ROOT / "docs" / "RECOVERY.md").read_text()
    body = text.split(f"## {RECOVERY_SECTION}\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", body, re.S)
    assert block, f"docs/RECOVERY.md has no ```sh block under ## {RECOVERY_SECTION}"
    lines = [re.split(r"\s{2,}#", line)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


class Checkout:
    """The working tree's files (tracked, and untracked ones not ignored: work in progress is tested as it is),
    plus this machine's built tools; the embedded default backend
    (`.state/`) and passphrase inside it; the stack `local` with the given `certplane:*` config."""

    def __init__(self, dest: Path, config: dict[str, Any]) -> None:
        self.repo = dest
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"], capture_output=True, check=True,
                               timeout=60).stdout.decode().split("\0")
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, dest / name)
        for tool in (".venv", ".tools"):
            (dest / tool).symlink_to(ROOT / tool)
        self.write_config(config)
        self.env = fresh_shell()
        self.runs: list[RunningUp] = []
        self.logs = dest.parent / "logs"
        self.logs.mkdir(exist_ok=True)
        self.check(f"tools/pulumi stack select {STACK} --create")

    def write_config(self, config: dict[str, Any]) -> None:
        doc = {"config": {f"certplane:{k}": v for k, v in config.items()}}
        (self.repo / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def sh(self, command: str, *, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], cwd=self.repo, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def check(self, command: str, *, env: dict[str, str] | None = None) -> str:
        done = self.sh(command, env=env)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def start_up(self, env: dict[str, str] | None = None, name: str = "interrupted-up") -> RunningUp:
        """`tools/pulumi up --yes --skip-preview --stack local` (the script execs the engine: same pid), in a
        session of its own."""
        log = self.logs / f"{name}.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(["tools/pulumi", "up", "--yes", "--skip-preview", "--stack", STACK],
                                    cwd=self.repo, env={**self.env, **(env or {})}, stdin=subprocess.DEVNULL,
                                    stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        self.runs.append(RunningUp(proc, log))
        return self.runs[-1]

    def up_killed_at(self, proxy: HoldingProxy, what: str) -> RunningUp:
        """Start an `up`, wait until `proxy` holds the response it was set to hold, then cut the power (and let
        the held response go to nobody)."""
        proxy.arm()
        up = self.start_up()
        up.wait_for(proxy.reached.is_set, what)
        up.power_cut()
        proxy.release()
        return up

    def close(self) -> None:
        """End whatever an `up` of ours left running: the run itself (a test that failed before its kill) and
        what a CLI-only kill orphaned."""
        for run in self.runs:
            if run.proc.poll() is None:
                run.power_cut()
            run.end_orphans()

    # --- what the state backend holds ----------------------------------------------------------------------
    @property
    def backend(self) -> Path:
        return self.repo / ".state" / ".pulumi"

    def checkpoint(self) -> dict[str, Any]:
        doc = json.loads((self.backend / "stacks" / "certplane" / f"{STACK}.json").read_text())
        return dict(doc["checkpoint"]["latest"] or {})

    def pending_operations(self) -> list[tuple[str, str]]:
        """(type, resource name) of each operation the checkpoint records as begun and never finished."""
        return [(op["type"], op["resource"]["urn"].rsplit("::", 1)[-1])
                for op in self.checkpoint().get("pending_operations") or []]

    def resources(self) -> list[str]:
        """`Type name` of each resource in the checkpoint, e.g. `Certificate shop`, `AcmeAccount pebble-account`."""
        return [f'{r["type"].rsplit(":", 1)[-1]} {r["urn"].rsplit("::", 1)[-1]}'
                for r in self.checkpoint().get("resources") or []]

    def locks(self) -> list[Path]:
        return sorted(p for p in (self.backend / "locks").rglob("*.json")) if (self.backend / "locks").exists() else []

    def outputs(self) -> dict[str, Any]:
        out = self.sh(f"tools/pulumi stack output --json --show-secrets --stack {STACK}")
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))


# --- processes ------------------------------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time in clock ticks): the start time tells a pid from a later reuse of it."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid` (whatever its process group): pid -> start time."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def alive(procs: dict[int, str]) -> dict[int, str]:
    """Those of `procs` (pid -> start time) still running (zombies are not)."""
    table = _proc_table()
    out = {}
    for pid, start in procs.items():
        if table.get(pid, (0, ""))[1] != start:
            continue
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out[pid] = start
    return out


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def kill_all(procs: dict[int, str], sig: int = signal.SIGKILL) -> None:
    """Signal each of `procs` that is still the same process (pid and start time)."""
    for pid in alive(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class RunningUp:
    """A `pulumi up` started by `Checkout.start_up`, its output in `log`."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.orphans: dict[int, str] = {}  # what kill_cli left running (the test ends them)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, reached: Callable[[], bool], what: str, timeout: float = 120) -> float:
        """Poll until `reached()`; fail if the up ends first or the time runs out. Returns the seconds taken."""
        start = time.monotonic()
        while not reached():
            if self.proc.poll() is not None:
                raise AssertionError(f"the up ended (exit {self.proc.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() - start > timeout:
                self.power_cut()
                raise AssertionError(f"no {what} within {timeout:g} s:\n{self.output()}")
            time.sleep(0.02)
        return time.monotonic() - start

    def power_cut(self) -> dict[int, str]:
        """SIGSTOP the engine and everything below it (re-scanning until nothing new appears), then SIGKILL
        them all. Returns what was killed (pid -> command line)."""
        stopped: dict[int, str] = {}
        table = _proc_table()
        if self.proc.poll() is None:
            stopped[self.proc.pid] = table.get(self.proc.pid, (0, ""))[1]
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGSTOP)
        for _ in range(50):
            new = {p: s for p, s in descendants(self.proc.pid).items() if p not in stopped}
            if not new:
                break
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            stopped.update(new)
        names = {pid: command_line(pid) for pid in stopped}
        kill_all(stopped)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while alive(stopped) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(stopped), f"still running after SIGKILL: {alive(stopped)}"
        return names

    def kill_cli(self) -> dict[int, str]:
        """SIGKILL the `pulumi` process only. Returns what it had started that is still running afterwards
        (pid -> command line); they are remembered in `orphans` for `end_orphans`."""
        below = descendants(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        time.sleep(0.5)
        self.orphans = alive(below)
        return {pid: command_line(pid) for pid in self.orphans}

    def end_orphans(self) -> None:
        """SIGKILL what kill_cli left running (and anything they started since), each checked by start time."""
        procs = dict(self.orphans)
        for pid in list(procs):
            procs.update(descendants(pid))
        kill_all(procs)
        deadline = time.monotonic() + 10
        while alive(procs) and time.monotonic() < deadline:
            time.sleep(0.05)


# --- pause points ---------------------------------------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
Reply = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


class ForwardingProxy:
    """A forwarding proxy on 127.0.0.1 to `upstream` (http:// or https://) that lets a test step into chosen
    requests: `intercept(method, path, body, forward)` returns the reply to send (usually `forward()`'s).

    `tls=(cert, key)` makes it listen with TLS; `upstream_ca` is the trust for an https:// upstream. The
    client's Host header is passed on unchanged, so a server that builds its URLs from it (Pebble's directory,
    its JWS `url` check) sees the proxy's own address: the client never learns there is a proxy."""

    def __init__(self, upstream: str, intercept: Callable[[str, str, bytes, Callable[[], Reply]], Reply], *,
                 tls: tuple[Path, Path] | None = None, upstream_ca: Path | None = None) -> None:
        self.upstream_url = upstream
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80))
        self.upstream_tls = ssl.create_default_context(cafile=str(upstream_ca)) if parsed.scheme == "https" else None
        if self.upstream_tls is not None:
            self.upstream_tls.check_hostname = False  # a server on this machine, reached by address
        self.scheme = "https" if tls else "http"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                status, reply, data = intercept(self.command, self.path, body,
                                                lambda: proxy._forward(self.command, self.path, body, headers))
                if status == 0:  # "unreachable": close without a word
                    self.close_connection = True
                    return
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    for key, value in reply:
                        if key.lower() not in _HOP_BY_HOP | {"content-length"}:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def _forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        if self.upstream_tls is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(*self.upstream, timeout=60,
                                                                           context=self.upstream_tls)
        else:
            conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class HoldingProxy(ForwardingProxy):
    """While armed, the first request `matches(method, path, body)` selects is forwarded, then its response is
    held back until `release()` (at most `hold_timeout` s): the change is made upstream, the caller has not
    heard of it yet. `reached` is set at that moment. Every other request passes straight through."""

    def __init__(self, upstream: str, matches: Callable[[str, str, bytes], bool], hold_timeout: float = 60, *,
                 tls: tuple[Path, Path] | None = None, upstream_ca: Path | None = None) -> None:
        self.matches = matches
        self.hold_timeout = hold_timeout
        self.armed = False
        self.reached = threading.Event()
        self._released = threading.Event()
        self.held: tuple[str, str, bytes] | None = None
        super().__init__(upstream, self._hold, tls=tls, upstream_ca=upstream_ca)

    def _hold(self, method: str, path: str, body: bytes, forward: Callable[[], Reply]) -> Reply:
        reply = forward()
        if self.armed and self.held is None and self.matches(method, path, body):
            self.held = (method, path, body)
            self.reached.set()
            self._released.wait(self.hold_timeout)
        return reply

    def arm(self) -> None:
        self.armed = True

    def release(self) -> None:
        self.armed = False
        self._released.set()

    def close(self) -> None:
        self.release()
        super().close()


class FaultProxy(ForwardingProxy):
    """Answers the requests `fault` selects with a reply of the test's choosing instead of the upstream's —
    `fault(method, path, body)` returns a `Reply`, or None to forward. Status 0 closes the connection unanswered
    (an unreachable server). `faulted` counts the requests answered so; `set(None)` heals it. `observed` keeps
    (method, path, status, the first 512 bytes of the body) of every reply sent."""

    def __init__(self, upstream: str, *, tls: tuple[Path, Path] | None = None,
                 upstream_ca: Path | None = None) -> None:
        self.fault: Callable[[str, str, bytes], Reply | None] | None = None
        self.faulted = 0
        self.observed: list[tuple[str, str, int, bytes]] = []
        self._lock = threading.Lock()
        super().__init__(upstream, self._maybe_fault, tls=tls, upstream_ca=upstream_ca)

    def set(self, fault: Callable[[str, str, bytes], Reply | None] | None) -> None:
        with self._lock:
            self.fault, self.faulted = fault, 0

    def _maybe_fault(self, method: str, path: str, body: bytes, forward: Callable[[], Reply]) -> Reply:
        with self._lock:
            reply = self.fault(method, path, body) if self.fault else None
            if reply is not None:
                self.faulted += 1
        reply = reply if reply is not None else forward()
        self.observed.append((method, path, reply[0], reply[2][:512]))
        return reply


class ReloadGate:
    """An nginx `reload_command` that, while `hold` exists, touches `reached` and waits (at most 60 s) for `hold`
    to go away, then runs the real reload."""

    def __init__(self, directory: Path, real_reload: list[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.hold, self.reached, self.script = directory / "hold", directory / "reached", directory / "reload.sh"
        self.script.write_text(
            "#!/bin/sh\n"
            f"if [ -e '{self.hold}' ]; then\n"
            f"  touch '{self.reached}'\n"
            f"  i=0; while [ -e '{self.hold}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
            "fi\n"
            f"exec {' '.join(repr(a) if ' ' in a else a for a in real_reload)}\n")
        self.script.chmod(0o755)

    @property
    def argv(self) -> list[str]:
        return [str(self.script)]

    def arm(self) -> None:
        self.reached.unlink(missing_ok=True)
        self.hold.touch()

    def release(self) -> None:
        self.hold.unlink(missing_ok=True)


# --- Pebble's own count --------------------------------------------------------------------------------------

class PebbleLog:
    """Counts from Pebble's log since `mark()`: new orders (`Added order`), issued certificates (`Issued
    certificate serial`) and new accounts (`There are now N accounts in memory`). Pebble's management API has
    no order listing; its log line per order is the count."""

    def __init__(self, log: Path) -> None:
        self.path = log
        self._offset = 0
        self.mark()

    def mark(self) -> None:
        self._offset = self.path.stat().st_size

    def counts(self) -> dict[str, int]:
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            text = f.read().decode(errors="replace")
        return {"orders": len(re.findall(r'Added order "', text)),
                "issued": len(re.findall(r"Issued certificate serial", text)),
                "accounts": len(re.findall(r"There are now \d+ accounts in memory", text))}

    def issued_serials(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            text = f.read().decode(errors="replace")
        return re.findall(r"Issued certificate serial (\w+)", text)
