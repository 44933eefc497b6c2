"""ACME test helpers (the servers themselves are fixtures in tests/conftest.py)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from cryptography import x509

from providers.core import keys
from providers.core.acme import client as acme_client
from tools.servers.pebble import PebbleServer

BLOCKED = "blocked.example"
EAB_KID = "kid-1"
EAB_HMAC = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def connection(server: PebbleServer, **kwargs: Any) -> acme_client.Connection:
    return acme_client.Connection(server.directory_url, ca_bundle=str(server.ca_bundle_path), **kwargs)


def new_account(server: PebbleServer, **kwargs: Any) -> tuple[Any, keys.PrivateKey, str]:
    """(client, account key, account URL) for a freshly registered account."""
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    client = acme_client.connect(connection(server), key)
    account = acme_client.register_account(client, email="ops@example.test", directory_url=server.directory_url,
                                           **kwargs)
    return client, key, account.url


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
