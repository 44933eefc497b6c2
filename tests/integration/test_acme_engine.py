"""ACME on the real engine against two independent ACME servers, Pebble and step-ca: 10 certificates (DNS-01,
a wildcard, RSA, two concurrent HTTP-01 orders), up, clean preview, renewal, destroy with revocation.

What differs between the servers (ARI, profiles, lifetimes, how revocation is observed) is kept under the
server's own branch here and described in docs/ACME-SERVERS.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest

from providers.core import certificates as x509util
from providers.core import dns as dns_solvers
from providers.core import keys
from providers.core.acme import orders
from providers.core.errors import InvalidInputError, RetryableError
from tests.support.acme import challtestsrv_dns, new_account
from tools.servers.pebble import PebbleServer
from tools.servers.stepca import StepCaServer

from .harness import EngineProject, changed_steps

pytestmark = pytest.mark.integration

DNS_NAMES = [f"d{i}" for i in range(6)]
AcmeServer = PebbleServer | StepCaServer


@pytest.fixture(scope="module", params=["pebble", "stepca"])
def acme_server(request: pytest.FixtureRequest) -> Iterator[AcmeServer]:
    if request.param == "pebble":
        with PebbleServer(nonce_reject=5) as server:  # Pebble's default 5% badNonce: retries must absorb it
            yield server
    else:
        yield request.getfixturevalue("stepca")  # session-scoped, tests/conftest.py


def kind(server: AcmeServer) -> str:
    return "pebble" if isinstance(server, PebbleServer) else "stepca"


def config(server: AcmeServer) -> dict:
    dns_issuer, http_issuer = kind(server), f"{kind(server)}-http"
    certs = {name: {"domains": [f"{name}.acme.example.test"], "issuer": dns_issuer} for name in DNS_NAMES}
    certs["wild"] = {"domains": ["*.wild.example.test", "wild.example.test"], "issuer": dns_issuer,
                     "formats": ["pem", "pkcs12"]}
    certs["rsa"] = {"domains": ["rsa.acme.example.test"], "issuer": dns_issuer, "key": {"algorithm": "rsa"}}
    certs["web"] = {"domains": ["web.acme.example.test", "www.web.acme.example.test"], "issuer": http_issuer,
                    "challenge": "http-01"}
    # A second HTTP-01 order at the same time: both share the one standalone responder port.
    certs["web2"] = {"domains": ["web2.acme.example.test"], "issuer": http_issuer, "challenge": "http-01"}
    base = {"type": "acme", "directory_url": server.directory_url, "email": "ops@example.test",
            "ca_bundle": str(server.ca_bundle_path), "revoke_on_destroy": True}
    if isinstance(server, PebbleServer):
        base["profile"] = "default"  # step-ca has no ACME profiles (docs/ACME-SERVERS.md)
    return {
        "issuers": {
            dns_issuer: {**base, "dns": {"provider": "challtestsrv", "url": server.challtestsrv_url,
                                         "propagation_check": False}},
            http_issuer: {**base, "http01": {"mode": "standalone", "listen": f"127.0.0.1:{server.http01_port}"}},
        },
        "certificates": certs,
    }


def revoked(server: AcmeServer, serial_hex: str) -> bool:
    if isinstance(server, PebbleServer):
        return bool(server.cert_status(serial_hex)["Status"] == "Revoked")
    return int(serial_hex, 16) in server.revoked_serials()  # step-ca: its CRL, regenerated on revoke


def test_ten_acme_certificates_up_preview_renew_destroy(tmp_path, acme_server):
    server = acme_server
    project = EngineProject(tmp_path, config(server))
    destroyed = False
    try:
        up = project.up()
        assert up.summary.result == "succeeded"
        inventory = project.outputs()["inventory"]
        assert len(inventory) == 10
        root = x509util.load_certificates(server.root_pem)[0]
        downloads = project.outputs()["certificates"]
        for name, entry in inventory.items():
            chain = x509util.load_certificates(downloads[name]["fullchain_pem"])
            assert x509util.signed_by(chain[-1], root), name  # the chain ends under this server's root
            assert entry["issuer"] in (kind(server), f"{kind(server)}-http")
            lifetime = chain[0].not_valid_after_utc - chain[0].not_valid_before_utc
            assert dt.timedelta(days=89) < lifetime <= dt.timedelta(days=90, minutes=5), (name, lifetime)
        assert inventory["wild"]["domains"] == ["*.wild.example.test", "wild.example.test"]
        assert changed_steps(project.preview()) == {}

        # Time-travel past the renewal window. Pebble offers ARI (its window sits at two thirds of 90 days);
        # step-ca offers none, so certplane's own default policy (two thirds of the lifetime, minus jitter) applies.
        later = {"CERTPLANE_NOW": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=62)).isoformat()}
        preview = project.preview(env=later)
        assert changed_steps(preview) == {"update": 10}
        why = r"ACME renewal info window" if isinstance(server, PebbleServer) else r"at two thirds of the lifetime"
        for name in inventory:
            assert re.search(rf"certplane: {name}: renewal due since .* \({why}", preview.stdout), name
        renewed = project.up(env=later)
        assert renewed.summary.resource_changes.get("update") == 10
        after = project.outputs()["inventory"]
        assert all(after[n]["serial"] != inventory[n]["serial"] for n in inventory)
        assert changed_steps(project.preview()) == {}  # the renewed certificates are fresh at the CA's time
        assert not any(revoked(server, inventory[n]["serial"]) for n in inventory)  # renewal never revokes

        project.destroy()
        destroyed = True
        for name in after:  # revoke_on_destroy: every live certificate is revoked at the CA
            assert revoked(server, after[name]["serial"]), name
    finally:
        if not destroyed:
            project.destroy()


# --- step-ca only: the two interoperability fixes it needed (docs/ACME-SERVERS.md) -----------------------------

def _ec() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


def test_stepca_profile_is_refused_because_it_advertises_none(stepca):
    client, _, _ = new_account(stepca)
    with pytest.raises(InvalidInputError) as err:  # step-ca would silently ignore it and issue its default
        orders.issue(client, ["p.example.test"], dns_solvers.make_solver(challtestsrv_dns(stepca)), key=_ec(),
                     profile="shortlived")
    assert str(err.value) == ("profile: the CA advertises no ACME profiles, so 'shortlived' cannot be chosen: "
                              "remove profile from the issuer")


def test_stepca_failed_validation_names_the_cause_when_the_order_times_out(stepca):
    class Silent:  # a DNS provider that "writes" nothing
        name = "silent"

        def present(self, fqdn: str, value: str) -> None: ...

        def cleanup(self, fqdn: str, value: str) -> None: ...

    client, _, _ = new_account(stepca)
    with pytest.raises(RetryableError) as err:  # step-ca keeps the failed challenge pending, error attached
        orders.issue(client, ["nothing.example.test"], dns_solvers.Dns01Solver(Silent()), key=_ec(), timeout=3)
    assert str(err.value).startswith(
        "acme: order for nothing.example.test failed: timed out waiting for the CA to validate; it holds the "
        "challenge pending after a failed validation: nothing.example.test: urn:ietf:params:acme:error:dns: ")


def test_stepca_dns01_through_bind_rfc2136_wildcard_and_cname_delegation(bind):
    """step-ca resolving with BIND (`--resolver`): records written with RFC 2136 + TSIG, CNAME delegation."""
    with StepCaServer(dns_server=bind.address) as server:
        client, _, _ = new_account(server)
        wild = orders.issue(client, ["*.bindstep.example.test", "bindstep.example.test"],
                            dns_solvers.make_solver(bind.dns_settings()), key=_ec(), timeout=30)
        assert x509util.dns_names_of(wild.leaf) == ["*.bindstep.example.test", "bindstep.example.test"]
        assert x509util.signed_by(wild.chain[-1], server.root_certificate())
        delegated = orders.issue(client, ["delegated.example.test"], dns_solvers.make_solver(bind.dns_settings()),
                                 key=_ec(), timeout=30)
        assert x509util.dns_names_of(delegated.leaf) == ["delegated.example.test"]
