"""AcmeAccount, and Certificate with the acme issuer: CRUD as plain Python on dicts, against a local Pebble."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from providers import acme_account, certificate
from providers.core import certificates as x509util
from providers.core import clock
from providers.core import dns, keys
from providers.core.errors import CertplaneError
from tests.support.acme import EAB_HMAC, EAB_KID, challtestsrv_dns, standalone_http01, verify_chain
from tools.servers.pebble import PebbleServer


def account_props(server: PebbleServer, **extra: Any) -> dict[str, Any]:
    return {"directory_url": server.directory_url, "email": "ops@example.test",
            "ca_bundle": str(server.ca_bundle_path), "key": None, **extra}


@pytest.fixture(scope="module")
def registered(pebble: PebbleServer) -> dict[str, Any]:
    provider = acme_account.AcmeAccountProvider()
    props = provider.check({}, account_props(pebble)).inputs
    return dict(provider.create(props).outs)


ORDER = ("directory_url", "ca_bundle", "profile", "challenge", "http01", "revoke_on_destroy", "revoke_reason",
         "order_timeout_seconds")


def acme_inputs(server: PebbleServer, account: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Certificate's inputs with the acme issuer; `extra` keys go where they belong (order settings, the
    secret `dns` settings, the account's credentials, or the certificate itself)."""
    order = {"directory_url": server.directory_url, "ca_bundle": str(server.ca_bundle_path), "profile": "default",
             "challenge": "dns-01", "http01": None, "revoke_on_destroy": False, "revoke_reason": None,
             "order_timeout_seconds": None}
    secrets = {"dns": challtestsrv_dns(server)}
    credentials = {"account_key_pem": account["account_key_pem"], "account_url": account["account_url"]}
    props = {"name": "www", "domains": ["www.example.test", "example.test"],
             "key": {"algorithm": "ecdsa", "curve": "P-256"}, "reuse_key": False, "renew": None,
             "formats": ["pem", "pkcs12"], "keystore_password": None, "issuer_type": "acme"}
    for key, value in extra.items():
        target = order if key in ORDER else secrets if key == "dns" else credentials if key.startswith("account_") \
            else props
        target[key] = value
    return {**props, "issuer_settings": order, "issuer_secrets": secrets, "issuer_credentials": credentials}


def cert_props(server: PebbleServer, account: dict[str, Any], **extra: Any) -> dict[str, Any]:
    check = certificate.CertificateProvider().check({}, acme_inputs(server, account, **extra))
    assert check.failures == [], [f.reason for f in check.failures]
    return dict(check.inputs)


def check_failure(provider: Any, props: dict[str, Any]) -> str:
    result = provider.check({}, props)
    assert len(result.failures) == 1
    return str(result.failures[0].reason)


# --- AcmeAccount ---------------------------------------------------------------------------------------

def test_account_create_outputs_and_reuse(pebble, registered):
    assert registered["account_url"].startswith(f"https://127.0.0.1:{pebble.acme_port}/my-account/")
    assert registered["key_algorithm"] == "ECDSA-P-256"
    key = keys.load_private_key(registered["account_key_pem"])
    from providers.core.acme import client as acme_client

    conn = acme_client.Connection(pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    assert acme_client.find_account(acme_client.connect(conn, key)).url == registered["account_url"]


def test_account_diff_and_email_update(pebble, registered):
    provider = acme_account.AcmeAccountProvider()
    news = provider.check({}, account_props(pebble, email="sec@example.test")).inputs
    diff = provider.diff("id", registered, news)
    assert diff.changes and diff.replaces == []
    outs = provider.update("id", registered, news).outs
    assert outs["account_url"] == registered["account_url"] and outs["email"] == "sec@example.test"
    assert outs["account_key_pem"] == registered["account_key_pem"]
    moved = provider.diff("id", registered, {**news, "directory_url": "https://acme.example/dir"})
    assert moved.replaces == ["directory_url"]
    same = provider.diff("id", registered, provider.check({}, account_props(pebble)).inputs)
    assert not same.changes


def test_account_check_failures(pebble):
    provider = acme_account.AcmeAccountProvider()
    assert check_failure(provider, account_props(pebble, directory_url="ftp://x")) == (
        "directory_url: must be the https:// URL of an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory "
        "(http:// only on loopback)")
    assert check_failure(provider, account_props(pebble, directory_url="http://acme.example.test/dir")).startswith(
        "directory_url: must be the https:// URL")
    assert check_failure(provider, account_props(pebble, key={"algorithm": "ed25519"})) == (
        "key.algorithm: ACME CAs do not accept Ed25519 keys: use rsa or ecdsa")
    assert check_failure(provider, account_props(pebble, email="ops")) == "email: 'ops' is not an e-mail address"
    assert check_failure(provider, account_props(pebble, eab_kid="kid-1")) == (
        "eab: give both kid and hmac_key for External Account Binding")


def reported(call: Any) -> str:
    """What the SDK's provider server sends the engine when `call` fails (its `traceback.format_exc()`)."""
    import traceback

    from providers._dynamic import _TracebackOfCertplaneErrors

    try:
        call()
    except CertplaneError:
        return _TracebackOfCertplaneErrors(traceback).format_exc()
    raise AssertionError("did not fail")


def test_account_eab_required_missing_and_given(pebble_eab):
    provider = acme_account.AcmeAccountProvider()
    assert reported(lambda: provider.create(account_props(pebble_eab))) == (
        f"certplane: registering an ACME account: eab: the ACME server at {pebble_eab.directory_url} requires "
        "External Account Binding: set eab.kid and eab.hmac_key from your CA account")  # one line, no traceback
    outs = provider.create(account_props(pebble_eab, eab_kid=EAB_KID, eab_hmac_key=EAB_HMAC)).outs
    assert "/my-account/" in outs["account_url"]


# --- AcmeCertificate ------------------------------------------------------------------------------------

def test_certificate_create_dns01_outputs(pebble, registered):
    provider = certificate.CertificateProvider()
    result = provider.create(cert_props(pebble, registered))
    outs = result.outs
    assert result.id.startswith("cert-")
    assert set(outs) - set(certificate.CertificateInputs.model_fields) <= set(certificate.CertificateOutputs.model_fields)
    assert {"cert_pem", "chain_pem", "private_key_pem", "serial", "not_after", "renewal_time"} <= set(outs)
    leaf = x509util.load_certificates(outs["cert_pem"])[0]
    chain = x509util.load_certificates(outs["chain_pem"])
    verify_chain(leaf, chain, pebble.root_pem, "www.example.test")
    assert "fullchain_pem" not in outs, "derived by the component, never stored twice"
    assert outs["dns_names"] == ["www.example.test", "example.test"]
    assert outs["serial"] == x509util.serial_hex(leaf)
    assert outs["key_algorithm"] == "ECDSA-P-256"
    assert keys.same_public_key(keys.load_private_key(outs["private_key_pem"]), leaf.public_key())
    assert outs["pkcs12_base64"] and outs.get("jks_base64") is None and outs["keystore_password"]
    assert outs["issuer"].startswith("CN=Pebble Intermediate CA")
    # Pebble offers ARI: renewal_time is the start of the CA's window
    assert outs["renewal_source"] == "ari"
    assert outs["renewal_time"] == outs["ari_window_start"] < outs["ari_window_end"] < outs["not_after"]
    assert not provider.diff(result.id, outs, cert_props(pebble, registered)).changes


def test_certificate_http01_standalone(pebble, registered):
    props = cert_props(pebble, registered, domains=["h.example.test", "h2.example.test"], challenge="http-01",
                       dns=None, http01=standalone_http01(pebble), key={"algorithm": "rsa", "size": 2048})
    outs = certificate.CertificateProvider().create(props).outs
    assert outs["dns_names"] == ["h.example.test", "h2.example.test"] and outs["key_algorithm"] == "RSA-2048"


def test_certificate_shortlived_profile(pebble, registered):
    outs = certificate.CertificateProvider().create(
        cert_props(pebble, registered, domains=["s.example.test"], profile="shortlived")).outs
    life = clock.parse_rfc3339(outs["not_after"]) - clock.parse_rfc3339(outs["not_before"])
    assert dt.timedelta(days=5, hours=23) <= life <= dt.timedelta(days=6, hours=1)


def test_domain_change_reissues_in_place_with_a_new_key(pebble, registered, capsys):
    provider = certificate.CertificateProvider()
    olds = provider.create(cert_props(pebble, registered, domains=["a.example.test"])).outs
    news = cert_props(pebble, registered, domains=["a.example.test", "b.example.test"])
    diff = provider.diff("id", olds, news)
    assert diff.changes and diff.replaces == []
    assert "www: domains adds b.example.test; re-issuing" in capsys.readouterr().err
    assert "private_key_pem" in diff.details  # a new key with the new names
    outs = provider.update("id", olds, news).outs
    assert outs["dns_names"] == ["a.example.test", "b.example.test"]
    assert outs["serial"] != olds["serial"]
    assert outs["public_key_fingerprint_sha256"] != olds["public_key_fingerprint_sha256"]
    assert outs["keystore_password"] == olds["keystore_password"]
    # nothing was revoked by the update: the old certificate may still be deployed
    assert pebble.cert_status(olds["serial"])["Status"] == "Valid"


def test_reuse_key_keeps_the_key_across_renewal(pebble, registered):
    provider = certificate.CertificateProvider()
    olds = provider.create(cert_props(pebble, registered, domains=["k.example.test"], reuse_key=True)).outs
    news = cert_props(pebble, registered, domains=["k.example.test"], reuse_key=True, profile="shortlived")
    outs = provider.update("id", olds, news).outs
    assert outs["serial"] != olds["serial"]
    assert outs["private_key_pem"] == olds["private_key_pem"]


def test_renewal_due_at_the_ari_window_start(pebble, registered, monkeypatch, capsys):
    provider = certificate.CertificateProvider()
    props = cert_props(pebble, registered, domains=["ari.example.test"], renew={"before_days": 1})
    olds = provider.create(props).outs
    start = clock.parse_rfc3339(olds["ari_window_start"])
    monkeypatch.setenv("CERTPLANE_NOW", clock.rfc3339(start - dt.timedelta(hours=1)))
    assert not provider.diff("id", olds, props).changes
    monkeypatch.setenv("CERTPLANE_NOW", clock.rfc3339(start + dt.timedelta(minutes=5)))
    capsys.readouterr()
    assert provider.diff("id", olds, props).changes
    line = capsys.readouterr().err
    assert f"certplane: www: renewal due since {start:%Y-%m-%d %H:%M} UTC (ACME renewal info window)" in line
    outs = provider.update("id", olds, props).outs
    assert outs["serial"] != olds["serial"]
    assert pebble.cert_status(olds["serial"])["Status"] == "Valid"  # never revoked by renewal


def test_renewal_falls_back_to_the_policy_without_ari(pebble, registered, monkeypatch, capsys):
    provider = certificate.CertificateProvider()
    props = cert_props(pebble, registered, domains=["policy.example.test"], renew={"before_days": 30})
    olds = {**provider.create(props).outs, "ari_window_start": None, "ari_window_end": None,
            "renewal_source": "policy"}
    not_after = clock.parse_rfc3339(olds["not_after"])
    monkeypatch.setenv("CERTPLANE_NOW", clock.rfc3339(not_after - dt.timedelta(days=29)))
    capsys.readouterr()
    assert provider.diff("id", olds, props).changes
    assert "(30 days before expiry, " in capsys.readouterr().err  # and how much earlier the jitter moves it


def test_delete_revokes_only_when_asked(pebble, registered):
    provider = certificate.CertificateProvider()
    kept = provider.create(cert_props(pebble, registered, domains=["keep.example.test"])).outs
    provider.delete("id", kept)
    assert pebble.cert_status(kept["serial"])["Status"] == "Valid"
    gone = provider.create(cert_props(pebble, registered, domains=["gone.example.test"], revoke_on_destroy=True)).outs
    provider.delete("id", gone)
    status = pebble.cert_status(gone["serial"])
    assert status["Status"] == "Revoked" and status["Reason"] == 5  # cessationOfOperation
    provider.delete("id", gone)  # already revoked: still fine


def test_failed_order_is_one_clean_line_and_retries_cleanly(pebble, registered, capsys):
    provider = certificate.CertificateProvider()
    line = reported(lambda: provider.create(cert_props(pebble, registered, domains=["ok.example.test",
                                                                                    "blocked.example"])))
    assert line == (
        "certplane: issuing a certificate: acme: order for ok.example.test, blocked.example failed: "
        "urn:ietf:params:acme:error:rejectedIdentifier: Order included an identifier for which issuance is "
        'forbidden by policy: "blocked.example" (blocked.example: blocked.example is a forbidden domain)')
    assert capsys.readouterr().err == ""  # nothing else said
    outs = provider.create(cert_props(pebble, registered, domains=["ok.example.test"])).outs
    assert outs["dns_names"] == ["ok.example.test"]


@pytest.mark.parametrize(("extra", "message"), [
    ({"key": {"algorithm": "ed25519"}}, "key.algorithm: ACME CAs do not accept Ed25519 keys: use rsa or ecdsa"),
    ({"challenge": "tls-alpn-01"}, "issuer_settings.challenge: must be one of 'dns-01' or 'http-01'"),
    ({"challenge": "http-01", "domains": ["*.example.test"], "http01": {"mode": "standalone", "listen": "127.0.0.1:80"}},
     "challenge: wildcard *.example.test can only be validated with dns-01"),
    ({"dns": {"provider": "cloudflare"}},
     f"issuer_settings.dns.provider: unrecognized DNS provider: cloudflare (known: {dns.REGISTRY.known()})"),
    ({"domains": []}, "domains: a certificate needs at least one domain or IP address"),
    ({"ip_addresses": ["127.0.0.1"]}, "ip_addresses: not supported for ACME certificates yet"),
    ({"validity_days": 30}, "validity_days: ACME CAs set the lifetime themselves: choose it with the issuer's profile"),
    ({"challenge": "http-01", "dns": None, "http01": None},
     "issuer_settings.challenge: http-01 needs http01 in the issuer's settings ({mode: webroot, webroot: DIR} or "
     "{mode: standalone, listen: HOST:PORT})"),
    ({"domains": ["bad_name.example.test"]}, "domains: 'bad_name.example.test' is not a valid DNS name"),
    ({"renew": {"before_days": -1}}, "renew.before_days: must be a positive number of days"),
    ({"formats": ["pfx"]}, "formats: unknown format 'pfx': use pem, pkcs12, jks, der"),
    ({"account_key_pem": ""},
     "issuer_credentials.account_key_pem: the private key is not a PEM-encoded RSA, ECDSA or Ed25519 key"),
    ({"revoke_reason": "oops"}, "issuer_settings.revoke_reason: unknown revocation reason 'oops': use unspecified, "
                                "keyCompromise, affiliationChanged, superseded, cessationOfOperation"),
])
def test_certificate_check_failures(pebble, registered, extra, message):
    assert check_failure(certificate.CertificateProvider(), acme_inputs(pebble, registered, **extra)) == message


def test_check_tolerates_unknowns_during_preview(pebble, registered):
    """A preview that creates the issuer's account cannot know its key: the certificate checks the rest, and its
    diff says it will change."""
    from providers._wire import UNKNOWN_SENTINEL as UNKNOWN

    provider = certificate.CertificateProvider()
    props = acme_inputs(pebble, registered, domains=["pending.example.test"])
    props["issuer_credentials"] = {"account_key_pem": UNKNOWN, "account_url": UNKNOWN}
    result = provider.check({}, props)
    assert result.failures == []
    assert result.inputs["issuer_credentials"] == props["issuer_credentials"]  # still pending for the engine
    olds = provider.create(cert_props(pebble, registered, domains=["pending.example.test"])).outs
    assert provider.diff("id", olds, props).changes


def test_resources_declare_key_material_secret(monkeypatch):
    """The resource classes pass every input and declare key material (and DNS credentials) secret."""
    import pulumi
    import pulumi.dynamic

    built: dict[str, tuple[Any, dict[str, Any], Any]] = {}

    def record(self: Any, provider: Any, name: str, props: dict[str, Any], opts: Any = None) -> None:
        built[name] = (provider, props, opts)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", record)
    acme_account.AcmeAccount("acct", directory_url="https://127.0.0.1:1/dir", eab_kid="kid-1", eab_hmac_key="c2Vj")
    certificate.Certificate("www", domains=["www.example.test"], issuer_type="acme",
                            issuer_settings={"directory_url": "https://127.0.0.1:1/dir", "challenge": "dns-01"},
                            issuer_secrets={"dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:8055"}},
                            issuer_credentials={"account_key_pem": "PEM", "account_url": "https://127.0.0.1:1/acct/1"})
    provider, props, opts = built["acct"]
    assert isinstance(provider, acme_account.AcmeAccountProvider) and not vars(provider)
    assert set(opts.additional_secret_outputs) == {"account_key_pem", "eab_hmac_key"}
    assert isinstance(props["eab_hmac_key"], pulumi.Output)
    provider, props, opts = built["www"]
    assert isinstance(provider, certificate.CertificateProvider) and not vars(provider)
    assert {"private_key_pem", "pkcs12_base64", "jks_base64", "keystore_password", "key_pem", "issuer_secrets",
            "issuer_credentials"} == set(opts.additional_secret_outputs)
    assert isinstance(props["issuer_credentials"], pulumi.Output) and isinstance(props["issuer_secrets"], pulumi.Output)
    assert set(certificate.CertificateOutputs.model_fields) <= set(props)
    assert [a.type_ for a in opts.aliases] == ["pulumi-python:dynamic:Resource"]  # stacks from before type tokens


def test_account_delete_deactivates_only_when_asked(pebble):
    from providers.core.acme import client as acme_client
    from providers.core.acme.errors import AcmeError

    provider = acme_account.AcmeAccountProvider()
    conn = acme_client.Connection(pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    kept = provider.create(provider.check({}, account_props(pebble)).inputs).outs
    provider.delete("id", kept)
    key = keys.load_private_key(kept["account_key_pem"])
    assert acme_client.find_account(acme_client.connect(conn, key)).status == "valid"
    gone = provider.create(provider.check({}, account_props(pebble, deactivate_on_destroy=True)).inputs).outs
    provider.delete("id", gone)
    with pytest.raises(AcmeError) as err:
        acme_client.find_account(acme_client.connect(conn, keys.load_private_key(gone["account_key_pem"])))
    assert "acme: looking up the ACME account failed: urn:ietf:params:acme:error:unauthorized" in str(err.value)


def test_account_refresh_drops_an_account_the_ca_no_longer_knows(capsys):
    """A CA whose data was reset (Pebble restarted; a staging CA wiped): refresh removes the account from state
    so the next `up` registers a new one. A CA that cannot be reached changes nothing."""
    provider = acme_account.AcmeAccountProvider()
    with PebbleServer() as first:
        acme_port, ports = first.acme_port, dict(management_port=first.management_port, dns_port=first.dns_port,
                                                 challtestsrv_port=first.challtestsrv_port)
        outs = provider.create(provider.check({}, account_props(first)).inputs).outs
        assert provider.read("acct", outs).id == "acct"
        bundle = first.ca_bundle_path.read_text()
    unreachable = provider.read("acct", outs)
    assert unreachable.id == "acct" and unreachable.outs == outs
    assert "not checked" in capsys.readouterr().err
    with PebbleServer(acme_port=acme_port, **ports) as second:  # the same address, none of the old data
        assert second.ca_bundle_path.read_text() != bundle
        result = provider.read("acct", {**outs, "ca_bundle": str(second.ca_bundle_path)})
    assert result.id == "" and result.outs == {}
    assert f"ACME account {outs['account_url']} is unknown at the CA; the next `pulumi up` registers a new one" \
        in capsys.readouterr().err
