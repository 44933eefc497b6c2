"""The contract between an ACME order and whatever proves control of a name (DNS-01, HTTP-01)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Challenge:
    """One challenge to satisfy. `domain` is the authorization's identifier (a wildcard's `*.` removed);
    `validation` is what must be served: the TXT value for DNS-01, the key authorization for HTTP-01."""

    domain: str
    token: str
    validation: str


class Solver(Protocol):
    """Makes challenges answerable. The order calls `present` for each pending authorization, `wait_ready`
    once before telling the CA to validate, and always `cleanup` for each presented challenge and `close`
    (also on failure). Implementations are idempotent and bound every wait."""

    challenge_type: str  # "dns-01" or "http-01"

    def present(self, challenge: Challenge) -> None: ...

    def wait_ready(self, challenges: Sequence[Challenge]) -> None: ...

    def cleanup(self, challenge: Challenge) -> None: ...

    def close(self) -> None: ...
