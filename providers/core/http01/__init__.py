"""HTTP-01 solvers: `webroot` (write the token where your web server serves it) and `standalone` (a small
built-in responder for the duration of the order). `make_solver(settings)` builds one from
`{mode: webroot, webroot: DIR}` or `{mode: standalone, listen: "127.0.0.1:80"}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError
from .standalone import StandaloneSolver, parse_listen
from .webroot import WebrootSolver

MODES = ("webroot", "standalone")


def make_solver(settings: Mapping[str, Any] | None) -> WebrootSolver | StandaloneSolver:
    if not settings:
        raise InvalidInputError("http01", "HTTP-01 needs settings: {mode: webroot, webroot: DIR} or "
                                          "{mode: standalone, listen: HOST:PORT}")
    settings = dict(settings)
    mode = settings.get("mode") or ("webroot" if settings.get("webroot") else None)
    if mode not in MODES:
        raise InvalidInputError("http01.mode", f"unknown HTTP-01 mode {mode!r}: use {' or '.join(MODES)}")
    for key in settings:
        if key not in ("mode", "webroot", "listen", "timeout"):
            raise InvalidInputError(f"http01.{key}", f"{mode}: unknown setting {key!r}")
    if mode == "webroot":
        root = settings.get("webroot")
        if not root or not isinstance(root, str):
            raise InvalidInputError("http01.webroot", "webroot: the directory your web server serves is required")
        return WebrootSolver(root)
    host, port = parse_listen(settings.get("listen") or "0.0.0.0:80")
    timeout = settings.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 60:
        raise InvalidInputError("http01.timeout", "standalone: the per-request timeout must be 1 to 60 seconds")
    return StandaloneSolver(host, port, request_timeout=int(timeout))


def validate(settings: Mapping[str, Any] | None) -> None:
    make_solver(settings)


__all__ = ["MODES", "StandaloneSolver", "WebrootSolver", "make_solver", "validate"]
