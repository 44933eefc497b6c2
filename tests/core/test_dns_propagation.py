"""DNS-01 propagation against a real BIND: one answering address per nameserver (by name) is enough; addresses
that cannot be reached (no IPv6 route, a closed port) are skipped; the wait is bounded and names the nameservers
that never answered with the value."""

from __future__ import annotations

import errno
import time
from typing import Any

import pytest

from providers.core import dns as dns_solvers
from providers.core.dns import propagation
from providers.core.dns.propagation import Propagation, wait_for_txt
from providers.core.errors import RetryableError
from tools.servers import free_port
from tools.servers.bind import BindServer

V6_UNREACHABLE = ("2001:db8::53", 53)  # on an IPv4-only host: "Network is unreachable" at once


@pytest.fixture()
def ipv4_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host has no IPv6 route: every query to an IPv6 address fails the way the kernel says so."""
    real = propagation._query

    def query(name: str, rdtype: Any, server: tuple[str, int], timeout: float) -> Any:
        if ":" in server[0]:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        return real(name, rdtype, server, timeout)

    monkeypatch.setattr(propagation, "_query", query)


@pytest.fixture()
def record(bind: BindServer) -> Any:
    provider = dns_solvers.make_provider(bind.dns_settings())
    written: list[tuple[str, str]] = []

    def write(name: str, value: str) -> tuple[str, str]:
        provider.present(name, value)
        written.append((name, value))
        return name, value

    yield write
    for name, value in written:
        provider.cleanup(name, value)


def bind_address(bind: BindServer) -> tuple[str, int]:
    return ("127.0.0.1", bind.port)


def test_an_unreachable_ipv6_address_of_a_nameserver_is_skipped(bind: BindServer, record: Any, ipv4_only: None):
    name, value = record("_acme-challenge.v4only.example.test", "v4-value")
    check = Propagation(nameservers={"ns1.example.test": [V6_UNREACHABLE, bind_address(bind)]}, timeout=5,
                        interval=0.1, query_timeout=1)
    started = time.monotonic()
    wait_for_txt([(name, value)], check)
    assert time.monotonic() - started < 2


def test_a_lame_address_and_a_lame_nameserver_do_not_block_the_wait(bind: BindServer, record: Any,
                                                                    ipv4_only: None):
    name, value = record("_acme-challenge.lame.example.test", "lame-value")
    closed = ("127.0.0.1", free_port())  # nothing listens there: the query times out
    check = Propagation(nameservers={
        "ns1.example.test": [closed, bind_address(bind)],  # a lame address first, then one that answers
        "ns2.example.test": [V6_UNREACHABLE, closed],  # no address of this one answers at all
    }, timeout=10, interval=0.1, query_timeout=0.5)
    started = time.monotonic()
    wait_for_txt([(name, value)], check)
    assert time.monotonic() - started < 5


def test_a_nameserver_answering_without_the_value_is_waited_for_and_named(bind: BindServer, record: Any,
                                                                         ipv4_only: None):
    name, value = record("_acme-challenge.stale.example.test", "fresh-value")
    closed = ("127.0.0.1", free_port())
    check = Propagation(nameservers={
        "ns1.example.test": [bind_address(bind)],
        "ns2.example.test": [bind_address(bind)],
        "ns3.example.test": [V6_UNREACHABLE, closed],
    }, timeout=1.5, interval=0.2, query_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RetryableError) as err:
        wait_for_txt([(name, "not-the-value")], check)
    assert time.monotonic() - started < 4
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("dns: challenge record not propagated after ")
    assert (f"({name} TXT not yet visible at ns1.example.test, ns2.example.test, ns3.example.test (no answer: "
            f"[2001:db8::53]:53 Network is unreachable; 127.0.0.1:{closed[1]} timed out))") in message
    wait_for_txt([(name, value)], check)  # the real value is there


def test_no_nameserver_answering_is_a_bounded_failure_naming_them(ipv4_only: None):
    closed = ("127.0.0.1", free_port())
    check = Propagation(nameservers={"ns1.example.test": [V6_UNREACHABLE], "ns2.example.test": [closed]},
                        timeout=1.0, interval=0.2, query_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RetryableError) as err:
        wait_for_txt([("_acme-challenge.gone.example.test", "v")], check)
    assert time.monotonic() - started < 3
    assert str(err.value).endswith(
        "(_acme-challenge.gone.example.test TXT not yet visible at ns1.example.test (no answer: [2001:db8::53]:53 "
        f"Network is unreachable), ns2.example.test (no answer: 127.0.0.1:{closed[1]} timed out))")


def test_the_zones_nameservers_are_grouped_by_name(monkeypatch: pytest.MonkeyPatch, bind: BindServer,
                                                  record: Any, ipv4_only: None):
    """Without `resolver` or `nameservers`, the zone's NS records are asked: by name, each with its A and AAAA."""
    name, value = record("_acme-challenge.ns.example.test", "ns-value")
    seen: list[str] = []

    def authoritative(fqdn: str, timeout: float = 3.0) -> dict[str, list[tuple[str, int]]]:
        seen.append(fqdn)
        return {"ns1.example.test": [V6_UNREACHABLE, bind_address(bind)]}

    monkeypatch.setattr(propagation, "authoritative_servers", authoritative)
    wait_for_txt([(name, value)], Propagation(timeout=5, interval=0.1, query_timeout=1))
    assert seen == [name]
