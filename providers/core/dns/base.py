"""What every DNS-01 provider is: two idempotent record writes, a settings model, and a plug-in entry."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from ..errors import CertplaneError
from ..validation import HostOptionalPort
from ..plugins import Factory
from ..validation import Model, whole_number


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


class DnsSettings(Model):
    """Settings every provider takes, besides its own: `resolver` (HOST[:PORT] used for CNAME lookups and
    propagation checks; default: the zone's authoritative nameservers), `propagation_timeout` (seconds) and
    `propagation_check` (false: trust the provider's API and do not wait)."""

    resolver: HostOptionalPort | None = None
    propagation_timeout: Annotated[int, whole_number(1, 3600)] = 60
    propagation_check: bool = True


DnsPlugin = Factory[Any, DnsProvider]
"""One DNS provider: its name in `dns.provider`, its settings model, and how to build it from them."""


Port = Annotated[int, whole_number(1, 65535)]
Ttl = Annotated[int, whole_number(1, 86400)]
Timeout = Annotated[int, whole_number(1, 300)]


def normalize(fqdn: str) -> str:
    return fqdn.rstrip(".").lower()
