"""Control of the local servers the demo and the tests use (Pebble, BIND, nginx, moto), bound to 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
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
