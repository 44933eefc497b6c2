"""DNS-01 providers: one module each (settings model + provider + `PLUGIN`), listed once in `REGISTRY`.

`parse({"provider": "rfc2136", "nameserver": ..., ...})` validates a settings block (problems name the field
under `dns.`); `make_provider(settings)` builds the provider, `make_solver(settings)` wraps it for an ACME order
(CNAME delegation and the propagation wait included). Every provider also takes the framework settings of
`base.DnsSettings` (`resolver`, `propagation_timeout`, `propagation_check`).
"""

from __future__ import annotations

from typing import Annotated, Any

from ..net import parse_address
from ..plugins import Registry
from ..validation import first_problem
from .base import DnsError, DnsPlugin, DnsProvider, DnsSettings
from .propagation import Propagation
from .solver import Dns01Solver, challenge_name

REGISTRY: Registry[DnsPlugin] = Registry.of_modules(__name__, [
    "challtestsrv",
    "rfc2136",
    "route53",
], noun="DNS provider", key="provider")

DnsSettingsField = Annotated[DnsSettings, REGISTRY.validator(), REGISTRY.serializer()]
"""A `dns:` settings block as a model field (any provider, validated by its own model)."""


def parse(settings: Any) -> DnsSettings:
    """A settings block (or already parsed settings); raises InvalidInputError naming the first bad field."""
    if isinstance(settings, DnsSettings):
        return settings
    parsed = first_problem(lambda: REGISTRY.validate(settings, field="dns"))
    assert isinstance(parsed, DnsSettings)
    return parsed


def make_provider(settings: Any) -> DnsProvider:
    parsed = parse(settings)
    return REGISTRY.plugin_of(parsed).build(parsed)


def propagation_of(settings: Any) -> Propagation | None:
    parsed = parse(settings)
    if not parsed.propagation_check:
        return None
    resolver = parse_address(parsed.resolver, default_port=53) if parsed.resolver else None
    return Propagation(resolver=(resolver.host, resolver.port) if resolver else None,
                       timeout=float(parsed.propagation_timeout))


def make_solver(settings: Any) -> Dns01Solver:
    return Dns01Solver(make_provider(settings), propagation_of(settings))


__all__ = ["DnsError", "DnsProvider", "DnsSettings", "DnsSettingsField", "Dns01Solver", "Propagation", "REGISTRY",
           "challenge_name", "make_provider", "make_solver", "parse", "propagation_of"]
