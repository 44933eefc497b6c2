"""ACME issuance end to end against a local Pebble + challtestsrv (HTTP-01, DNS-01, profiles, ARI, revocation)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest

from providers.core import certificates as x509util
from providers.core import dns as dns_solvers
from providers.core import http01, keys, renewal
from providers.core.acme import ari, orders, revoke
from providers.core.acme.errors import AcmeError
from providers.core.acme.solver import Challenge
from providers.core.errors import InvalidInputError
from tests.support.acme import BLOCKED, challtestsrv_dns, standalone_http01, verify_chain
from tools.servers.pebble import PebbleServer


def ec_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


def txt_at(server: PebbleServer, name: str) -> list[str]:
    host, port = server.challtestsrv_dns.split(":")
    response = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), host, port=int(port), timeout=3)
    return [b"".join(r.strings).decode() for rrset in response.answer for r in rrset]


class Recording:
    """Wraps a solver and records what the order asked of it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.challenge_type = inner, inner.challenge_type
        self.presented: list[Challenge] = []
        self.cleaned: list[Challenge] = []
        self.closed = False

    def present(self, challenge: Challenge) -> None:
        self.presented.append(challenge)
        self.inner.present(challenge)

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        self.inner.wait_ready(challenges)

    def cleanup(self, challenge: Challenge) -> None:
        self.cleaned.append(challenge)
        self.inner.cleanup(challenge)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_http01_standalone_issues_a_san_certificate_that_chains_to_pebbles_root(pebble, account):
    client, _, _ = account
    key = ec_key()
    solver = Recording(http01.make_solver(standalone_http01(pebble)))
    started = time.monotonic()
    issued = orders.issue(client, ["www.example.test", "example.test"], solver, key=key)
    elapsed = time.monotonic() - started
    assert x509util.dns_names_of(issued.leaf) == ["www.example.test", "example.test"]
    assert keys.same_public_key(issued.leaf.public_key(), key)
    assert len(issued.chain) == 1
    verify_chain(issued.leaf, issued.chain, pebble.root_pem, "example.test")
    assert {c.domain for c in solver.presented} == {"www.example.test", "example.test"}
    assert solver.cleaned == solver.presented and solver.closed
    assert elapsed < 30
    print(f"HTTP-01 standalone issuance took {elapsed:.2f}s")


def test_http01_webroot_writes_the_token_file_and_removes_it(pebble, account, webroot_server: Path):
    client, _, _ = account
    inner = http01.make_solver({"mode": "webroot", "webroot": str(webroot_server)})
    seen: list[tuple[int, str]] = []

    class Spy(Recording):
        def wait_ready(self, challenges: Sequence[Challenge]) -> None:
            for c in challenges:
                path = webroot_server / ".well-known" / "acme-challenge" / c.token
                seen.append((path.stat().st_mode & 0o777, path.read_text()))
            super().wait_ready(challenges)

    solver = Spy(inner)
    issued = orders.issue(client, ["web.example.test"], solver, key=ec_key())
    assert x509util.dns_names_of(issued.leaf) == ["web.example.test"]
    assert seen == [(0o644, solver.presented[0].validation)]
    assert not (webroot_server / ".well-known").exists()  # token removed, and the dirs we created too


def test_dns01_wildcard_and_apex(pebble, account):
    client, _, _ = account
    solver = Recording(dns_solvers.make_solver(challtestsrv_dns(pebble)))
    started = time.monotonic()
    issued = orders.issue(client, ["*.wild.example.test", "wild.example.test"], solver,
                          key=keys.generate_private_key(keys.KeySpec("rsa", size=2048)))
    elapsed = time.monotonic() - started
    assert sorted(x509util.dns_names_of(issued.leaf)) == ["*.wild.example.test", "wild.example.test"]
    verify_chain(issued.leaf, issued.chain, pebble.root_pem, "a.wild.example.test")
    # both authorizations (wildcard and apex) use the same TXT name with different values
    assert [c.domain for c in solver.presented] == ["wild.example.test", "wild.example.test"]
    assert len({c.validation for c in solver.presented}) == 2
    assert txt_at(pebble, "_acme-challenge.wild.example.test.") == []  # cleaned up
    print(f"DNS-01 wildcard+apex issuance took {elapsed:.2f}s")


def test_shortlived_profile_gives_a_six_day_certificate(pebble, account):
    client, _, _ = account
    issued = orders.issue(client, ["short.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                          key=ec_key(), profile="shortlived")
    lifetime = issued.leaf.not_valid_after_utc - issued.leaf.not_valid_before_utc
    assert dt.timedelta(days=5, hours=23) <= lifetime <= dt.timedelta(days=6, hours=1)
    # (Pebble picks a random profile when none is named, so name "default" explicitly)
    default = orders.issue(client, ["long.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                           key=ec_key(), profile="default")
    assert default.leaf.not_valid_after_utc - default.leaf.not_valid_before_utc > dt.timedelta(days=89)


def test_unknown_profile_is_one_clear_line(pebble, account):
    client, _, _ = account
    with pytest.raises(AcmeError) as err:
        orders.issue(client, ["p.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                     key=ec_key(), profile="nope")
    assert str(err.value) == ('acme: order for p.example.test failed: urn:ietf:params:acme:error:invalidProfile: '
                              'Order includes unrecognized profile name "nope"')


def test_rejected_identifier_names_the_domain(pebble, account):
    client, _, _ = account
    solver = Recording(dns_solvers.make_solver(challtestsrv_dns(pebble)))
    with pytest.raises(AcmeError) as err:
        orders.issue(client, ["www.example.test", BLOCKED], solver, key=ec_key())
    assert str(err.value) == (
        "acme: order for www.example.test, blocked.example failed: urn:ietf:params:acme:error:rejectedIdentifier: "
        'Order included an identifier for which issuance is forbidden by policy: "blocked.example" '
        "(blocked.example: blocked.example is a forbidden domain)")
    assert err.value.problem_type == "urn:ietf:params:acme:error:rejectedIdentifier"
    assert solver.presented == [] and solver.closed


def test_failed_validation_names_the_domain_and_still_cleans_up(pebble, account):
    client, _, _ = account

    class Silent:  # a DNS provider that "writes" nothing
        name = "silent"

        def present(self, fqdn: str, value: str) -> None: ...

        def cleanup(self, fqdn: str, value: str) -> None: ...

    solver = Recording(dns_solvers.Dns01Solver(Silent()))
    with pytest.raises(AcmeError) as err:
        orders.issue(client, ["nothing.example.test"], solver, key=ec_key())
    assert str(err.value) == ("acme: order for nothing.example.test failed: challenge validation failed: "
                              "nothing.example.test: urn:ietf:params:acme:error:unauthorized: "
                              "No TXT records found for DNS challenge")
    assert solver.cleaned == solver.presented and solver.closed


def test_ari_window_is_read_and_drives_renewal_time(pebble, account):
    client, _, _ = account
    issued = orders.issue(client, ["ari.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                          key=ec_key(), profile="shortlived")
    window = ari.renewal_window(client, issued.leaf)
    assert window is not None
    nb, na = issued.leaf.not_valid_before_utc, issued.leaf.not_valid_after_utc
    assert nb < window.start < window.end < na
    ideal = nb + (na - nb) * 2 / 3  # Pebble: two thirds of the lifetime, ±24h
    assert abs((window.start - (ideal - dt.timedelta(days=1))).total_seconds()) < 120
    policy = renewal.RenewalPolicy.parse({"before_days": 1})
    assert renewal.renewal_time(nb, na, policy, window) == window.start
    decision = renewal.renewal_decision("ari", nb, na, policy, window.start + dt.timedelta(minutes=1), window)
    assert decision.due and "ACME renewal info window" in decision.reason


def test_revocation_is_visible_at_pebble_and_idempotent(pebble, account):
    client, _, _ = account
    issued = orders.issue(client, ["revoke.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                          key=ec_key())
    serial = x509util.serial_hex(issued.leaf)
    assert pebble.cert_status(serial)["Status"] == "Valid"
    assert revoke.revoke(client, issued.leaf, "keyCompromise") is True
    status = pebble.cert_status(serial)
    assert status["Status"] == "Revoked" and status["Reason"] == 1
    assert revoke.revoke(client, issued.leaf) is False  # already revoked: not an error


def test_revocation_reason_is_validated():
    with pytest.raises(InvalidInputError) as err:
        revoke.reason_code("because")
    assert str(err.value) == ("unknown revocation reason 'because': use unspecified, keyCompromise, "
                              "affiliationChanged, superseded, cessationOfOperation")  # the caller names the field


def test_ed25519_keys_are_refused_before_ordering(pebble, account):
    client, _, _ = account
    with pytest.raises(InvalidInputError) as err:
        orders.issue(client, ["ed.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                     key=keys.generate_private_key(keys.KeySpec("ed25519")))
    assert str(err.value) == "key.algorithm: ACME CAs do not accept Ed25519 keys: use rsa or ecdsa"


def test_valid_authorizations_are_reused_not_re_solved(account):
    from tests.support.acme import new_account

    with PebbleServer(authz_reuse=100) as server:
        client, _, _ = new_account(server)
        first = Recording(dns_solvers.make_solver(challtestsrv_dns(server)))
        orders.issue(client, ["reuse.example.test"], first, key=ec_key())
        second = Recording(dns_solvers.make_solver(challtestsrv_dns(server)))
        issued = orders.issue(client, ["reuse.example.test"], second, key=ec_key())
        assert len(first.presented) == 1
        assert second.presented == [] and second.closed
        assert x509util.dns_names_of(issued.leaf) == ["reuse.example.test"]
