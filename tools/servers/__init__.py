"""Control of the local servers the demo and the tests use (Pebble, BIND, nginx, moto), bound to 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

S = TypeVar("S", bound="ManagedServer")


class ManagedServer:
    """Start/stop with a context manager; a start that fails half-way stops what it already started."""

    def _start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def start(self: S) -> S:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class SpawnedProcesses:
    """Servers made of child processes in their own sessions (a Ctrl-C meant for `make demo` does not take the
    demo's CA down with it), each logging to `<workdir>/<name>.log`, waited for over HTTP(S). Subclasses set
    `workdir`, `start_timeout`, `ca_bundle_path` and `_procs`."""

    workdir: Path
    start_timeout: float
    ca_bundle_path: Path
    _procs: list[subprocess.Popen[bytes]]

    def _spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> None:
        path = self.workdir / f"{name}.log"
        log = open(path, "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=self.workdir, start_new_session=True)
        log.close()
        proc.log_path = path  # type: ignore[attr-defined]
        self._procs.append(proc)

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle_path))

    def _wait_http(self, url: str, *, what: str, any_status: bool = False) -> None:
        """Until `url` answers (any HTTP status with `any_status`), bounded by start_timeout; a child that
        exits first fails at once."""
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:  # its log's last line: the work directory goes when it stops
                    raise RuntimeError(f"{what} exited early (code {proc.returncode}): {_last_line(proc)}")
            try:
                ctx = self._ssl_context() if url.startswith("https") else None
                with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                    resp.read()
                return
            except urllib.error.HTTPError as err:
                if any_status:
                    return
                last = err
            except (OSError, ssl.SSLError) as err:
                last = err
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not answer {url} within {self.start_timeout:g}s: {last}")


def _last_line(proc: subprocess.Popen[Any]) -> str:
    """The last line a spawned server wrote (why it exited), or where its log was."""
    path = getattr(proc, "log_path", None)
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()] if path else []
    except OSError:
        lines = []
    return lines[-1].strip()[:300] if lines else f"no output (log {path})"


def end_process(proc: subprocess.Popen[Any] | None, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Signal a server we started, wait for it (bounded), then kill it; its stderr pipe is closed."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stderr:
        proc.stderr.close()


def end_pid(pid: int | None, running: Callable[[], bool], *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """The same for a daemon known only by its pid file (started by another process, e.g. `make demo`)."""
    if pid is None or not running():
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if running():
        os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (also free for UDP in practice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
