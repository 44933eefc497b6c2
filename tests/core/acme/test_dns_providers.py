"""DNS-01 providers: registry and config errors, challtestsrv, RFC 2136 + TSIG against BIND 9 (end to end with
Pebble validating against BIND, CNAME delegation included), Route 53 on moto, propagation bounds."""

from __future__ import annotations

import time
from typing import Any

import boto3
import dns.message
import dns.query
import dns.rdatatype
import pytest

from providers.core import certificates as x509util
from providers.core import dns as dns_solvers
from providers.core import keys
from providers.core.acme import orders
from providers.core.dns.base import DnsError
from providers.core.dns.propagation import Propagation, cname_target, wait_for_txt
from providers.core.errors import InvalidInputError, RetryableError
from tests.support.acme import challtestsrv_dns, new_account, verify_chain
from tools.servers.bind import BindServer
from tools.servers.pebble import PebbleServer


def ec_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


def txt(address: str, name: str) -> list[str]:
    host, port = address.split(":")
    response = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), host, port=int(port), timeout=3)
    return sorted(b"".join(r.strings).decode() for rrset in response.answer
                  if rrset.rdtype == dns.rdatatype.TXT for r in rrset)


# --- registry and configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "message"), [
    ({"provider": "gandi"}, f"dns.provider: unrecognized DNS provider: gandi (known: {dns_solvers.REGISTRY.known()})"),
    ({}, f"dns.provider: is required (known: {dns_solvers.REGISTRY.known()})"),
    ({"provider": "challtestsrv"}, "dns.url: is required"),
    ({"provider": "challtestsrv", "url": "127.0.0.1:8055"}, "dns.url: must be an http(s) URL, e.g. http://127.0.0.1:8055"),
    ({"provider": "rfc2136"}, "dns.nameserver: is required"),
    ({"provider": "rfc2136", "nameserver": "127.0.0.1", "tsig_key_name": "k"},
     "dns.tsig_secret: give both tsig_key_name and tsig_secret, or neither"),
    ({"provider": "rfc2136", "nameserver": "127.0.0.1", "tsig_key_name": "k", "tsig_secret": "not base64!"},
     "dns.tsig_secret: must be base64"),
    ({"provider": "rfc2136", "nameserver": "127.0.0.1", "tsig_algorithm": "hmac-sha3"},
     "dns.tsig_algorithm: unknown TSIG algorithm 'hmac-sha3' (known: hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1, "
     "hmac-md5)"),
    ({"provider": "rfc2136", "nameserver": "127.0.0.1", "port": 70000}, "dns.port: must be a whole number from 1 to 65535"),
    ({"provider": "route53"}, "dns.hosted_zone_id: give hosted_zone_id or zone"),
    ({"provider": "route53", "zone": "example.test", "aws_access_key_id": "AKIA"},
     "dns.aws_secret_access_key: give both aws_access_key_id and aws_secret_access_key, or neither"),
    ({"provider": "route53", "zone": "example.test", "hosted_zone": "Z1"},
     "dns.hosted_zone: unknown setting (did you mean hosted_zone_id?)"),
    ({"provider": "challtestsrv", "url": "http://127.0.0.1:1", "resolver": "127.0.0.1:x"},
     "dns.resolver: must be HOST or HOST:PORT, e.g. 127.0.0.1:53"),
])
def test_bad_settings_fail_with_the_field(settings: dict[str, Any], message: str):
    with pytest.raises(InvalidInputError) as err:
        dns_solvers.parse(settings)
    assert str(err.value) == message


def test_a_provider_is_built_from_its_validated_settings():
    provider = dns_solvers.make_provider({"provider": "rfc2136", "nameserver": "127.0.0.1:5353", "zone": "x.test."})
    assert (provider.name, provider.nameserver, provider.port, provider.zone) == ("rfc2136", "127.0.0.1", 5353, "x.test")
    assert "c2VjcmV0" not in repr(dns_solvers.make_provider({"provider": "rfc2136", "nameserver": "ns.example.test",
                                                         "tsig_key_name": "k", "tsig_secret": "c2VjcmV0"}))


def test_challenge_name_strips_the_wildcard():
    assert dns_solvers.challenge_name("*.example.test") == "_acme-challenge.example.test"
    assert dns_solvers.challenge_name("www.example.test.") == "_acme-challenge.www.example.test"


# --- challtestsrv -----------------------------------------------------------------------------------------

def test_challtestsrv_present_and_cleanup(pebble):
    provider = dns_solvers.make_provider(challtestsrv_dns(pebble))
    name = "_acme-challenge.cts.example.test"
    provider.present(name, "value-1")
    provider.present(name, "value-2")
    assert txt(pebble.challtestsrv_dns, name + ".") == ["value-1", "value-2"]
    provider.cleanup(name, "value-1")
    provider.cleanup(name, "value-1")  # idempotent
    assert txt(pebble.challtestsrv_dns, name + ".") == []


def test_challtestsrv_unreachable_names_the_provider():
    provider = dns_solvers.make_provider({"provider": "challtestsrv", "url": "http://127.0.0.1:1"})
    with pytest.raises(DnsError) as err:
        provider.present("_acme-challenge.x.example.test", "v")
    assert str(err.value).startswith("challtestsrv: /set-txt at http://127.0.0.1:1 failed: ")


def test_cname_delegation_with_challtestsrv(pebble, account):
    client, _, _ = account
    pebble.challtestsrv("/set-cname", host="_acme-challenge.alias.example.test.",
                        target="alias.delegate.example.test.")
    try:
        assert cname_target("_acme-challenge.alias.example.test", ("127.0.0.1", pebble.dns_port)) == \
            "alias.delegate.example.test"
        solver = dns_solvers.make_solver(challtestsrv_dns(pebble))
        issued = orders.issue(client, ["alias.example.test"], solver, key=ec_key())
        assert x509util.dns_names_of(issued.leaf) == ["alias.example.test"]
    finally:
        pebble.challtestsrv("/clear-cname", host="_acme-challenge.alias.example.test.")


def test_propagation_wait_is_bounded(pebble):
    check = Propagation(resolver=("127.0.0.1", pebble.dns_port), timeout=1.0, interval=0.2)
    started = time.monotonic()
    with pytest.raises(RetryableError) as err:
        wait_for_txt([("_acme-challenge.never.example.test", "nope")], check)
    assert time.monotonic() - started < 3
    assert str(err.value).startswith("dns: challenge record not propagated after 1s "
                                     "(_acme-challenge.never.example.test TXT not yet visible at 127.0.0.1:")


# --- RFC 2136 + TSIG against BIND 9 ----------------------------------------------------------------------

def test_rfc2136_present_cleanup_against_bind(bind: BindServer):
    provider = dns_solvers.make_provider(bind.dns_settings())
    name = "_acme-challenge.rfc.example.test"
    provider.present(name, "one")
    provider.present(name, "one")  # idempotent: still one record
    provider.present(name, "two")
    assert txt(bind.address, name + ".") == ["one", "two"]
    provider.cleanup(name, "one")
    assert txt(bind.address, name + ".") == ["two"]
    provider.cleanup(name, "two")
    provider.cleanup(name, "two")
    assert txt(bind.address, name + ".") == []


def test_rfc2136_zone_is_discovered_when_not_configured(bind: BindServer):
    settings = {**bind.dns_settings(), "zone": None}
    provider = dns_solvers.make_provider(settings)
    provider.present("_acme-challenge.deep.sub.example.test", "z")
    assert txt(bind.address, "_acme-challenge.deep.sub.example.test.") == ["z"]
    provider.cleanup("_acme-challenge.deep.sub.example.test", "z")


def test_rfc2136_wrong_tsig_secret_is_refused_with_a_clear_line(bind: BindServer):
    settings = {**bind.dns_settings(), "tsig_secret": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="}
    with pytest.raises(DnsError) as err:
        dns_solvers.make_provider(settings).present("_acme-challenge.bad.example.test", "v")
    assert str(err.value).startswith(f"rfc2136: 127.0.0.1:{bind.port} ")
    assert "TSIG" in str(err.value) or "NOTAUTH" in str(err.value)


def test_rfc2136_outside_the_zone_is_refused(bind: BindServer):
    with pytest.raises(DnsError) as err:
        dns_solvers.make_provider(bind.dns_settings()).present("_acme-challenge.other.test", "v")
    assert str(err.value) == (f"rfc2136: 127.0.0.1:{bind.port} refused the update of _acme-challenge.other.test "
                              "in zone example.test: NOTZONE")


def test_dns01_end_to_end_with_bind_wildcard_apex_and_cname_delegation(bind: BindServer, pebble_bind: PebbleServer):
    """Pebble's VA resolves against BIND; records are written with RFC 2136 + TSIG."""
    client, _, _ = new_account(pebble_bind)
    started = time.monotonic()
    issued = orders.issue(client, ["*.bind.example.test", "bind.example.test"],
                          dns_solvers.make_solver(bind.dns_settings()), key=ec_key())
    elapsed = time.monotonic() - started
    verify_chain(issued.leaf, issued.chain, pebble_bind.root_pem, "x.bind.example.test")
    assert txt(bind.address, "_acme-challenge.bind.example.test.") == []
    # `_acme-challenge.delegated` is a CNAME to `delegated.acme-challenges.example.test`: the TXT goes there
    solver = dns_solvers.make_solver(bind.dns_settings())
    delegated = orders.issue(client, ["delegated.example.test"], solver, key=ec_key())
    assert x509util.dns_names_of(delegated.leaf) == ["delegated.example.test"]
    assert txt(bind.address, "delegated.acme-challenges.example.test.") == []
    print(f"DNS-01 via RFC 2136/BIND issuance took {elapsed:.2f}s")


# --- Route 53 on moto ----------------------------------------------------------------------------------

def _route53(moto_url: str) -> Any:
    return boto3.client("route53", region_name="us-east-1", endpoint_url=moto_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _records(r53: Any, zone_id: str, name: str) -> list[str]:
    sets = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted(r["Value"] for s in sets if s["Name"] == name and s["Type"] == "TXT" for r in s["ResourceRecords"])


@pytest.fixture()
def route53_zone(moto_url: str) -> tuple[str, str]:
    r53 = _route53(moto_url)
    zone = r53.create_hosted_zone(Name="r53.example.test", CallerReference=str(time.time()))
    return zone["HostedZone"]["Id"].split("/")[-1], moto_url


def test_route53_present_and_cleanup_on_moto(route53_zone):
    zone_id, moto_url = route53_zone
    settings = {"provider": "route53", "zone": "r53.example.test", "endpoint_url": moto_url,
                "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    provider = dns_solvers.make_provider(settings)
    name = "_acme-challenge.r53.example.test"
    provider.present(name, "apex-value")
    provider.present(name, "wild-value")  # wildcard + apex share the name: values are merged
    provider.present(name, "wild-value")
    r53 = _route53(moto_url)
    assert _records(r53, zone_id, name + ".") == ['"apex-value"', '"wild-value"']
    provider.cleanup(name, "apex-value")
    assert _records(r53, zone_id, name + ".") == ['"wild-value"']
    provider.cleanup(name, "wild-value")
    provider.cleanup(name, "wild-value")  # idempotent
    assert _records(r53, zone_id, name + ".") == []


def test_route53_unknown_zone_and_api_errors_name_the_provider(route53_zone):
    zone_id, moto_url = route53_zone
    base = {"provider": "route53", "endpoint_url": moto_url, "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing"}
    with pytest.raises(DnsError) as err:
        dns_solvers.make_provider({**base, "zone": "nope.example.test"}).present("_acme-challenge.nope.example.test", "v")
    assert str(err.value) == "route53: no hosted zone named nope.example.test"
    with pytest.raises(DnsError) as err:
        dns_solvers.make_provider({**base, "hosted_zone_id": zone_id}).present("_acme-challenge.elsewhere.test", "v")
    assert str(err.value).startswith("route53: UPSERT TXT _acme-challenge.elsewhere.test failed: ")


def test_route53_end_to_end_mirrored_into_challtestsrv(route53_zone, pebble, account):
    """moto serves no DNS: the test mirrors each write into challtestsrv, which Pebble's VA queries."""
    zone_id, moto_url = route53_zone
    client, _, _ = account
    route53 = dns_solvers.make_provider({"provider": "route53", "hosted_zone_id": zone_id, "endpoint_url": moto_url,
                                         "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    mirror = dns_solvers.make_provider(challtestsrv_dns(pebble))
    seen: list[list[str]] = []
    r53 = _route53(moto_url)

    class Mirrored:
        name = "route53+challtestsrv"

        def present(self, fqdn: str, value: str) -> None:
            route53.present(fqdn, value)
            mirror.present(fqdn, value)
            seen.append(_records(r53, zone_id, fqdn + "."))

        def cleanup(self, fqdn: str, value: str) -> None:
            route53.cleanup(fqdn, value)
            mirror.cleanup(fqdn, value)

    solver = dns_solvers.Dns01Solver(Mirrored(), dns_solvers.propagation_of(challtestsrv_dns(pebble)))
    issued = orders.issue(client, ["*.r53.example.test", "r53.example.test"], solver, key=ec_key())
    assert sorted(x509util.dns_names_of(issued.leaf)) == ["*.r53.example.test", "r53.example.test"]
    assert len(seen) == 2 and len(seen[1]) == 2  # both values were live in Route 53 at once
    assert _records(r53, zone_id, "_acme-challenge.r53.example.test.") == []
