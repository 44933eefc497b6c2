"""Shared ACME test fixtures: Pebble + challtestsrv, BIND 9 and moto on free 127.0.0.1 ports.

Import the fixtures into a conftest (`from tests.acme_fixtures import *`) or a test module. Servers are
session-scoped, started on first use and always stopped; every wait is bounded.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import http.server
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from providers.core import keys
from providers.core.acme import client as acme_client
from tools.servers.bind import BindServer
from tools.servers.pebble import PebbleServer

BLOCKED = "blocked.example"
EAB_KID = "kid-1"
EAB_HMAC = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@pytest.fixture(scope="session")
def pebble() -> Iterator[PebbleServer]:
    """Deterministic Pebble: no nonce rejection, no authz reuse, a domain blocklist, default+shortlived."""
    with PebbleServer(domain_blocklist=[BLOCKED], nonce_reject=0, authz_reuse=0) as server:
        yield server


@pytest.fixture(scope="session")
def pebble_eab() -> Iterator[PebbleServer]:
    with PebbleServer(eab_required=True, eab_keys={EAB_KID: EAB_HMAC}) as server:
        yield server


@pytest.fixture(scope="session")
def bind() -> Iterator[BindServer]:
    records = ["_acme-challenge.delegated IN CNAME delegated.acme-challenges"]
    with BindServer(records=records) as server:
        yield server


@pytest.fixture(scope="session")
def pebble_bind(bind: BindServer) -> Iterator[PebbleServer]:
    """Pebble whose VA resolves every name with the BIND server (real DNS-01 over RFC 2136)."""
    with PebbleServer(dns_server=bind.address) as server:
        yield server


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def connection(server: PebbleServer, **kwargs: Any) -> acme_client.Connection:
    return acme_client.Connection(server.directory_url, ca_bundle=str(server.ca_bundle_path), **kwargs)


def new_account(server: PebbleServer, **kwargs: Any) -> tuple[Any, keys.PrivateKey, str]:
    """(client, account key, account URL) for a freshly registered account."""
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    client = acme_client.connect(connection(server), key)
    account = acme_client.register_account(client, email="ops@example.test", directory_url=server.directory_url,
                                           **kwargs)
    return client, key, account.url


@pytest.fixture(scope="session")
def account(pebble: PebbleServer) -> tuple[Any, keys.PrivateKey, str]:
    return new_account(pebble)


def challtestsrv_dns(server: PebbleServer) -> dict[str, Any]:
    return {"provider": "challtestsrv", "url": server.challtestsrv_url, "resolver": server.challtestsrv_dns}


def standalone_http01(server: PebbleServer) -> dict[str, Any]:
    return {"mode": "standalone", "listen": f"127.0.0.1:{server.http01_port}"}


def verify_chain(leaf: x509.Certificate, chain: list[x509.Certificate], root_pem: str, name: str) -> None:
    """Verify leaf → chain → Pebble's root with cryptography's X.509 path validation (server policy)."""
    from cryptography.x509 import DNSName
    from cryptography.x509.verification import PolicyBuilder, Store

    root = x509.load_pem_x509_certificate(root_pem.encode())
    verifier = (PolicyBuilder().store(Store([root])).time(dt.datetime.now(dt.timezone.utc))
                .build_server_verifier(DNSName(name)))
    path = verifier.verify(leaf, chain)
    assert path[0] == leaf and path[-1] == root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture()
def webroot_server(pebble: PebbleServer, tmp_path: Path) -> Iterator[Path]:
    """A tiny web server on Pebble's HTTP-01 port serving `tmp_path/www` (what nginx would do)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http01_port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = ["BLOCKED", "EAB_HMAC", "EAB_KID", "account", "bind", "challtestsrv_dns", "connection", "moto_url",
           "new_account", "pebble", "pebble_bind", "pebble_eab", "standalone_http01", "verify_chain",
           "webroot_server"]
