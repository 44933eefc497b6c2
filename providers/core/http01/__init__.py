"""HTTP-01 solvers: `webroot` (write the token where your web server serves it) and `standalone` (a small
built-in responder for the duration of the order), one registry keyed by `mode`. `make_solver(settings)` builds
one from `{mode: webroot, webroot: DIR}` or `{mode: standalone, listen: "127.0.0.1:80"}`; `mode` may be left
out when `webroot` is given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from ..acme.solver import Solver
from ..plugins import Registry
from ..validation import Model, first_problem
from .base import Http01Plugin
from .standalone import StandaloneSolver
from .webroot import WebrootSolver


def _implied_mode(raw: Mapping[str, Any]) -> str | None:
    return "webroot" if raw.get("webroot") else None


REGISTRY: Registry[Http01Plugin] = Registry.of_modules(__name__, [
    "webroot",
    "standalone",
], noun="HTTP-01 mode", key="mode", implied=_implied_mode)

Http01SettingsField = Annotated[Model, REGISTRY.validator(), REGISTRY.serializer()]


def parse(settings: Any) -> Model:
    if isinstance(settings, Model):
        return settings
    return first_problem(lambda: REGISTRY.validate(settings, field="http01"))


def make_solver(settings: Any) -> Solver:
    parsed = parse(settings)
    return REGISTRY.plugin_of(parsed).build(parsed)


__all__ = ["Http01SettingsField", "REGISTRY", "StandaloneSolver", "WebrootSolver", "make_solver", "parse"]
