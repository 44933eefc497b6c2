"""What every certificate resource publishes, whoever issued it (a certplane CA, itself, an ACME CA or an
upload): the same outputs, rendered the same way, so components and bindings never care about the issuer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pulumi
from pulumi.dynamic import DiffResult, Resource

from ._dynamic import is_unknown, note, without_provider
from .core import certificates as x509util
from .core import formats, keys, renewal

OUTPUTS = (
    "cert_pem", "chain_pem", "fullchain_pem", "private_key_pem", "serial", "not_before", "not_after",
    "renewal_time", "renewal_source", "ari_window_start", "ari_window_end", "fingerprint_sha256", "key_algorithm",
    "public_key_fingerprint_sha256", "issuer", "dns_names", "pkcs12_base64", "jks_base64", "cert_der_base64",
    "keystore_password",
)
SECRET_OUTPUTS = ["private_key_pem", "pkcs12_base64", "jks_base64", "keystore_password"]


def render(props: dict[str, Any], key: keys.PrivateKey, cert: Any, chain: list[Any], password: str, *,
           window: renewal.AriWindow | None = None, drop: Iterable[str] = ()) -> dict[str, Any]:
    """Every output for a certificate + key: the inputs (minus `drop`), the formats asked for, the facts."""
    dropped = set(drop)
    policy = renewal.RenewalPolicy.parse(props.get("renew"))
    renew_at = renewal.renewal_time(cert.not_valid_before_utc, cert.not_valid_after_utc, policy, window)
    outs = {
        **{k: v for k, v in without_provider(props).items() if k not in dropped},
        **formats.render(list(props.get("formats") or []), key=key, leaf=cert, chain=chain, password=password),
        "serial": x509util.serial_hex(cert),
        "not_before": x509util.rfc3339(cert.not_valid_before_utc),
        "not_after": x509util.rfc3339(cert.not_valid_after_utc),
        "renewal_time": x509util.rfc3339(renew_at),
        "renewal_source": "ari" if window else "policy",
        "ari_window_start": x509util.rfc3339(window.start) if window else None,
        "ari_window_end": x509util.rfc3339(window.end) if window else None,
        "fingerprint_sha256": x509util.fingerprint_sha256(cert),
        "key_algorithm": keys.spec_of(key).label,
        "public_key_fingerprint_sha256": keys.public_key_fingerprint_sha256(key),
        "issuer": cert.issuer.rfc4514_string(),
        "dns_names": x509util.dns_names_of(cert),
        "keystore_password": password,
    }
    for name in OUTPUTS:
        outs.setdefault(name, None)
    return outs


def rerender(olds: dict[str, Any], news: dict[str, Any], *, window: renewal.AriWindow | None = None,
             drop: Iterable[str] = ()) -> dict[str, Any]:
    """Only how it is rendered changed (formats, password, renewal policy): same certificate, same key."""
    cert = x509util.load_certificates(olds["cert_pem"])[0]
    chain = x509util.load_certificates(olds.get("chain_pem") or "")
    key = keys.load_private_key(olds["private_key_pem"])
    return render(news, key, cert, chain, keystore_password(news, olds), window=window, drop=drop)


def keystore_password(news: dict[str, Any], olds: dict[str, Any] | None) -> str:
    """The configured password, else the one generated before (stable across renewals), else a new one."""
    return news.get("keystore_password") or (olds or {}).get("keystore_password") or formats.generate_password()


def normalize(value: Any) -> Any:
    """Compare inputs as the user means them: empty is absent, dict order does not matter, ints are ints."""
    if value in (None, "", [], {}):
        return None
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in sorted(value.items()) if normalize(v) is not None} or None
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def changed_fields(name: str, olds: dict[str, Any], news: dict[str, Any], fields: Iterable[str]) -> list[str]:
    """One preview line per input that shapes the certificate and changed (or is not known until apply)."""
    reasons = []
    for field in fields:
        if is_unknown(news.get(field)):
            reasons.append(f"{name}: {field} changes (known after apply); re-issuing")
        elif normalize(olds.get(field)) != normalize(news.get(field)):
            reasons.append(f"{name}: {field} changed; re-issuing")
    return reasons


def key_for_renewal(spec: keys.KeySpec, old_key_pem: str | None, reuse: bool) -> keys.PrivateKey:
    """A new key, unless `reuse` and the old key is of the same kind (a changed algorithm always means new)."""
    if old_key_pem and reuse:
        old_key = keys.load_private_key(old_key_pem)
        if keys.spec_of(old_key) == spec:
            return old_key
    return keys.generate_private_key(spec)


def rendering_changed(olds: dict[str, Any], news: dict[str, Any], fields: Iterable[str]) -> bool:
    if any(normalize(olds.get(f)) != normalize(news.get(f)) for f in fields):
        return True
    return bool(news.get("keystore_password")) and news.get("keystore_password") != olds.get("keystore_password")


def in_place_diff(reasons: list[str], rerender: bool) -> DiffResult:
    """Certificates are never replaced: re-issue and re-render are updates of the same resource. Each reason is
    shown in `pulumi preview`."""
    for reason in reasons:
        note(reason)
    return DiffResult(changes=bool(reasons) or rerender, replaces=[], delete_before_replace=False)


class IssuedCertificate(Resource):
    """Outputs shared by every certificate resource."""

    cert_pem: pulumi.Output[str]
    chain_pem: pulumi.Output[str]
    fullchain_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    serial: pulumi.Output[str]
    not_before: pulumi.Output[str]
    not_after: pulumi.Output[str]
    renewal_time: pulumi.Output[str]
    renewal_source: pulumi.Output[str]
    ari_window_start: pulumi.Output[str | None]
    ari_window_end: pulumi.Output[str | None]
    fingerprint_sha256: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]
    public_key_fingerprint_sha256: pulumi.Output[str]
    issuer: pulumi.Output[str]
    dns_names: pulumi.Output[list[str]]
    pkcs12_base64: pulumi.Output[str | None]
    jks_base64: pulumi.Output[str | None]
    cert_der_base64: pulumi.Output[str | None]
    keystore_password: pulumi.Output[str]
