"""One ACME client per connection and account, shared by the certificate provider's concurrent orders."""

from __future__ import annotations

import concurrent.futures

from providers.core import certificates as x509util
from providers.core import dns as dns_solvers
from providers.core import keys
from providers.core.acme import client as acme_client
from providers.core.acme import orders
from tests.support.acme import challtestsrv_dns, connection, new_account
from tools.servers.pebble import PebbleServer


def test_a_connection_and_account_get_one_client_and_another_account_its_own(pebble: PebbleServer) -> None:
    _, key, url = new_account(pebble)
    _, other_key, other_url = new_account(pebble)
    pem, other_pem = keys.private_key_to_pem(key), keys.private_key_to_pem(other_key)
    conn = connection(pebble)
    first = acme_client.shared_client(conn, pem, url)
    assert acme_client.shared_client(connection(pebble), pem, url) is first  # an equal connection: the same client
    assert acme_client.shared_client(conn, other_pem, other_url) is not first
    assert acme_client.shared_client(connection(pebble, timeout=5), pem, url) is not first


def test_threads_sharing_one_network_never_get_the_same_nonce(pebble: PebbleServer) -> None:
    """The library's check-then-pop races when threads share a network; ours pops atomically and fetches a
    fresh nonce when none is spare, so 8 threads taking 40 nonces get 40 different ones and no error."""
    _, key, url = new_account(pebble)
    client = acme_client.shared_client(connection(pebble), keys.private_key_to_pem(key), url)
    new_nonce = client.directory["newNonce"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        nonces = list(pool.map(lambda _: client.net._get_nonce(new_nonce, new_nonce), range(40)))
    assert len(set(nonces)) == 40


def test_concurrent_orders_through_one_shared_client_are_all_issued(pebble: PebbleServer) -> None:
    _, key, url = new_account(pebble)
    client = acme_client.shared_client(connection(pebble), keys.private_key_to_pem(key), url)
    names = [f"shared{i}.example.test" for i in range(6)]

    def issue(name: str) -> list[str]:
        key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
        issued = orders.issue(client, [name], dns_solvers.make_solver(challtestsrv_dns(pebble)), key=key)
        return x509util.dns_names_of(issued.leaf)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(issue, names)) == [[name] for name in names]
