"""Warnings from the provider process into the engine's own diagnostics: `warning:` lines in `pulumi preview` and
`up`, as a program's `pulumi.log.warn` makes them (a provider's stderr only ever becomes an info line).

The engine starts every provider plugin with its gRPC address as the first argument (the SDK's
`python -m pulumi.dynamic` server ignores it): `warn` sends a LogRequest to that address, on one channel per
process made on first use. Outside the provider process (a unit test, the program) it does nothing, and it never
raises: a warning that cannot be sent is dropped, never a failed preview. Each distinct message is sent once
per process (one process per engine run).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import Any

SEND_TIMEOUT_SECONDS = 5.0
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d+$")  # host:port, as the engine passes it


class _Channel:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: set[str] = set()
        self.stub: Any = None  # the EngineStub, once made
        self.unavailable = False


_channel = _Channel()


def engine_address() -> str | None:
    """The engine's gRPC address when this is the provider process (`python -m pulumi.dynamic`), else None."""
    server = sys.modules.get("__main__")
    if not hasattr(server, "DynamicResourceProviderServicer") or len(sys.argv) < 2:
        return None
    address = sys.argv[1]
    return address if _ADDRESS.match(address) else None


def active() -> bool:
    """Whether a warning would reach an engine (so callers may skip the work of composing one)."""
    return not _channel.unavailable and engine_address() is not None


def _stub() -> Any:
    """The engine's stub, made once; None when there is no engine to talk to. Called with the lock held."""
    if _channel.stub is None and not _channel.unavailable:
        address = engine_address()
        if address is None:
            _channel.unavailable = True
            return None
        import grpc

        from pulumi.runtime.proto import engine_pb2_grpc

        _channel.stub = engine_pb2_grpc.EngineStub(grpc.insecure_channel(address))
    return _channel.stub


def warn(message: str, urn: str | None = None) -> bool:
    """Send `message` to the engine as a warning (about the resource `urn`, if given), once per process.
    Returns whether it was sent now; never raises."""
    try:
        with _channel.lock:
            if message in _channel.sent:
                return False
            stub = _stub()
            if stub is None:
                return False
            _channel.sent.add(message)
        from pulumi.runtime.proto import engine_pb2

        stub.Log(engine_pb2.LogRequest(severity=engine_pb2.WARNING, message=message, urn=urn or ""),
                 timeout=SEND_TIMEOUT_SECONDS)
        return True
    except Exception:  # noqa: BLE001 - a warning is advisory: never a failed verb
        return False


def _reset_for_tests() -> None:
    global _channel
    _channel = _Channel()
