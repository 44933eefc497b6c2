from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509


@dataclass(frozen=True)
class IssuerBox:
    settings: dict[str, Any]  # the issuer's certplane:issuers block
    credentials: dict[str, Any] | None  # what its own resources would provide
    domains: tuple[str, ...]
    trust: tuple[x509.Certificate, ...] = field(default=())  # roots a client trusts for it (none: self-signed)
