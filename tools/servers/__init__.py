"""Control of the local servers the demo and the tests use (Pebble, BIND, nginx, moto), bound to 127.0.0.1."""

from __future__ import annotations

import socket
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


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (also free for UDP in practice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
