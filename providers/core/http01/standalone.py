"""HTTP-01 with a built-in responder (`acme.standalone.HTTP01Server`) that runs only while an order needs it.

It binds when the first challenge is presented and is always shut down in `close()`; request handling has a
short socket timeout so a stuck client cannot hold the order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from josepy.b64 import b64decode
from acme import challenges, standalone

from ..acme.solver import Challenge
from ..errors import CertplaneError, InvalidInputError


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError("http01.listen", f"standalone: {text!r} is not host:port, e.g. 127.0.0.1:80")
    return host.strip("[]"), int(port)


class StandaloneSolver:
    challenge_type = "http-01"

    def __init__(self, host: str, port: int, request_timeout: int = 5) -> None:
        self.host, self.port, self.request_timeout = host, port, request_timeout
        self._resources: set[standalone.HTTP01RequestHandler.HTTP01Resource] = set()
        self._server: standalone.HTTP01Server | None = None
        self._thread: threading.Thread | None = None

    def _resource(self, challenge: Challenge) -> standalone.HTTP01RequestHandler.HTTP01Resource:
        chall = challenges.HTTP01(token=b64decode(challenge.token))
        response = challenges.HTTP01Response(key_authorization=challenge.validation)
        return standalone.HTTP01RequestHandler.HTTP01Resource(chall=chall, response=response,
                                                              validation=challenge.validation)

    def _start(self) -> None:
        try:
            server = standalone.HTTP01Server((self.host, self.port), self._resources,
                                             ipv6=":" in self.host, timeout=self.request_timeout)
        except OSError as err:
            raise CertplaneError(f"standalone: cannot listen on {self.host}:{self.port}: {err.strerror}") from None
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="certplane-http01", daemon=True)
        self._thread.start()

    def present(self, challenge: Challenge) -> None:
        self._resources.add(self._resource(challenge))  # the handler reads this set on every request
        if self._server is None:
            self._start()

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        """Nothing to wait for: the socket is listening before the CA is told to look."""

    def cleanup(self, challenge: Challenge) -> None:
        self._resources.discard(self._resource(challenge))

    def close(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
