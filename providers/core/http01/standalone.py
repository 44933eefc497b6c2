"""HTTP-01 with a built-in responder (`acme.standalone.HTTP01Server`) that runs only while an order needs it.

It binds when the first challenge is presented and is always shut down in `close()`; request handling has a
short socket timeout so a stuck client cannot hold the order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Annotated

from josepy.b64 import b64decode
from acme import challenges, standalone

from ..acme.solver import Challenge
from ..errors import CertplaneError
from ..net import parse_address
from ..validation import HostPort
from ..validation import Model, whole_number
from .base import Http01Plugin


class StandaloneSettings(Model):
    """listen (HOST:PORT, default 0.0.0.0:80: where the CA connects), timeout (per request, 1-60 s)."""

    listen: HostPort = "0.0.0.0:80"
    timeout: Annotated[int, whole_number(1, 60)] = 5


Resource = standalone.HTTP01RequestHandler.HTTP01Resource


class _Resources(set[Resource]):
    """The tokens a responder serves, shared by its server thread (which iterates them on every request) and
    every order's thread (which adds and removes them). Every change and every iteration holds one lock, and
    iteration walks a snapshot, so a request never sees the set change under it. Reference-counted: two orders
    presenting the same token do not withdraw it from each other."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._counts: dict[Resource, int] = {}

    def present(self, resource: Resource) -> None:
        with self._lock:
            self._counts[resource] = self._counts.get(resource, 0) + 1
            set.add(self, resource)

    def withdraw(self, resource: Resource) -> None:
        with self._lock:
            left = self._counts.get(resource, 0) - 1
            if left > 0:
                self._counts[resource] = left
                return
            self._counts.pop(resource, None)
            set.discard(self, resource)

    def __iter__(self) -> Iterator[Resource]:
        with self._lock:
            snapshot = list(set.__iter__(self))
        return iter(snapshot)


class _Responder:
    """One listening socket per address, shared by every order in this process that uses it: Pulumi issues
    certificates concurrently, and two responders cannot bind the same port. Reference-counted by `users`;
    `users` and the registry of responders change only under `_LOCK`, the tokens under their own lock."""

    def __init__(self, host: str, port: int, request_timeout: int) -> None:
        self.resources = _Resources()
        try:
            self.server = standalone.HTTP01Server((host, port), self.resources, ipv6=":" in host,
                                                  timeout=request_timeout)
        except OSError as err:
            raise CertplaneError(f"standalone: cannot listen on {host}:{port}: {err.strerror}") from None
        self.users = 0
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="certplane-http01", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# Process-wide on purpose: the thing shared is a port, which is process-wide too.
_RESPONDERS: dict[tuple[str, int], _Responder] = {}
_LOCK = threading.Lock()


class StandaloneSolver:
    """Safe to share between threads: its own state (`_mine`, `_responder`) changes only under `_LOCK`."""

    challenge_type = "http-01"

    def __init__(self, host: str, port: int, request_timeout: int = 5) -> None:
        self.host, self.port, self.request_timeout = host, port, request_timeout
        self._mine: set[Resource] = set()  # what this solver presented (once each, however often asked)
        self._responder: _Responder | None = None

    def _resource(self, challenge: Challenge) -> Resource:
        chall = challenges.HTTP01(token=b64decode(challenge.token))
        response = challenges.HTTP01Response(key_authorization=challenge.validation)
        return Resource(chall=chall, response=response, validation=challenge.validation)

    def present(self, challenge: Challenge) -> None:
        resource = self._resource(challenge)
        with _LOCK:
            if self._responder is None:
                key = (self.host, self.port)
                responder = _RESPONDERS.get(key)
                if responder is None:
                    responder = _RESPONDERS[key] = _Responder(self.host, self.port, self.request_timeout)
                responder.users += 1
                self._responder = responder
            if resource in self._mine:
                return  # idempotent: presenting twice serves it once, and one cleanup withdraws it
            self._mine.add(resource)
            self._responder.resources.present(resource)

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        """Nothing to wait for: the socket is listening before the CA is told to look."""

    def cleanup(self, challenge: Challenge) -> None:
        resource = self._resource(challenge)
        with _LOCK:
            if resource in self._mine and self._responder is not None:
                self._mine.discard(resource)
                self._responder.resources.withdraw(resource)

    def close(self) -> None:
        with _LOCK:  # stopping inside the lock: an order starting now must not bind before the port is free
            responder, self._responder = self._responder, None
            if responder is None:
                return
            for resource in self._mine:
                responder.resources.withdraw(resource)
            self._mine.clear()
            responder.users -= 1
            if responder.users > 0:
                return
            if _RESPONDERS.get((self.host, self.port)) is responder:
                del _RESPONDERS[(self.host, self.port)]
            responder.stop()


def build(settings: StandaloneSettings) -> StandaloneSolver:
    address = parse_address(settings.listen)
    return StandaloneSolver(address.host, address.port, request_timeout=settings.timeout)


PLUGIN = Http01Plugin("standalone", StandaloneSettings, build)
