"""Accounts, External Account Binding, bounded retries (badNonce, 5xx) and one-line error translation."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
import requests
from acme import messages

from providers.core import certificates as x509util
from providers.core import dns as dns_solvers
from providers.core import keys
from providers.core.acme import client as acme_client
from providers.core.acme import orders
from providers.core.acme.errors import AcmeError, RetryPolicy, describe_problem, translate
from providers.core.errors import InvalidInputError, RetryableError
from tests.support.acme import EAB_HMAC, EAB_KID, challtestsrv_dns, connection, new_account
from tools.servers import free_port
from tools.servers.pebble import PebbleServer


def ec_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


def problem_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/problem+json", **(headers or {})})
    return response


def network() -> acme_client.CertplaneNetwork:
    key, alg = acme_client.jwk_for(ec_key())
    return acme_client.CertplaneNetwork(key, alg=alg, verify_ssl=True, retry=RetryPolicy(attempts=5, max_total=5))


# --- accounts --------------------------------------------------------------------------------------------

def test_account_is_registered_once_and_found_again_by_its_key(pebble):
    key = ec_key()
    client = acme_client.connect(connection(pebble), key)
    created = acme_client.register_account(client, email="ops@example.test")
    assert created.url.startswith(f"https://127.0.0.1:{pebble.acme_port}/my-account/")
    assert created.contact == ("mailto:ops@example.test",)
    again = acme_client.register_account(acme_client.connect(connection(pebble), key), email="ops@example.test")
    assert again.url == created.url  # same key: the existing account, not a new one
    assert acme_client.find_account(acme_client.connect(connection(pebble), key)).url == created.url


def test_unknown_account_key_is_a_clear_error(pebble):
    client = acme_client.connect(connection(pebble), ec_key())
    with pytest.raises(AcmeError) as err:
        acme_client.find_account(client)
    assert str(err.value).startswith("acme: looking up the ACME account failed: "
                                     "urn:ietf:params:acme:error:accountDoesNotExist: ")


def test_eab_required_and_missing_is_one_clear_line(pebble_eab):
    with pytest.raises(InvalidInputError) as err:
        new_account(pebble_eab)
    assert str(err.value) == (f"eab: the ACME server at {pebble_eab.directory_url} requires External Account "
                              "Binding: set eab.kid and eab.hmac_key from your CA account")


def test_eab_with_the_right_key_registers(pebble_eab):
    _, _, url = new_account(pebble_eab, eab_kid=EAB_KID, eab_hmac_key=EAB_HMAC)
    assert "/my-account/" in url


def test_eab_with_a_wrong_key_names_the_problem(pebble_eab):
    wrong = base64.urlsafe_b64encode(b"x" * 32).decode().rstrip("=")
    with pytest.raises(AcmeError) as err:
        new_account(pebble_eab, eab_kid=EAB_KID, eab_hmac_key=wrong)
    assert str(err.value).startswith("acme: account registration failed: urn:ietf:params:acme:error:unauthorized: "
                                     "external account binding JWS verification error")
    with pytest.raises(InvalidInputError) as half:
        new_account(pebble_eab, eab_kid=EAB_KID)
    assert str(half.value) == "eab: give both kid and hmac_key for External Account Binding"


def test_account_key_algorithms():
    with pytest.raises(InvalidInputError) as err:
        acme_client.jwk_for(keys.generate_private_key(keys.KeySpec("ed25519")))
    assert str(err.value) == "algorithm: ACME CAs do not accept Ed25519 keys: use rsa or ecdsa"


# --- transport failures ---------------------------------------------------------------------------------

def test_unreachable_directory_is_retryable_and_names_the_url():
    url = f"https://127.0.0.1:{free_port()}/dir"
    conn = acme_client.Connection(url, retry=RetryPolicy(attempts=2, max_total=2))
    with pytest.raises(RetryableError) as err:
        acme_client.connect(conn, ec_key())
    assert str(err.value).startswith(f"acme: reading the directory {url} failed: cannot reach the ACME server at {url}: ")


def test_untrusted_directory_certificate_says_to_set_ca_bundle(pebble):
    conn = acme_client.Connection(pebble.directory_url)  # system trust store: Pebble's cert is not in it
    with pytest.raises(AcmeError) as err:
        acme_client.connect(conn, ec_key())
    assert str(err.value).startswith(
        f"acme: reading the directory {pebble.directory_url} failed: TLS verification of the ACME server "
        f"{pebble.directory_url} failed (set ca_bundle to the CA certificate that signs it): ")


# --- badNonce and retries -------------------------------------------------------------------------------

def test_default_nonce_rejection_rate_is_absorbed():
    """Pebble's default: 5% of valid nonces rejected. Several orders must all succeed."""
    with PebbleServer(nonce_reject=5, authz_reuse=50) as server:
        client, _, _ = new_account(server)
        for i in range(3):
            key = ec_key()
            issued = orders.issue(client, [f"n{i}.example.test"], dns_solvers.make_solver(challtestsrv_dns(server)),
                                  key=key)
            assert x509util.dns_names_of(issued.leaf) == [f"n{i}.example.test"]
            assert keys.same_public_key(issued.leaf.public_key(), key)


def test_half_of_all_nonces_rejected_still_issues_thanks_to_bounded_retries():
    """The `acme` library alone retries badNonce once; at 50% rejection that fails most issuances."""
    with PebbleServer(nonce_reject=50) as server:
        client, _, _ = new_account(server)
        issued = orders.issue(client, ["nonce.example.test", "www.nonce.example.test"],
                              dns_solvers.make_solver(challtestsrv_dns(server)), key=ec_key())
        assert x509util.dns_names_of(issued.leaf) == ["nonce.example.test", "www.nonce.example.test"]


def test_retries_are_bounded_when_every_nonce_is_rejected():
    with PebbleServer(nonce_reject=100) as server:
        client = acme_client.connect(connection(server), ec_key())  # default policy
        started = time.monotonic()
        with pytest.raises(RetryableError) as err:
            acme_client.register_account(client, email=None)
        assert time.monotonic() - started < 5  # 20 quick tries, then give up
        log = (server.workdir / "pebble.log").read_text()
        assert log.count("POST /sign-me-up") == RetryPolicy().nonce_attempts
        assert str(err.value).startswith("acme: account registration failed: the CA kept failing, retries "
                                         "exhausted: urn:ietf:params:acme:error:badNonce: ")


def test_server_errors_are_retried_with_backoff_then_succeed():
    net = network()
    calls = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            err = messages.Error.with_code("serverInternal", detail="try again")
            object.__setattr__(err, "certplane_status", 500)
            raise err
        return "ok"

    assert net._retrying(flaky) == "ok"
    assert len(calls) == 3
    assert calls[2] - calls[1] >= calls[1] - calls[0]  # exponential, not a tight loop


def test_permanent_problems_are_not_retried():
    net = network()
    calls = []

    def malformed() -> None:
        calls.append(1)
        raise messages.Error.with_code("malformed", detail="bad request")

    with pytest.raises(messages.Error):
        net._retrying(malformed)
    assert calls == [1]


# --- rate limits and problem documents -------------------------------------------------------------------

def test_rate_limit_is_retryable_with_retry_after_and_never_slept_through():
    net = network()
    response = problem_response(429, {"type": "urn:ietf:params:acme:error:rateLimited",
                                      "detail": "too many certificates (5) already issued for this exact set"},
                                {"Retry-After": "Fri, 27 Nov 2099 12:00:00 GMT"})
    started = time.monotonic()
    with pytest.raises(messages.Error) as raw:
        net._retrying(lambda: net._check_response(response))
    assert time.monotonic() - started < 1  # a rate limit is not transient: no retry, no sleep
    err = translate(raw.value, "order for www.example.test")
    assert isinstance(err, RetryableError)
    assert str(err) == ("acme: order for www.example.test failed: rate limited by the CA; retry after "
                        "2099-11-27T12:00:00Z (urn:ietf:params:acme:error:rateLimited: too many certificates (5) "
                        "already issued for this exact set)")
    expected = (dt.datetime(2099, 11, 27, 12, tzinfo=dt.timezone.utc) - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert err.retry_after is not None and abs(err.retry_after - expected) < 5


def test_rate_limit_with_delta_seconds():
    net = network()
    response = problem_response(429, {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down"},
                                {"Retry-After": "3600"})
    with pytest.raises(messages.Error) as raw:
        net._check_response(response)
    err = translate(raw.value, "order for a.example.test")
    assert isinstance(err, RetryableError) and 3590 < (err.retry_after or 0) <= 3600
    assert "rate limited by the CA; retry after 20" in str(err)


def test_subproblems_are_listed_per_identifier_on_one_line():
    err = messages.Error.from_json({
        "type": "urn:ietf:params:acme:error:compound",
        "detail": "Error creating new order :: 2 problems",
        "subproblems": [
            {"type": "urn:ietf:params:acme:error:caa", "detail": "CAA record for caa.example.test prevents issuance",
             "identifier": {"type": "dns", "value": "caa.example.test"}},
            {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Domain name is\nblocked",
             "identifier": {"type": "dns", "value": "blocked.example"}},
        ],
    })
    assert describe_problem(err) == (
        "urn:ietf:params:acme:error:compound: Error creating new order :: 2 problems "
        "(caa.example.test: CAA record for caa.example.test prevents issuance; blocked.example: Domain name is blocked)")
    out = translate(err, "order for caa.example.test, blocked.example")
    assert isinstance(out, AcmeError) and "\n" not in str(out)
