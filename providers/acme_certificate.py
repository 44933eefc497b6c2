"""AcmeCertificate: a certificate ordered from an ACME CA (RFC 8555), renewed in place.

`diff` re-issues when the domains, key, profile, challenge or directory change, or when renewal is due:
at the start of the CA's ACME Renewal Information window (RFC 9773) when the CA offers one, else by the
renewal policy. `update` re-issues in place (same resource id) with a new key unless `reuse_key`, and never
revokes: the old certificate stays valid until its replacement is deployed. `delete` revokes only when
`revoke_on_destroy`. A failed order raises one clear line and leaves the previous state untouched.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, UpdateResult

from . import _issued
from ._dynamic import CertplaneProvider, is_unknown, note, user_facing
from .acme_account import check_directory_url
from .core import certificates as x509util
from .core import dns as dns_solvers
from .core import formats, http01, keys, renewal
from .core.acme import ari, orders, revoke
from .core.acme import client as acme_client
from .core.acme.errors import RetryPolicy
from .core.errors import CertplaneError, InvalidInputError

CHALLENGES = ("dns-01", "http-01")
REISSUE_FIELDS = ("domains", "key", "profile", "challenge", "directory_url")
RENDER_FIELDS = ("formats", "renew", "reuse_key", "name", "dns", "http01", "ca_bundle", "account_url",
                 "revoke_on_destroy", "revoke_reason", "account_key_pem", "order_timeout_seconds")
# `dns` may carry provider credentials (tsig_secret, aws_secret_access_key): never plaintext in state.
SECRET_OUTPUTS = [*_issued.SECRET_OUTPUTS, "account_key_pem", "dns"]
OUTPUTS = _issued.OUTPUTS
ARI_PROBE = RetryPolicy(attempts=1, max_total=5.0)  # diff re-checks ARI only if it is quick


def challenge_of(props: dict[str, Any]) -> str:
    return str(props.get("challenge") or ("dns-01" if props.get("dns") else "http-01"))


def key_spec(props: dict[str, Any]) -> keys.KeySpec:
    spec = keys.KeySpec.parse(props.get("key"))
    acme_client.check_acme_key_spec(spec)
    return spec


def check_domains(domains: Any, challenge: str) -> list[str]:
    if not isinstance(domains, (list, tuple)) or not domains:
        raise InvalidInputError("domains", "an ACME certificate needs at least one domain")
    seen = set()
    for name in domains:
        x509util.check_dns_name(name, "domains")
        if name.lower() in seen:
            raise InvalidInputError("domains", f"{name!r} is listed twice")
        seen.add(name.lower())
        if name.startswith("*.") and challenge != "dns-01":
            raise InvalidInputError("challenge", f"wildcard {name} can only be validated with dns-01")
    return [str(d) for d in domains]


def solver_for(props: dict[str, Any]) -> Any:
    if challenge_of(props) == "dns-01":
        return dns_solvers.make_solver(props.get("dns"))
    return http01.make_solver(props.get("http01"))


def _connect(props: dict[str, Any], retry: RetryPolicy | None = None) -> Any:
    conn = acme_client.Connection(directory_url=props["directory_url"], ca_bundle=props.get("ca_bundle") or None)
    if retry is not None:
        conn = acme_client.Connection(conn.directory_url, conn.ca_bundle, retry=retry, timeout=5)
    account_key = keys.load_private_key(props["account_key_pem"])
    return acme_client.connect(conn, account_key, props.get("account_url") or None)


def _window(props: dict[str, Any]) -> renewal.AriWindow | None:
    if props.get("ari_window_start") and props.get("ari_window_end"):
        return renewal.AriWindow(x509util.parse_rfc3339(props["ari_window_start"]),
                                 x509util.parse_rfc3339(props["ari_window_end"]))
    return None


def _issue(props: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    domains = check_domains(props.get("domains"), challenge_of(props))
    key = _issued.key_for_renewal(key_spec(props), (old or {}).get("private_key_pem"), bool(props.get("reuse_key")))
    client = _connect(props)
    issued = orders.issue(client, domains, solver_for(props), key=key, profile=props.get("profile") or None,
                          timeout=float(props.get("order_timeout_seconds") or 120))
    for problem in issued.cleanup_errors:
        note(f"{props.get('name') or domains[0]}: {problem}")
    try:
        window = ari.renewal_window(client, issued.leaf)
    except CertplaneError as err:  # ARI is advisory: fall back to the renewal policy
        note(f"{props.get('name') or domains[0]}: no ACME renewal info ({err}); using the renewal policy")
        window = None
    return _issued.render(props, key, issued.leaf, issued.chain, _issued.keystore_password(props, old), window=window)


def _fresh_window(olds: dict[str, Any]) -> renewal.AriWindow | None:
    """Re-ask the CA for the renewal window (it may move it, e.g. after an incident); bounded to a few
    seconds and silent on failure: the window stored at issue time is used then."""
    if not (olds.get("ari_window_start") and olds.get("cert_pem") and olds.get("account_key_pem")):
        return _window(olds)
    try:
        cert = x509util.load_certificates(olds["cert_pem"])[0]
        return ari.renewal_window(_connect(olds, ARI_PROBE), cert) or _window(olds)
    except Exception:  # noqa: BLE001 - advisory only
        return _window(olds)


def reissue_reasons(olds: dict[str, Any], news: dict[str, Any], *, recheck_ari: bool = True) -> list[str]:
    """Why the stored certificate no longer fits its inputs or is due for renewal (empty when it is fine)."""
    name = news.get("name") or "certificate"
    # An explicit challenge equal to the one implied before is no change.
    fields = [f for f in REISSUE_FIELDS if f != "challenge" or challenge_of(olds) != challenge_of(news)]
    reasons = _issued.changed_fields(name, olds, news, fields)
    if olds.get("not_before") and olds.get("not_after") and not is_unknown(news.get("renew")):
        window = _fresh_window(olds) if recheck_ari else _window(olds)
        decision = renewal.renewal_decision(
            name, x509util.parse_rfc3339(olds["not_before"]), x509util.parse_rfc3339(olds["not_after"]),
            renewal.RenewalPolicy.parse(news.get("renew")), renewal.now(), window,
        )
        if decision.due:
            reasons.append(decision.reason)
    return reasons


class AcmeCertificateProvider(CertplaneProvider):
    def validate(self, news: dict[str, Any]) -> dict[str, Any]:
        if not is_unknown(news.get("directory_url")):
            check_directory_url(news.get("directory_url"))
        challenge = news.get("challenge")
        if not is_unknown(challenge):
            if challenge not in (None, "", *CHALLENGES):
                raise InvalidInputError("challenge", f"unknown challenge {challenge!r}: use dns-01 or http-01")
            if not is_unknown(news.get("domains")):
                check_domains(news.get("domains"), challenge_of(news))
            if challenge_of(news) == "dns-01" and not is_unknown(news.get("dns")):
                dns_solvers.validate(news.get("dns"))
            if challenge_of(news) == "http-01" and not is_unknown(news.get("http01")):
                http01.validate(news.get("http01"))
        if not is_unknown(news.get("key")):
            news["key"] = key_spec(news).as_dict()
        if not is_unknown(news.get("renew")):
            renewal.RenewalPolicy.parse(news.get("renew"))
        if not is_unknown(news.get("formats")):
            formats.check_formats(list(news.get("formats") or []))
        if not is_unknown(news.get("revoke_reason")) and news.get("revoke_reason"):
            revoke.reason_code(news["revoke_reason"])
        if not is_unknown(news.get("account_key_pem")):
            if not news.get("account_key_pem"):
                raise InvalidInputError("account_key_pem", "the ACME account key is required")
            try:
                acme_client.jwk_for(keys.load_private_key(news["account_key_pem"]))
            except InvalidInputError as err:
                raise InvalidInputError("account_key_pem", err.reason) from None
        profile = news.get("profile")
        if not is_unknown(profile) and profile is not None and not isinstance(profile, str):
            raise InvalidInputError("profile", "must be the name of a profile the CA offers, e.g. shortlived")
        return news

    @user_facing("issuing an ACME certificate")
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"acme-{uuid.uuid4().hex[:12]}", _issue(props, None))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _issued.in_place_diff(reissue_reasons(olds, news), _issued.rendering_changed(olds, news, RENDER_FIELDS))

    @user_facing("renewing an ACME certificate")
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if reissue_reasons(olds, news) or not olds.get("cert_pem"):
            return UpdateResult(_issue(news, olds))  # the old certificate is NOT revoked: it may still be live
        return UpdateResult(_issued.rerender(olds, news, window=_window(olds)))

    @user_facing("revoking an ACME certificate")
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if not props.get("revoke_on_destroy") or not props.get("cert_pem"):
            return
        cert = x509util.load_certificates(props["cert_pem"])[0]
        if cert.not_valid_after_utc <= dt.datetime.now(dt.timezone.utc):
            return  # expired: nothing left to revoke
        revoke.revoke(_connect(props), cert, props.get("revoke_reason") or "cessationOfOperation")
        note(f"{props.get('name') or 'certificate'}: revoked serial {x509util.serial_hex(cert)}")


class AcmeCertificate(_issued.IssuedCertificate):
    """A certificate from an ACME CA. Outputs as every certificate resource (providers/_issued.py), with
    renewal_source "ari" when the CA offers ACME Renewal Information, and ari_window_start/ari_window_end."""

    def __init__(self, name: str, *, directory_url: Any, account_key_pem: Any, account_url: Any, domains: Any,
                 challenge: Any = None, dns: Any = None, http01: Any = None, key: Any = None,
                 reuse_key: bool = False, profile: Any = None, renew: Any = None, formats: Any = None,
                 keystore_password: Any = None, revoke_on_destroy: bool = False, revoke_reason: Any = None,
                 ca_bundle: Any = None, order_timeout_seconds: Any = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "name": name, "directory_url": directory_url, "ca_bundle": ca_bundle,
            "account_key_pem": pulumi.Output.secret(account_key_pem), "account_url": account_url,
            "domains": domains, "challenge": challenge, "dns": dns, "http01": http01, "key": key,
            "reuse_key": reuse_key, "profile": profile, "renew": renew, "formats": formats or [],
            "keystore_password": pulumi.Output.secret(keystore_password) if keystore_password is not None else None,
            "revoke_on_destroy": revoke_on_destroy, "revoke_reason": revoke_reason,
            "order_timeout_seconds": order_timeout_seconds,
        }
        outputs = {k: None for k in OUTPUTS if k not in props}
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(AcmeCertificateProvider(), name, {**props, **outputs},
                         pulumi.ResourceOptions.merge(secret, opts))
