"""DNS-01 for an ACME order: computes `_acme-challenge.<domain>` (following a CNAME delegation), has the
provider write the TXT value, waits until it is visible, and removes it afterwards."""

from __future__ import annotations

from collections.abc import Sequence

from ..acme.solver import Challenge
from .base import DnsProvider
from .propagation import Propagation, cname_target, wait_for_txt


def challenge_name(domain: str) -> str:
    """RFC 8555 §8.4: the TXT name for an identifier (a wildcard authorization names the base domain)."""
    return "_acme-challenge." + domain.removeprefix("*.").rstrip(".")


class Dns01Solver:
    challenge_type = "dns-01"

    def __init__(self, provider: DnsProvider, propagation: Propagation | None = None,
                 follow_cname: bool = True) -> None:
        self.provider = provider
        self.propagation = propagation  # None: do not wait (the provider's API is the authority)
        self.follow_cname = follow_cname
        self._targets: dict[Challenge, str] = {}

    def target(self, challenge: Challenge) -> str:
        name = challenge_name(challenge.domain)
        if not self.follow_cname:
            return name
        resolver = self.propagation.resolver if self.propagation else None
        return cname_target(name, resolver)

    def present(self, challenge: Challenge) -> None:
        fqdn = self._targets.get(challenge) or self.target(challenge)
        self._targets[challenge] = fqdn
        self.provider.present(fqdn, challenge.validation)

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        if self.propagation is not None:
            wait_for_txt([(self._targets[c], c.validation) for c in challenges], self.propagation)

    def cleanup(self, challenge: Challenge) -> None:
        fqdn = self._targets.pop(challenge, None) or challenge_name(challenge.domain)
        self.provider.cleanup(fqdn, challenge.validation)

    def close(self) -> None:
        self._targets.clear()
