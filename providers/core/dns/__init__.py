"""DNS-01 providers: one module each, listed in one registry, built from a settings mapping.

`make_provider({"provider": "rfc2136", "nameserver": ..., ...})` validates the settings (errors name the field
and start with the provider's name) and returns an object with `present(fqdn, value)` / `cleanup(fqdn, value)`.
`make_solver(settings)` wraps it for an ACME order (CNAME delegation and propagation wait included).
Framework settings shared by every provider: `resolver` (host:port used for CNAME lookups and propagation
checks; default: the zone's authoritative nameservers), `propagation_timeout` (seconds, default 60),
`propagation_check` (default true).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidInputError
from .base import DnsError, DnsProvider, host_port, int_setting
from .challtestsrv import ChalltestsrvProvider
from .propagation import Propagation
from .rfc2136 import Rfc2136Provider
from .route53 import Route53Provider
from .solver import Dns01Solver, challenge_name

PROVIDERS: dict[str, Callable[[Mapping[str, Any]], DnsProvider]] = {
    "challtestsrv": ChalltestsrvProvider.from_settings,
    "rfc2136": Rfc2136Provider.from_settings,
    "route53": Route53Provider.from_settings,
}
_CLASSES: dict[str, type] = {"challtestsrv": ChalltestsrvProvider, "rfc2136": Rfc2136Provider,
                             "route53": Route53Provider}
FRAMEWORK_SETTINGS = ("provider", "resolver", "propagation_timeout", "propagation_check")


def make_provider(settings: Mapping[str, Any] | None) -> DnsProvider:
    settings = dict(settings or {})
    kind = settings.get("provider")
    if not kind:
        raise InvalidInputError("dns.provider", f"a DNS provider is required (known: {', '.join(PROVIDERS)})")
    if not isinstance(kind, str) or kind not in PROVIDERS:
        raise InvalidInputError("dns.provider", f"unrecognized DNS provider: {kind} (known: {', '.join(PROVIDERS)})")
    known = {f.name for f in dataclasses.fields(_CLASSES[kind])} - {"name"}
    for key in settings:
        if key not in known and key not in FRAMEWORK_SETTINGS:
            raise InvalidInputError(f"dns.{key}", f"{kind}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
    return PROVIDERS[kind](settings)


def propagation_of(settings: Mapping[str, Any] | None) -> Propagation | None:
    settings = dict(settings or {})
    kind = str(settings.get("provider") or "dns")
    if settings.get("propagation_check") is False:
        return None
    resolver = host_port(str(settings["resolver"]), "dns.resolver", kind) if settings.get("resolver") else None
    timeout = int_setting(settings, "propagation_timeout", kind, 60, high=3600)
    return Propagation(resolver=resolver, timeout=float(timeout))


def make_solver(settings: Mapping[str, Any] | None) -> Dns01Solver:
    return Dns01Solver(make_provider(settings), propagation_of(settings))


def validate(settings: Mapping[str, Any] | None) -> None:
    """Check settings without touching the network (for `check`/preview)."""
    make_provider(settings)
    propagation_of(settings)


__all__ = ["DnsError", "DnsProvider", "Dns01Solver", "PROVIDERS", "Propagation", "challenge_name",
           "make_provider", "make_solver", "propagation_of", "validate"]
