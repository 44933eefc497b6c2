"""Network addresses as users write them (`127.0.0.1:8443`, `[::1]:53`, `ns1.example.com`), parsed in one place."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import InvalidInputError

_HOST = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?)$")
_WILDCARD = {"": "127.0.0.1", "*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True)
class Address:
    host: str  # an IPv6 address without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def reachable_host(self) -> str:
        """Where a client on this machine connects: a wildcard listen address is reached on loopback."""
        return _WILDCARD.get(self.host, self.host)


def parse_address(text: object, *, default_port: int | None = None) -> Address:
    """`HOST:PORT` (or `HOST` alone when `default_port` is given); IPv6 in brackets when a port follows.
    Raises InvalidInputError on no field, with the sentence the user sees."""
    usage = ("must be HOST:PORT, e.g. 127.0.0.1:8443" if default_port is None
             else f"must be HOST or HOST:PORT, e.g. 127.0.0.1:{default_port}")
    raw = str(text).strip() if isinstance(text, str) else ""
    host, port_text = raw, ""
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise InvalidInputError("", usage)
            port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    elif raw.count(":") > 1 and default_port is None:
        raise InvalidInputError("", usage)  # a bare IPv6 address needs brackets before a port
    if not port_text:
        if default_port is None:
            raise InvalidInputError("", usage)
        port = default_port
    elif port_text.isdigit() and 1 <= int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise InvalidInputError("", usage)
    if not _valid_host(host):
        raise InvalidInputError("", usage)
    return Address(host, port)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST.match(host))


def host_port(text: str) -> str:
    """`text` when it is `HOST:PORT` (the setting type is validation.HostPort)."""
    parse_address(text)
    return text


def host_optional_port(text: str) -> str:
    """`text` when it is `HOST` or `HOST:PORT` (the setting type is validation.HostOptionalPort)."""
    parse_address(text, default_port=53)
    return text


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def dns_match(pattern: str, name: str) -> bool:
    """RFC 6125: exact, or `*` as the whole leftmost label matching exactly one label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


__all__ = ["Address", "dns_match", "host_optional_port", "host_port", "is_ip", "parse_address"]
