"""HTTP-01 with a built-in responder (`acme.standalone.HTTP01Server`) that runs only while an order needs it.

It binds when the first challenge is presented and is always shut down in `close()`; request handling has a
short socket timeout so a stuck client cannot hold the order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Annotated

from josepy.b64 import b64decode
from acme import challenges, standalone

from ..acme.solver import Challenge
from ..errors import CertplaneError
from ..net import HostPort, parse_address
from ..validation import Model, whole_number
from .base import Http01Plugin


class StandaloneSettings(Model):
    """listen (HOST:PORT, default 0.0.0.0:80: where the CA connects), timeout (per request, 1-60 s)."""

    listen: HostPort = "0.0.0.0:80"
    timeout: Annotated[int, whole_number(1, 60)] = 5


class _Responder:
    """One listening socket per address, shared by every order in this process that uses it: Pulumi issues
    certificates concurrently, and two responders cannot bind the same port. Reference-counted."""

    def __init__(self, host: str, port: int, request_timeout: int) -> None:
        self.resources: set[standalone.HTTP01RequestHandler.HTTP01Resource] = set()
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
    challenge_type = "http-01"

    def __init__(self, host: str, port: int, request_timeout: int = 5) -> None:
        self.host, self.port, self.request_timeout = host, port, request_timeout
        self._mine: set[standalone.HTTP01RequestHandler.HTTP01Resource] = set()
        self._responder: _Responder | None = None

    def _resource(self, challenge: Challenge) -> standalone.HTTP01RequestHandler.HTTP01Resource:
        chall = challenges.HTTP01(token=b64decode(challenge.token))
        response = challenges.HTTP01Response(key_authorization=challenge.validation)
        return standalone.HTTP01RequestHandler.HTTP01Resource(chall=chall, response=response,
                                                              validation=challenge.validation)

    def present(self, challenge: Challenge) -> None:
        resource = self._resource(challenge)
        with _LOCK:
            if self._responder is None:
                key = (self.host, self.port)
                responder = _RESPONDERS.get(key) or _Responder(self.host, self.port, self.request_timeout)
                _RESPONDERS[key] = responder
                responder.users += 1
                self._responder = responder
            self._mine.add(resource)
            self._responder.resources.add(resource)  # the handler reads this set on every request

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        """Nothing to wait for: the socket is listening before the CA is told to look."""

    def cleanup(self, challenge: Challenge) -> None:
        resource = self._resource(challenge)
        with _LOCK:
            self._mine.discard(resource)
            if self._responder is not None:
                self._responder.resources.discard(resource)

    def close(self) -> None:
        with _LOCK:  # stopping inside the lock: an order starting now must not bind before the port is free
            responder, self._responder = self._responder, None
            if responder is None:
                return
            responder.resources.difference_update(self._mine)
            self._mine.clear()
            responder.users -= 1
            if responder.users > 0:
                return
            _RESPONDERS.pop((self.host, self.port), None)
            responder.stop()


def build(settings: StandaloneSettings) -> StandaloneSolver:
    address = parse_address(settings.listen)
    return StandaloneSolver(address.host, address.port, request_timeout=settings.timeout)


PLUGIN = Http01Plugin("standalone", StandaloneSettings, build)
