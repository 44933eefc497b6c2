"""What an order must never leave or accept: pending authorizations after a failure (RFC 8555 §7.5.2), a
certificate for another key or other names than the CSR's, and a plain http:// directory off loopback."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from providers.core import dns as dns_solvers
from providers.core import keys
from providers.core.acme import client as acme_client
from providers.core.acme import orders
from providers.core.acme.errors import AcmeError, RetryPolicy
from providers.core.acme.solver import Challenge
from providers.core.errors import InvalidInputError, RetryableError
from tests.support.acme import challtestsrv_dns


def ec_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


class Watched:
    """The account's client, remembering the orders it created; `fullchain` replaces what the CA returns."""

    def __init__(self, inner: Any, fullchain: str | None = None) -> None:
        self.inner, self.fullchain = inner, fullchain
        self.orders: list[messages.OrderResource] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def new_order(self, *args: Any, **kwargs: Any) -> messages.OrderResource:
        order = self.inner.new_order(*args, **kwargs)
        self.orders.append(order)
        return order

    def poll_and_finalize(self, *args: Any, **kwargs: Any) -> messages.OrderResource:
        order = self.inner.poll_and_finalize(*args, **kwargs)
        return order.update(fullchain_pem=self.fullchain) if self.fullchain is not None else order


def statuses(client: Any, order: messages.OrderResource) -> dict[str, str]:
    return {a.body.identifier.value: client.poll(a)[0].body.status.name for a in order.authorizations}


class NeverPropagates:
    """A DNS-01 solver whose records never become visible: the order fails before any challenge is answered."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.challenge_type = inner, inner.challenge_type

    def present(self, challenge: Challenge) -> None:
        self.inner.present(challenge)

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        raise RetryableError("dns: challenge record not propagated after 60s (test)")

    def cleanup(self, challenge: Challenge) -> None:
        self.inner.cleanup(challenge)

    def close(self) -> None:
        self.inner.close()


# --- pending authorizations ------------------------------------------------------------------------------

def test_a_failed_order_deactivates_the_authorizations_it_left_pending(pebble, account):
    client, _, _ = account
    watched = Watched(client)
    solver = NeverPropagates(dns_solvers.make_solver(challtestsrv_dns(pebble)))
    with pytest.raises(RetryableError) as err:
        orders.issue(watched, ["left1.example.test", "left2.example.test"], solver, key=ec_key())
    assert str(err.value).startswith("acme: order for left1.example.test, left2.example.test failed: dns: ")
    assert statuses(client, watched.orders[0]) == {"left1.example.test": "deactivated",
                                                   "left2.example.test": "deactivated"}


def test_a_provider_refusing_one_name_leaves_no_pending_authorization(pebble, account):
    client, _, _ = account
    inner = dns_solvers.make_provider(challtestsrv_dns(pebble))

    class RefusesOne:
        name = "refuses-one"

        def present(self, fqdn: str, value: str) -> None:
            if fqdn.startswith("_acme-challenge.refused."):
                raise dns_solvers.DnsError("refuses-one: the update was refused")
            inner.present(fqdn, value)

        def cleanup(self, fqdn: str, value: str) -> None:
            inner.cleanup(fqdn, value)

    watched = Watched(client)
    with pytest.raises(AcmeError) as err:
        orders.issue(watched, ["accepted.example.test", "refused.example.test"],
                     dns_solvers.Dns01Solver(RefusesOne(), propagation=None, follow_cname=False), key=ec_key())
    assert str(err.value) == ("acme: order for accepted.example.test, refused.example.test failed: refuses-one: "
                              "the update was refused")
    assert statuses(client, watched.orders[0]) == {"accepted.example.test": "deactivated",
                                                   "refused.example.test": "deactivated"}


def test_deactivating_is_best_effort_and_quickly_bounded_when_the_ca_is_gone(account):
    """The order's failure is what is reported; a CA that stopped answering is not retried per authorization."""
    client, _, _ = account
    calls: list[str] = []

    class Gone:
        net = client.net

        def poll(self, authzr: Any) -> Any:
            import requests

            calls.append(authzr.uri)
            raise requests.ConnectionError("connection refused")

    pending = [messages.AuthorizationResource(uri=f"https://ca.invalid/authz/{i}", body=messages.Authorization())
               for i in range(3)]
    started = time.monotonic()
    assert orders.relinquish(Gone(), pending) == 0  # type: ignore[arg-type]
    assert time.monotonic() - started < 1 and len(calls) == 1
    assert client.net.retry == RetryPolicy()  # the client's own policy is back


# --- the issued certificate -------------------------------------------------------------------------------

def self_signed(key: keys.PrivateKey, names: list[str]) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_for_another_key_is_refused(pebble, account):
    client, _, _ = account
    names = ["swap.example.test"]
    watched = Watched(client, fullchain=self_signed(ec_key(), names))
    with pytest.raises(AcmeError) as err:
        orders.issue(watched, names, dns_solvers.make_solver(challtestsrv_dns(pebble)), key=ec_key())
    assert str(err.value) == ("acme: order for swap.example.test failed: the CA returned a certificate for another "
                              "public key than the CSR's; refusing it")


@pytest.mark.parametrize("returned", [["names.example.test"], ["names.example.test", "www.names.example.test",
                                                               "evil.example.test"]])
def test_a_certificate_for_other_names_is_refused(pebble, account, returned):
    client, _, _ = account
    key = ec_key()
    asked = ["names.example.test", "www.names.example.test"]
    watched = Watched(client, fullchain=self_signed(key, returned))
    with pytest.raises(AcmeError) as err:
        orders.issue(watched, asked, dns_solvers.make_solver(challtestsrv_dns(pebble)), key=key)
    assert str(err.value) == (f"acme: order for {', '.join(asked)} failed: the CA returned a certificate for "
                              f"{', '.join(sorted(returned))} instead of {', '.join(sorted(asked))}; refusing it")


def test_the_right_certificate_is_accepted_whatever_the_order_and_case_of_its_names(account):
    key = ec_key()
    leaf = x509.load_pem_x509_certificate(self_signed(key, ["WWW.Case.example.test", "case.example.test"]).encode())
    orders.check_issued(leaf, key, ["case.example.test", "www.case.example.test."])


# --- the directory URL ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://acme-v02.api.letsencrypt.org/directory", "https://127.0.0.2:14000/dir",
    "http://127.0.0.1:14000/dir", "http://localhost:14000/dir", "http://LOCALHOST/dir", "http://[::1]:14000/dir",
    "http://[0:0:0:0:0:0:0:1]:14000/dir",
])
def test_https_anywhere_and_http_only_on_this_machine(url):
    assert acme_client.check_directory_url(url) == url


@pytest.mark.parametrize("url", [
    "http://acme.example.test/dir", "http://127.0.0.2:14000/dir", "http://127.1:14000/dir",
    "http://[::ffff:127.0.0.1]:14000/dir", "http://localhost.example.test/dir", "http://127.0.0.1.nip.io/dir",
    "http://0x7f000001/dir", "http:///dir", "ftp://127.0.0.1/dir", "127.0.0.1:14000/dir", "http://[::1/dir",
])
def test_anything_else_is_refused(url):
    with pytest.raises(InvalidInputError) as err:
        acme_client.check_directory_url(url)
    assert str(err.value) == ("must be the https:// URL of an ACME directory, e.g. "
                              "https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)")


def test_connect_applies_the_same_rule_before_any_request():
    """A URL that reached `connect` some other way (state an earlier release wrote) is refused there too."""
    conn = acme_client.Connection("http://acme.example.test/dir", retry=RetryPolicy(attempts=1, max_total=1))
    started = time.monotonic()
    with pytest.raises(InvalidInputError) as err:
        acme_client.connect(conn, ec_key())
    assert time.monotonic() - started < 1
    assert str(err.value) == ("directory_url: must be the https:// URL of an ACME directory, e.g. "
                              "https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)")
