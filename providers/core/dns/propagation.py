"""DNS lookups for DNS-01: CNAME delegation of `_acme-challenge` names, and waiting for TXT propagation.

Waits are bounded in both time and number of checks. Tests (and split-horizon setups) point `resolver` at one
server (`host:port`); otherwise the zone's authoritative nameservers are asked directly, as lego does.

A record has propagated when every nameserver (by name) that answers has it at one of its addresses, and at
least one does. Addresses that cannot be reached from here (no IPv6 route on an IPv4-only host, a timeout, a
closed port, a lame server that refuses the zone) are skipped: one answering address per nameserver is enough.
A nameserver none of whose addresses answers is skipped too (resolvers, the CA's included, move on from it), as
long as at least one other nameserver answered with the value.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from ..errors import RetryableError

Server = tuple[str, int]
Nameservers = Mapping[str, Sequence[Server]]
"""Who to ask: each nameserver's name and its addresses (one answering address per name suffices)."""
MAX_CNAME_HOPS = 8


@dataclass(frozen=True)
class Propagation:
    """How to check that a TXT record is visible: where, for how long, how often. `nameservers` names the
    servers to ask instead of the zone's NS records (as `resolver` does for one server)."""

    resolver: Server | None = None
    timeout: float = 60.0
    interval: float = 0.5
    max_checks: int = 120
    query_timeout: float = 3.0
    nameservers: Nameservers | None = field(default=None, hash=False)


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


def authoritative_servers(fqdn: str, timeout: float = 3.0) -> dict[str, list[Server]]:
    """The nameservers of the zone containing `fqdn`, each with its A and AAAA addresses (system resolver for
    the lookups). A nameserver whose addresses cannot be resolved is listed with none."""
    res = _resolver(None, timeout)
    zone = dns.resolver.zone_for_name(fqdn, resolver=res)
    servers: dict[str, list[Server]] = {}
    for ns in res.resolve(zone, "NS"):
        name = ns.target.to_text(omit_final_dot=True)
        addresses = servers.setdefault(name, [])
        for rdtype in ("A", "AAAA"):
            try:
                addresses += [(a.to_text(), 53) for a in res.resolve(ns.target, rdtype)]
            except dns.exception.DNSException:
                continue
    return servers


def txt_values(fqdn: str, server: Server, timeout: float = 3.0) -> set[str]:
    """The TXT values `server` answers for `fqdn`. Raises `Unanswered` when it gives no usable answer (cannot
    be reached, times out, or refuses: a lame server)."""
    try:
        response = _query(fqdn.rstrip(".") + ".", dns.rdatatype.TXT, server, timeout)
    except dns.exception.Timeout:
        raise Unanswered("timed out") from None
    except OSError as err:
        raise Unanswered(err.strerror or type(err).__name__) from None
    except dns.exception.DNSException as err:
        raise Unanswered(f"{type(err).__name__}: {err}") from None
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise Unanswered(f"answered {dns.rcode.to_text(rcode)}")
    values: set[str] = set()
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            values.update(b"".join(r.strings).decode() for r in rrset)
    return values


class Unanswered(Exception):
    """A nameserver address gave no usable answer; the text says why (one line)."""


def _where(server: Server) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _nameservers(fqdn: str, check: Propagation) -> dict[str, list[Server]]:
    if check.nameservers is not None:
        return {name: list(addresses) for name, addresses in check.nameservers.items()}
    if check.resolver is not None:
        return {_where(check.resolver): [check.resolver]}
    return authoritative_servers(fqdn, check.query_timeout)


def wait_for_txt(records: Sequence[tuple[str, str]], check: Propagation) -> None:
    """Return once every (fqdn, value) is visible (see the module's rule); RetryableError after the bound,
    naming the nameservers that never answered with the value."""
    started = time.monotonic()

    def remaining() -> float:
        return check.timeout - (time.monotonic() - started)

    servers_for: dict[str, dict[str, list[Server]]] = {}
    confirmed: dict[tuple[str, str], set[str]] = {record: set() for record in records}  # nameservers that have it
    missing: dict[tuple[str, str], str] = {}  # why a record is not yet visible (the last round's answers)
    pending = list(dict.fromkeys(records))
    for _ in range(max(1, check.max_checks)):
        still: list[tuple[str, str]] = []
        for record in pending:
            fqdn, value = record
            try:
                if fqdn not in servers_for:
                    servers_for[fqdn] = _nameservers(fqdn, check)
            except (dns.exception.DNSException, OSError) as err:
                missing[record] = f"{fqdn}: cannot find its nameservers: {type(err).__name__}: {err}"
                still.append(record)
                continue
            without: list[str] = []  # answered, but not (yet) with the value
            silent: list[str] = []  # no address answered at all
            for name, addresses in servers_for[fqdn].items():
                if name in confirmed[record]:
                    continue
                answered, failures = False, []
                for address in addresses:
                    budget = min(check.query_timeout, remaining())
                    if budget <= 0:
                        failures.append(f"{_where(address)} not asked (out of time)")
                        continue
                    try:
                        values = txt_values(fqdn, address, budget)
                    except Unanswered as err:
                        failures.append(f"{_where(address)} {err}")
                        continue
                    answered = True
                    if value in values:
                        confirmed[record].add(name)
                        break
                else:
                    if answered:
                        without.append(name)
                    else:
                        silent.append(f"{name} (no answer: {'; '.join(failures) or 'no address'})")
            if confirmed[record] and not without:
                continue  # every nameserver that answers has it
            missing[record] = f"{fqdn} TXT not yet visible at {', '.join([*without, *silent])}"
            still.append(record)
        pending = still
        if not pending:
            return
        if remaining() < check.interval:
            break
        time.sleep(check.interval)
    raise RetryableError(f"dns: challenge record not propagated after {time.monotonic() - started:.0f}s "
                         f"({'; '.join(missing[r] for r in pending)})")
