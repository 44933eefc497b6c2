"""What every DNS-01 provider is: two idempotent record writes, and a config parsed with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import CertplaneError, InvalidInputError


class DnsError(CertplaneError):
    """A DNS provider failed to write or remove a record; the message starts with the provider's name."""


class DnsProvider(Protocol):
    """Writes challenge TXT records. The framework computes `fqdn` (`_acme-challenge.<domain>`, or the target
    of its CNAME) and `value`; providers only write records. Both calls are idempotent: presenting twice
    leaves one record, cleaning up a missing record is not an error. `fqdn` carries no trailing dot."""

    @property
    def name(self) -> str: ...

    def present(self, fqdn: str, value: str) -> None: ...

    def cleanup(self, fqdn: str, value: str) -> None: ...


def setting(settings: Mapping[str, Any], key: str, provider: str, *, required: bool = False,
            default: Any = None) -> Any:
    """One provider setting; missing required settings fail naming `dns.<key>` and the provider."""
    value = settings.get(key)
    if value in (None, ""):
        if required:
            raise InvalidInputError(f"dns.{key}", f"{provider}: {key} is required")
        return default
    return value


def int_setting(settings: Mapping[str, Any], key: str, provider: str, default: int, *, low: int = 1,
                high: int = 65535) -> int:
    raw = settings.get(key, default)
    if raw in (None, ""):
        return default
    if isinstance(raw, float) and raw.is_integer():  # numbers cross the Pulumi wire as doubles
        raw = int(raw)
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise InvalidInputError(f"dns.{key}", f"{provider}: {key} must be a whole number from {low} to {high}")
    return raw


def host_port(text: str, field: str, provider: str, default_port: int = 53) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` → (host, port)."""
    text = str(text).strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], field, provider)
    elif text.count(":") == 1:
        host, raw = text.split(":")
        port = _port(raw, field, provider)
    if not host:
        raise InvalidInputError(field, f"{provider}: {text!r} is not a host or host:port")
    return host, port


def _port(raw: str, field: str, provider: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InvalidInputError(field, f"{provider}: {raw!r} is not a port number")
    return int(raw)


def normalize(fqdn: str) -> str:
    return fqdn.rstrip(".").lower()
