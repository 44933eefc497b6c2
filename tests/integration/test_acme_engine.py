"""ACME on the real engine against a real Pebble: 10 certificates, up, clean preview, renewal, destroy."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from providers.core import certificates as x509util
from tools.servers.pebble import PebbleServer

from .harness import EngineProject, changed_steps

pytestmark = pytest.mark.integration

DNS_NAMES = [f"d{i}" for i in range(6)]


@pytest.fixture(scope="module")
def pebble():
    with PebbleServer(nonce_reject=5) as server:  # Pebble's default 5% badNonce: retries must absorb it
        yield server


def config(server: PebbleServer) -> dict:
    certs = {name: {"domains": [f"{name}.acme.example.test"], "issuer": "pebble"} for name in DNS_NAMES}
    certs["wild"] = {"domains": ["*.wild.example.test", "wild.example.test"], "issuer": "pebble",
                     "formats": ["pem", "pkcs12"]}
    certs["rsa"] = {"domains": ["rsa.acme.example.test"], "issuer": "pebble", "key": {"algorithm": "rsa"}}
    certs["web"] = {"domains": ["web.acme.example.test", "www.web.acme.example.test"], "issuer": "pebble-http",
                    "challenge": "http-01"}
    # A second HTTP-01 order at the same time: both share the one standalone responder port.
    certs["web2"] = {"domains": ["web2.acme.example.test"], "issuer": "pebble-http", "challenge": "http-01"}
    base = {"type": "acme", "directory_url": server.directory_url, "email": "ops@example.test",
            "ca_bundle": str(server.ca_bundle_path), "profile": "default"}
    return {
        "issuers": {
            "pebble": {**base, "dns": {"provider": "challtestsrv", "url": server.challtestsrv_url,
                                       "propagation_check": False}},
            "pebble-http": {**base, "http01": {"mode": "standalone", "listen": f"127.0.0.1:{server.http01_port}"}},
        },
        "certificates": certs,
    }


def test_ten_acme_certificates_up_preview_renew_destroy(tmp_path, pebble):
    project = EngineProject(tmp_path, config(pebble))
    try:
        up = project.up()
        assert up.summary.result == "succeeded"
        inventory = project.outputs()["inventory"]
        assert len(inventory) == 10
        root = x509util.load_certificates(pebble.root_pem)[0]
        downloads = project.outputs()["certificates"]
        for name, entry in inventory.items():
            chain = x509util.load_certificates(downloads[name]["fullchain_pem"])
            assert x509util.signed_by(chain[-1], root), name  # the chain ends under Pebble's root
            assert entry["issuer"] in ("pebble", "pebble-http")
        assert inventory["wild"]["domains"] == ["*.wild.example.test", "wild.example.test"]
        assert changed_steps(project.preview()) == {}

        # Time-travel past the renewal window (Pebble's ARI window sits at two thirds of 90 days).
        later = {"CERTPLANE_NOW": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=62)).isoformat()}
        preview = project.preview(env=later)
        assert changed_steps(preview) == {"update": 10}
        for name in inventory:
            assert re.search(rf"certplane: {name}: renewal due since .* \(ACME renewal info window\)",
                             preview.stdout), name
        renewed = project.up(env=later)
        assert renewed.summary.resource_changes.get("update") == 10
        after = project.outputs()["inventory"]
        assert all(after[n]["serial"] != inventory[n]["serial"] for n in inventory)
        assert changed_steps(project.preview()) == {}  # the renewed certificates are fresh at the CA's time
    finally:
        project.destroy()
