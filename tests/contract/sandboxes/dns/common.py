from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.message
import dns.query
import dns.rdatatype


@dataclass(frozen=True)
class DnsBox:
    settings: dict[str, Any]  # the provider's settings block
    zone: str  # a zone the provider may write in
    values: Callable[[str], list[str]]  # the TXT values at a name, read without the provider


def txt_over_dns(host: str, port: int, fqdn: str) -> list[str]:
    query = dns.message.make_query(fqdn.rstrip(".") + ".", dns.rdatatype.TXT)
    response = dns.query.tcp(query, host, port=port, timeout=3)
    return sorted(b"".join(r.strings).decode() for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT
                  for r in rrset)
