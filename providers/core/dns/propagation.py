"""DNS lookups for DNS-01: CNAME delegation of `_acme-challenge` names, and waiting for TXT propagation.

Waits are bounded in both time and number of checks. Tests (and split-horizon setups) point `resolver` at one
server (`host:port`); otherwise the zone's authoritative nameservers are asked directly, as lego does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver

from ..errors import RetryableError

Server = tuple[str, int]
MAX_CNAME_HOPS = 8


@dataclass(frozen=True)
class Propagation:
    """How to check that a TXT record is visible: where, for how long, how often."""

    resolver: Server | None = None
    timeout: float = 60.0
    interval: float = 0.5
    max_checks: int = 120
    query_timeout: float = 3.0


def _query(name: str, rdtype: dns.rdatatype.RdataType, server: Server, timeout: float) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    response, _tcp = dns.query.udp_with_fallback(query, server[0], port=server[1], timeout=timeout)
    return response


def _resolver(server: Server | None, timeout: float) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=server is None)
    if server is not None:
        res.nameservers = [server[0]]
        res.port = server[1]
    res.lifetime = timeout
    return res


def cname_target(fqdn: str, resolver: Server | None = None, timeout: float = 3.0) -> str:
    """Where the TXT record for `fqdn` must be written: `fqdn` itself, or the end of its CNAME chain."""
    name = fqdn.rstrip(".")
    for _ in range(MAX_CNAME_HOPS):
        try:
            answer = _resolver(resolver, timeout).resolve(name, "CNAME", raise_on_no_answer=False)
        except (dns.exception.DNSException, OSError):
            return name
        targets = [r.target.to_text(omit_final_dot=True) for r in (answer.rrset or [])]
        if not targets:
            return name
        name = targets[0]
    return name


def authoritative_servers(fqdn: str, timeout: float = 3.0) -> list[Server]:
    """The addresses of the nameservers of the zone containing `fqdn` (system resolver for the lookups)."""
    res = _resolver(None, timeout)
    zone = dns.resolver.zone_for_name(fqdn, resolver=res)
    servers: list[Server] = []
    for ns in res.resolve(zone, "NS"):
        for rdtype in ("A", "AAAA"):
            try:
                servers += [(a.to_text(), 53) for a in res.resolve(ns.target, rdtype)]
            except dns.exception.DNSException:
                continue
    return servers


def txt_values(fqdn: str, server: Server, timeout: float = 3.0) -> set[str]:
    response = _query(fqdn.rstrip(".") + ".", dns.rdatatype.TXT, server, timeout)
    values: set[str] = set()
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            values.update(b"".join(r.strings).decode() for r in rrset)
    return values


def wait_for_txt(records: Sequence[tuple[str, str]], check: Propagation) -> None:
    """Return once every (fqdn, value) is answered by every server; RetryableError after the bound."""
    started = time.monotonic()
    servers_for: dict[str, list[Server]] = {}
    pending = list(records)
    last = ""
    for _ in range(max(1, check.max_checks)):
        still: list[tuple[str, str]] = []
        for fqdn, value in pending:
            try:
                if fqdn not in servers_for:
                    servers_for[fqdn] = [check.resolver] if check.resolver else authoritative_servers(fqdn)
                for server in servers_for[fqdn]:
                    if value not in txt_values(fqdn, server, check.query_timeout):
                        last = f"{fqdn} TXT not yet visible at {server[0]}:{server[1]}"
                        still.append((fqdn, value))
                        break
            except (dns.exception.DNSException, OSError) as err:
                last = f"{fqdn}: {type(err).__name__}: {err}"
                still.append((fqdn, value))
        pending = still
        if not pending:
            return
        if time.monotonic() - started + check.interval > check.timeout:
            break
        time.sleep(check.interval)
    raise RetryableError(f"dns: challenge record not propagated after {time.monotonic() - started:.0f}s "
                         f"({last})")
