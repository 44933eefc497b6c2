"""`pulumi refresh` of an AcmeAccount: only a definitive answer from the CA (accountDoesNotExist, or the account
deactivated) drops it from state; a transient or ambiguous reply (malformed, 5xx, no connection, some other
unauthorized) keeps the state and says so in one line. The directory URL rule is said at preview."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from acme import client as acme_lib
from acme import messages

from providers import acme_account
from providers.core import keys
from providers.core.acme import client as acme_client
from tools.servers.pebble import PebbleServer


def account_props(server: PebbleServer, **extra: Any) -> dict[str, Any]:
    return {"directory_url": server.directory_url, "email": "ops@example.test",
            "ca_bundle": str(server.ca_bundle_path), "key": None, **extra}


@pytest.fixture()
def registered(pebble: PebbleServer) -> dict[str, Any]:
    provider = acme_account.AcmeAccountProvider()
    return dict(provider.create(provider.check({}, account_props(pebble)).inputs).outs)


def problem(code: str, detail: str, status: int) -> messages.Error:
    err = messages.Error.with_code(code, detail=detail)
    object.__setattr__(err, "certplane_status", status)
    return err


def answering(monkeypatch: pytest.MonkeyPatch, err: BaseException) -> list[int]:
    """The CA answers every account lookup with `err`; the list counts the lookups."""
    calls: list[int] = []

    def query(self: Any, regr: Any) -> Any:
        calls.append(1)
        raise err

    monkeypatch.setattr(acme_lib.ClientV2, "query_registration", query)
    return calls


@pytest.mark.parametrize(("err", "said"), [
    (problem("malformed", "JWS has an invalid anti-replay nonce", 400),
     "urn:ietf:params:acme:error:malformed: JWS has an invalid anti-replay nonce"),
    (problem("serverInternal", "database unavailable", 503),
     "the CA kept failing, retries exhausted: urn:ietf:params:acme:error:serverInternal: database unavailable"),
    (problem("unauthorized", "JWS verification error", 403),
     "urn:ietf:params:acme:error:unauthorized: JWS verification error"),
    (requests.ConnectionError("connection reset by peer"), "cannot reach the ACME server: connection reset by peer"),
])
def test_a_transient_or_ambiguous_reply_keeps_the_account(monkeypatch, capsys, registered, err, said):
    calls = answering(monkeypatch, err)
    capsys.readouterr()
    result = acme_account.AcmeAccountProvider().read("acct", registered)
    assert calls == [1]
    assert result.id == "acct" and result.outs == registered
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"certplane: ACME account {registered['account_url']}: not checked (acme: looking up the ACME "
                     f"account failed: {said}); state kept"]
    assert "PRIVATE KEY" not in lines[0]


def test_an_account_the_ca_does_not_know_is_dropped(monkeypatch, capsys, registered):
    answering(monkeypatch, problem("accountDoesNotExist", "no account for this key", 400))
    capsys.readouterr()
    result = acme_account.AcmeAccountProvider().read("acct", registered)
    assert result.id == "" and result.outs == {}
    assert (f"ACME account {registered['account_url']} is unknown at the CA; the next `pulumi up` registers a new "
            "one") in capsys.readouterr().err


def test_a_deactivated_account_is_dropped(pebble, capsys, registered):
    """Pebble answers a deactivated account's lookup with unauthorized "... is deactivated"."""
    conn = acme_client.Connection(pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    key = keys.load_private_key(registered["account_key_pem"])
    acme_client.deactivate_account(acme_client.connect(conn, key, registered["account_url"]),
                                   registered["account_url"])
    capsys.readouterr()
    result = acme_account.AcmeAccountProvider().read("acct", registered)
    assert result.id == "" and result.outs == {}
    assert (f"ACME account {registered['account_url']} is deactivated at the CA; the next `pulumi up` registers a "
            "new one") in capsys.readouterr().err


def test_a_valid_account_is_kept_quietly(capsys, registered):
    capsys.readouterr()
    result = acme_account.AcmeAccountProvider().read("acct", registered)
    assert result.id == "acct" and result.outs == registered
    assert capsys.readouterr().err == ""


def test_http_off_loopback_is_refused_at_preview_and_never_used_from_state(monkeypatch, capsys, pebble, registered):
    provider = acme_account.AcmeAccountProvider()
    for url in ("http://acme.example.test/dir", "http://127.0.0.2:14000/dir", "http://[::ffff:127.0.0.1]:14000/dir"):
        failures = provider.check({}, account_props(pebble, directory_url=url)).failures
        assert [f.reason for f in failures] == [
            "directory_url: must be the https:// URL of an ACME directory, e.g. "
            "https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)"]
    calls = answering(monkeypatch, AssertionError("no request may be sent"))
    stored = {**registered, "directory_url": "http://acme.example.test/dir"}  # an earlier release accepted it
    capsys.readouterr()
    result = provider.read("acct", stored)
    assert calls == [] and result.id == "acct" and result.outs == stored
    assert capsys.readouterr().err.splitlines() == [
        f"certplane: ACME account {registered['account_url']}: not checked (directory_url: must be the https:// URL "
        "of an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)); "
        "state kept"]
