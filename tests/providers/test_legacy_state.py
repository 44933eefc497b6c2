"""State written before the issuer seam (flat certificate inputs) reads as today's: the first diff after an
upgrade finds nothing to do. (The same upgrade on the real engine: tests/integration/test_upgrade.py.)"""

from __future__ import annotations

from typing import Any

from providers import _legacy
from providers.certificate import CertificateProvider
from providers.core import certificates as x509util
from providers.core import keys
from tests.support.pki import make_ca

ISSUED = ("cert_pem", "chain_pem", "fullchain_pem", "private_key_pem", "serial", "not_before", "not_after",
          "renewal_time", "renewal_source", "ari_window_start", "ari_window_end", "fingerprint_sha256",
          "key_algorithm", "public_key_fingerprint_sha256", "issuer", "dns_names", "pkcs12_base64", "jks_base64",
          "cert_der_base64", "keystore_password")


def old_outputs(outs: dict[str, Any]) -> dict[str, Any]:
    """The outputs as that release wrote them: every one, unset ones as null, and fullchain_pem stored too."""
    return {**{k: outs.get(k) for k in ISSUED}, "fullchain_pem": outs["cert_pem"] + outs["chain_pem"]}


def issued_now(inputs: dict[str, Any]) -> dict[str, Any]:
    return CertificateProvider().create(CertificateProvider().check({}, inputs).inputs).outs


def v1_signed_here(outs: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    """What Self/LocallySignedCertificate kept in state: its flat inputs (the CA key left out) and outputs."""
    return {"name": "www", "key": {"algorithm": "ecdsa", "curve": "P-256"}, "reuse_key": False,
            "common_name": "www.example.test", "organization": None, "ip_addresses": [], "validity_days": 90,
            "is_ca": False, "path_length": None, "client_auth": False, "permitted_dns_domains": [], "renew": None,
            "formats": ["pem"], **inputs, **old_outputs(outs), "key_pem_fingerprint": None}


def test_a_v1_self_signed_certificate_needs_no_update(capfd):
    new = {"name": "www", "domains": ["www.example.test"], "key": {"algorithm": "ecdsa", "curve": "P-256"},
           "validity_days": 90, "formats": ["pem"], "issuer_type": "self_signed"}
    outs = issued_now(new)
    old = v1_signed_here(outs)
    assert CertificateProvider().diff("id", old, CertificateProvider().check({}, new).inputs).changes is False
    assert capfd.readouterr().err == ""


def test_a_v1_ca_signed_certificate_needs_no_update_until_its_ca_changes(capfd):
    ca = make_ca("Legacy Root")
    credentials = {"ca_cert_pem": x509util.to_pem(ca.cert), "ca_private_key_pem": keys.private_key_to_pem(ca.key),
                   "ca_chain_pem": ""}
    new = {"name": "www", "domains": ["www.example.test"], "key": {"algorithm": "ecdsa", "curve": "P-256"},
           "validity_days": 90, "formats": ["pem"], "issuer_type": "private_ca", "issuer_credentials": credentials}
    outs = issued_now(new)
    old = v1_signed_here(outs, ca_cert_pem=credentials["ca_cert_pem"], ca_chain_pem="")
    news = CertificateProvider().check({}, new).inputs
    assert CertificateProvider().diff("id", old, news).changes is False
    other = make_ca("Another Root")
    moved = {**new, "issuer_credentials": {**credentials, "ca_cert_pem": x509util.to_pem(other.cert),
                                           "ca_private_key_pem": keys.private_key_to_pem(other.key)}}
    capfd.readouterr()
    assert CertificateProvider().diff("id", old, CertificateProvider().check({}, moved).inputs).changes is True
    assert "www: the issuer changed; re-issuing" in capfd.readouterr().err


def test_a_v1_acme_certificate_maps_to_the_acme_issuer():
    raw = {"name": "shop", "directory_url": "https://127.0.0.1:14000/dir", "ca_bundle": "/x/pebble.pem",
           "account_key_pem": "PEM", "account_url": "https://127.0.0.1:14000/my-account/1",
           "domains": ["*.shop.example.test", "shop.example.test"], "challenge": None,
           "dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:8055"}, "http01": None,
           "key": {"algorithm": "ecdsa", "curve": "P-256"}, "profile": "default", "revoke_on_destroy": False,
           "revoke_reason": None, "order_timeout_seconds": None, "cert_pem": "...", "serial": "01"}
    today = _legacy.certificate(raw)
    assert today["issuer_type"] == "acme"
    assert today["issuer_settings"] == {"directory_url": "https://127.0.0.1:14000/dir", "ca_bundle": "/x/pebble.pem",
                                        "profile": "default", "challenge": "dns-01", "revoke_on_destroy": False}
    assert today["issuer_secrets"] == {"dns": raw["dns"]}  # DNS settings may hold credentials: still secret
    assert today["issuer_credentials"] == {"account_key_pem": "PEM", "account_url": raw["account_url"]}
    assert not {"directory_url", "account_key_pem", "dns"} & set(today)
    assert _legacy.certificate(today) == today  # today's shape is left alone


def v1_acme(outs: dict[str, Any], **over: Any) -> dict[str, Any]:
    """What AcmeCertificate kept in state (its flat inputs and outputs) for a certificate issued as `outs`."""
    account_key = keys.private_key_to_pem(keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256")))
    return {"name": "shop", "directory_url": "https://127.0.0.1:14000/dir", "ca_bundle": None,
            "account_key_pem": account_key, "account_url": "https://127.0.0.1:14000/my-account/1",
            "domains": ["www.example.test"], "challenge": "dns-01",
            "dns": {"provider": "rfc2136", "nameserver": "127.0.0.1", "tsig_key_name": "k", "tsig_secret": "c2VjcmV0"},
            "http01": None, "key": {"algorithm": "ecdsa", "curve": "P-256"}, "profile": None,
            "revoke_on_destroy": False, "revoke_reason": None, "order_timeout_seconds": None, "renew": None,
            "formats": ["pem"], "reuse_key": False, **old_outputs(outs), **over}


def test_a_refresh_of_v1_state_writes_no_secret_under_a_new_name():
    """A refresh keeps only the secret flags the old state declared: today's `issuer_secrets` or
    `issuer_credentials` written back by it would be stored in plain text."""
    outs = issued_now({"name": "shop", "domains": ["www.example.test"], "key": {"algorithm": "ecdsa", "curve": "P-256"},
                       "formats": ["pem"], "issuer_type": "self_signed"})
    raw = v1_acme(outs)
    read = CertificateProvider().read("id", raw)
    assert read.id == "id"
    added = set(read.outs) - set(raw)
    assert not added & {"issuer_secrets", "issuer_credentials", "private_key_pem", "keystore_password"}, added
    assert "c2VjcmV0" not in str({k: read.outs[k] for k in added})


def test_state_an_earlier_release_accepted_still_reads_though_today_refuses_it():
    """An http:// directory off loopback was accepted then and is refused now: check refuses it, but state
    holding it still refreshes and destroys (a stricter rule must not lock a stack)."""
    outs = issued_now({"name": "shop", "domains": ["www.example.test"], "key": {"algorithm": "ecdsa", "curve": "P-256"},
                       "formats": ["pem"], "issuer_type": "self_signed"})
    raw = v1_acme(outs, directory_url="http://pebble.internal:14000/dir")
    assert CertificateProvider().read("id", raw).id == "id"
    CertificateProvider().delete("id", raw)  # revoke_on_destroy is off: nothing to do, and nothing fails
    news = {"name": "shop", "domains": ["www.example.test"], "issuer_type": "acme",
            "issuer_settings": {"directory_url": "http://pebble.internal:14000/dir", "challenge": "http-01",
                                "http01": {"mode": "standalone"}}}
    assert [f.reason for f in CertificateProvider().check({}, news).failures] == [
        "issuer_settings.directory_url: must be the https:// URL of an ACME directory, e.g. "
        "https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)"]


def test_an_nginx_binding_from_before_modes_is_a_server_block_and_today_writes_the_mode():
    from providers.binding import CertificateBindingProvider
    from providers.core import deploy

    settings = {"conf_dir": "/srv/nginx", "listen": "127.0.0.1:8443"}
    before_modes = {"certificate": "www", "target": "edge", "target_type": "nginx", "target_settings": settings}
    stored = CertificateBindingProvider()._stored(before_modes)  # noqa: SLF001
    assert stored.inputs.settings.mode == "server"  # type: ignore[attr-defined]
    # What the components send today always carries the mode (defaults are written out), so a binding made by
    # this release is never mistaken for one from before.
    assert deploy.parse_settings("nginx", settings).wire()["mode"] == "snippet"
