"""A shared ACME account: an issuer's `account_key_pem` (an existing account's key, a Pulumi secret) instead of
a key generated per stack. Config validation at preview, the wiring (secret, and no new inputs when unset), and
the AcmeAccount provider against Pebble: the key's one account found by every stack, never deactivated."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pulumi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from components.config import ConfigProblems, parse_fleet, plain_secrets
from providers import acme_account
from providers.core import keys
from providers.core.acme import client as acme_client
from tests.reliability.harness import PebbleLog
from tools.servers.pebble import PebbleServer

DIRECTORY = "https://127.0.0.1:14000/dir"
WHERE = "certplane:issuers.le.account_key_pem"


def pem(key: Any, encryption: Any = None, fmt: Any = ser.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(ser.Encoding.PEM, fmt, encryption or ser.NoEncryption()).decode()


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issuer(**extra: Any) -> dict[str, Any]:
    return {"type": "acme", "directory_url": DIRECTORY, "email": "ops@example.test", **extra}


def problems(value: Any, **extra: Any) -> list[str]:
    try:
        parse_fleet({"issuers": {"le": issuer(account_key_pem=value, **extra)}})
    except ConfigProblems as found:
        return found.lines
    return []


# --- config: one line naming the field, never the key ---------------------------------------------------------

def _cases() -> list[tuple[str, Any, str]]:
    key = p256()
    return [
        ("garbage", "not a key at all", "is not a PEM-encoded private key (PKCS#8, PKCS#1 or SEC1: give the "
                                        "account's private key, as a secret)"),
        ("truncated", pem(key)[:120], "is not a PEM-encoded private key (PKCS#8, PKCS#1 or SEC1: give the "
                                      "account's private key, as a secret)"),
        ("public key", key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
         .decode(), "is a public key, not the account's private key"),
        ("certificate", _self_signed_pem(key), "is a certificate, not the account's private key"),
        ("ed25519", pem(ed25519.Ed25519PrivateKey.generate()),
         "ACME CAs do not accept Ed25519 account keys: use an RSA or ECDSA key"),
        ("dsa", pem(dsa.generate_private_key(2048)), "is neither an RSA nor an ECDSA key: ACME account keys are one "
                                                     "of those"),
        ("rsa 1024", pem(rsa.generate_private_key(65537, 1024)),
         "not an account key ACME CAs accept: RSA keys must be 2048, 3072 or 4096 bits"),
        ("p-521", pem(ec.generate_private_key(ec.SECP521R1())),
         "not an account key ACME CAs accept: ECDSA curve must be P-256 or P-384"),
        ("encrypted pkcs8", pem(key, ser.BestAvailableEncryption(b"passphrase")),
         "the account key is encrypted: give it unencrypted, as a secret (e.g. `openssl pkey -in KEY.pem`)"),
        ("encrypted pkcs1", pem(rsa.generate_private_key(65537, 2048), ser.BestAvailableEncryption(b"passphrase"),
                                ser.PrivateFormat.TraditionalOpenSSL),
         "the account key is encrypted: give it unencrypted, as a secret (e.g. `openssl pkey -in KEY.pem`)"),
        ("empty", "", "is empty: give the PEM of the account's private key, as a secret"),
        ("a mapping", {"pem": "x"}, "must be a string"),
    ]


def _self_signed_pem(key: ec.EllipticCurvePrivateKey) -> str:
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a key")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(ser.Encoding.PEM).decode()


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_a_bad_account_key_pem_is_one_line_naming_the_field(case: tuple[str, Any, str]) -> None:
    _, value, reason = case
    lines = problems(value)
    assert lines == [f"{WHERE}: {reason}"]
    if isinstance(value, str) and len(value) > 40:
        body = "".join(value.splitlines()[1:2])
        assert body and body not in lines[0], "key material in the message"


@pytest.mark.parametrize("fmt", [ser.PrivateFormat.PKCS8, ser.PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "sec1"])
def test_good_account_keys_are_accepted_with_their_spec(fmt: Any) -> None:
    for key, spec in ((p256(), keys.KeySpec("ecdsa", curve="P-256")),
                      (ec.generate_private_key(ec.SECP384R1()), keys.KeySpec("ecdsa", curve="P-384")),
                      (rsa.generate_private_key(65537, 3072), keys.KeySpec("rsa", size=3072))):
        fleet = parse_fleet({"issuers": {"le": issuer(account_key_pem=pem(key, fmt=fmt))}})
        request = fleet.issuers["le"].account()  # type: ignore[attr-defined]
        assert request.key == spec and request.key_pem == pem(key, fmt=fmt)
        assert "BEGIN" not in repr(request) and "BEGIN" not in repr(fleet.issuers["le"])


def test_account_key_and_account_key_pem_together_are_refused() -> None:
    assert problems(pem(p256()), account_key={"algorithm": "rsa"}) == [
        "certplane:issuers.le.account_key: give account_key (the key certplane generates) or account_key_pem (an "
        "existing account's key), not both"]


def test_account_key_pem_in_plain_text_is_reported_to_the_policy_pack() -> None:
    raw = {"issuers": {"le": issuer(account_key_pem=pem(p256()),
                                    dns={"provider": "challtestsrv", "url": "http://127.0.0.1:8055"})},
           "certificates": {"www": {"domains": ["www.example.test"], "issuer": "le"}}}
    fleet = parse_fleet(raw)
    assert plain_secrets(fleet, set()) == {"www": ["certplane:issuers.le.account_key_pem"]}
    assert plain_secrets(fleet, {"certplane:issuers"}) == {"www": []}  # set with --secret: the key is secret


# --- wiring: a secret input when given, the old inputs exactly when not ---------------------------------------

class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.endswith("AcmeAccount"):
            self.accounts[args.name] = dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, "account_url": "https://ca.example.test/acct/1"}

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        return {}


def _secret_value(value: Any) -> Any:
    assert isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == \
        "1b47061264138c4ac30d75fd1eb44270", f"not a secret: {value!r}"
    return value["value"]


@pulumi.runtime.test
def test_wiring_passes_the_key_as_a_secret_and_nothing_new_when_unset(tmp_path: Path) -> Any:
    from components.issuers import provision

    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, preview=False)
    given = pem(p256())
    fleet = parse_fleet({"issuers": {"own": issuer(), "shared": issuer(account_key_pem=given)}}, base_dir=tmp_path)
    parent = pulumi.ComponentResource("certplane:index:Test", "parent")
    handles = [provision(name, settings, parent=parent) for name, settings in fleet.issuers.items()]

    def check(_: Any) -> None:
        own, shared = recorder.accounts["own-account"], recorder.accounts["shared-account"]
        # What an account of the stack's own has always been given (state written before this option diffs clean).
        assert set(own) - {"__provider"} == {"directory_url", "email", "key"}, own
        assert own["key"] == {"algorithm": "ecdsa", "curve": "P-256"}
        assert _secret_value(shared["account_key_pem"]) == given and shared["shared"] is True
        assert shared["key"] == {"algorithm": "ecdsa", "curve": "P-256"}

    return pulumi.Output.all(*[h.credentials for h in handles if h.credentials is not None]).apply(check)


def test_the_resource_declares_the_given_key_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi.dynamic

    built: dict[str, Any] = {}

    def record(self: Any, provider: Any, name: str, props: dict[str, Any], opts: Any = None) -> None:
        built[name] = (props, opts)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", record)
    acme_account.AcmeAccount("acct", directory_url=DIRECTORY, account_key_pem=pem(p256()), shared=True)
    props, opts = built["acct"]
    assert isinstance(props["account_key_pem"], pulumi.Output)  # wrapped as a secret, like eab_hmac_key
    assert "account_key_pem" in opts.additional_secret_outputs


# --- the provider against Pebble --------------------------------------------------------------------------------

def props(server: PebbleServer, key_pem: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"directory_url": server.directory_url, "email": "ops@example.test",
                           "ca_bundle": str(server.ca_bundle_path), "key": {"algorithm": "ecdsa", "curve": "P-256"}}
    if key_pem:
        out.update(account_key_pem=key_pem, shared=True)
    return {**out, **extra}


def create(server: PebbleServer, key_pem: str | None = None, **extra: Any) -> dict[str, Any]:
    provider = acme_account.AcmeAccountProvider()
    checked = provider.check({}, props(server, key_pem, **extra))
    assert checked.failures == [], [f.reason for f in checked.failures]
    return dict(provider.create(checked.inputs).outs)


def status_of(server: PebbleServer, key_pem: str, url: str) -> str:
    conn = acme_client.Connection(server.directory_url, ca_bundle=str(server.ca_bundle_path))
    return acme_client.account_status(acme_client.connect(conn, keys.load_private_key(key_pem), url), url)


def test_two_stacks_with_one_key_share_one_account_and_neither_deactivates_it(pebble: PebbleServer, capsys):
    log = PebbleLog(pebble.workdir / "pebble.log")
    key_pem = pem(p256())
    first, second = create(pebble, key_pem), create(pebble, key_pem, email="other@example.test")
    assert first["account_url"] == second["account_url"]
    assert keys.same_public_key(keys.load_private_key(first["account_key_pem"]), keys.load_private_key(key_pem))
    assert first["shared"] is True and first["key_algorithm"] == "ECDSA-P-256"
    assert log.counts()["accounts"] == 1  # registered once, found the second time
    assert f"ACME account {first['account_url']}: the existing account of account_key_pem" in capsys.readouterr().err

    provider = acme_account.AcmeAccountProvider()
    provider.delete("acct", {**first, "deactivate_on_destroy": True})  # destroyed (or replaced) in one stack
    assert "shared (account_key_pem), left registered" in capsys.readouterr().err
    assert status_of(pebble, key_pem, second["account_url"]) == "valid"


def test_an_existing_stack_keeps_its_account_with_no_diff(pebble: PebbleServer):
    provider = acme_account.AcmeAccountProvider()
    old = create(pebble)
    assert "shared" not in old or old["shared"] is False
    state = {k: v for k, v in old.items() if k != "shared"}  # as an earlier release wrote it
    news = provider.check({}, props(pebble)).inputs
    diff = provider.diff("acct", state, news)
    assert not diff.changes and not diff.replaces


def test_diff_compares_keys_not_text_and_adopting_the_own_key_only_marks_it_shared(pebble: PebbleServer, capsys):
    provider = acme_account.AcmeAccountProvider()
    key = p256()
    shared = create(pebble, pem(key))

    same_key_other_text = provider.check({}, props(pebble, pem(key, fmt=ser.PrivateFormat.TraditionalOpenSSL)))
    assert not provider.diff("acct", shared, same_key_other_text.inputs).changes

    other = provider.diff("acct", shared, provider.check({}, props(pebble, pem(p256()))).inputs)
    assert other.changes and other.replaces == ["account_key_pem"]
    removed = provider.diff("acct", shared, provider.check({}, props(pebble)).inputs)
    assert removed.replaces == ["account_key_pem"]
    err = capsys.readouterr().err
    assert "account_key_pem changed; using that key's account" in err
    assert "account_key_pem removed; registering a new account with a key of this stack's own" in err

    # A team takes one stack's generated key and gives it to every stack: the same account, now shared.
    own = create(pebble)
    adopt = provider.check({}, props(pebble, own["account_key_pem"])).inputs
    diff = provider.diff("acct", own, adopt)
    assert diff.changes and not diff.replaces
    assert "account_key_pem is this account's own key; it is shared from now on" in capsys.readouterr().err
    updated = provider.update("acct", own, adopt).outs
    assert updated["shared"] is True and updated["account_url"] == own["account_url"]
    provider.delete("acct", {**updated, "deactivate_on_destroy": True})
    assert status_of(pebble, own["account_key_pem"], own["account_url"]) == "valid"


def test_an_email_change_leaves_a_shared_accounts_contact(pebble: PebbleServer, capsys):
    provider = acme_account.AcmeAccountProvider()
    key_pem = pem(p256())
    outs = create(pebble, key_pem)
    news = provider.check({}, props(pebble, key_pem, email="new@example.test")).inputs
    assert provider.diff("acct", outs, news).changes
    provider.update("acct", outs, news)
    assert "its contact is left as registered" in capsys.readouterr().err
    conn = acme_client.Connection(pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    found = acme_client.find_account(acme_client.connect(conn, keys.load_private_key(key_pem)))
    assert found.contact == ("mailto:ops@example.test",)


def test_check_refuses_a_bad_shared_key_in_one_line_without_echoing_it(pebble: PebbleServer):
    provider = acme_account.AcmeAccountProvider()
    label = "PRIVATE KEY"  # a PEM block of that label around bytes that are no key, made here
    secret = f"-----BEGIN {label}-----\n{base64.b64encode(b'secret-key-material').decode()}\n-----END {label}-----\n"
    result = provider.check({}, props(pebble, secret))
    assert [f.reason for f in result.failures] == [
        "account_key_pem: is not a PEM-encoded private key (PKCS#8, PKCS#1 or SEC1: give the account's private "
        "key, as a secret)"]
    assert all(f.property == "" for f in result.failures)
    result = provider.check({}, {**props(pebble), "shared": True})
    assert [f.reason for f in result.failures] == ["account_key_pem: a shared account needs its key"]


def test_refresh_of_a_shared_account_deactivated_elsewhere_says_so(pebble: PebbleServer, capsys):
    provider = acme_account.AcmeAccountProvider()
    key_pem = pem(p256())
    outs = create(pebble, key_pem)
    conn = acme_client.Connection(pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    client = acme_client.connect(conn, keys.load_private_key(key_pem), outs["account_url"])
    acme_client.deactivate_account(client, outs["account_url"])  # by whoever manages the account
    assert provider.read("acct", outs).id == ""
    assert (f"ACME account {outs['account_url']} (shared: account_key_pem) is deactivated at the CA; the next "
            "`pulumi up` fails until account_key_pem names a valid account") in capsys.readouterr().err


def test_stacks_registering_one_new_key_at_the_same_instant_get_one_account(pebble: PebbleServer):
    """The first `up` of every stack at once, with a key the CA has not seen: one account, one URL for all."""
    log = PebbleLog(pebble.workdir / "pebble.log")
    key_pem = pem(p256())
    urls: list[str] = []
    errors: list[str] = []
    start = threading.Barrier(4, timeout=30)
    provider = acme_account.AcmeAccountProvider()
    inputs = provider.check({}, props(pebble, key_pem)).inputs

    def up() -> None:
        start.wait()
        try:
            urls.append(acme_account.AcmeAccountProvider().create(inputs).outs["account_url"])
        except Exception as err:  # noqa: BLE001
            errors.append(str(err))

    threads = [threading.Thread(target=up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(urls) == 4 and len(set(urls)) == 1
    assert log.counts()["accounts"] == 1
