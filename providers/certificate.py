"""Certificates signed here: self-signed (labs, CA roots) and signed by a certplane CA (intermediates, leaves).

Renewal is an in-place update that keeps the resource's identity: `diff` says an update is due when the
renewal window opens (a pure function of the stored validity and `now`), or when anything that shapes the
certificate changes; `update` re-issues with a new key unless `reuse_key`.
"""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, UpdateResult

from . import _issued
from ._dynamic import CertplaneProvider, is_unknown, user_facing
from .core import certificates as x509util
from .core import formats, keys, renewal
from .core.errors import InvalidInputError

# Inputs that shape the certificate itself: a change re-issues it.
REISSUE_FIELDS = (
    "key", "common_name", "organization", "dns_names", "ip_addresses", "validity_days", "is_ca",
    "path_length", "client_auth", "permitted_dns_domains", "ca_cert_pem", "ca_chain_pem",
)
# Inputs that only change how it is rendered or when it renews.
RENDER_FIELDS = ("formats", "keystore_password", "renew", "reuse_key", "name")
NOT_OUTPUTS = ("ca_private_key_pem", "key_pem")  # never copy the CA's key (or an external key) into outputs


def _template(props: dict[str, Any]) -> x509util.CertificateTemplate:
    return x509util.CertificateTemplate(
        common_name=props.get("common_name") or None,
        dns_names=tuple(props.get("dns_names") or ()),
        ip_addresses=tuple(props.get("ip_addresses") or ()),
        organization=props.get("organization") or None,
        validity_days=int(props.get("validity_days") or 90),
        is_ca=bool(props.get("is_ca")),
        path_length=None if props.get("path_length") is None else int(props["path_length"]),
        client_auth=bool(props.get("client_auth")),
        permitted_dns_domains=tuple(props.get("permitted_dns_domains") or ()),
    )


def _load_issuer(props: dict[str, Any]) -> tuple[Any, keys.PrivateKey, list[Any]] | None:
    if not props.get("ca_cert_pem"):
        return None
    certs = x509util.load_certificates(props["ca_cert_pem"])
    if not certs:
        raise InvalidInputError("ca_cert_pem", "is not a PEM certificate")
    ca_cert = certs[0]
    try:
        ca_key = keys.load_private_key(props.get("ca_private_key_pem") or "")
    except InvalidInputError as err:
        raise InvalidInputError("ca_private_key_pem", err.reason) from None
    if not keys.same_public_key(ca_key, ca_cert.public_key()):
        raise InvalidInputError("ca_private_key_pem", "does not match the CA certificate")
    if not x509util.is_ca(ca_cert):
        raise InvalidInputError("ca_cert_pem", "is not a CA certificate (basicConstraints CA:FALSE)")
    above = [c for c in x509util.load_certificates(props.get("ca_chain_pem") or "") if not x509util.is_self_issued(c)]
    served_chain = ([] if x509util.is_self_issued(ca_cert) else [ca_cert]) + above
    return ca_cert, ca_key, served_chain


def _key_for(props: dict[str, Any], old_key_pem: str | None) -> keys.PrivateKey:
    if props.get("key_pem"):
        try:
            return keys.load_private_key(props["key_pem"])
        except InvalidInputError as err:
            raise InvalidInputError("key_pem", err.reason) from None
    return _issued.key_for_renewal(keys.KeySpec.parse(props.get("key")), old_key_pem, bool(props.get("reuse_key")))


def _render(props: dict[str, Any], key: keys.PrivateKey, cert: Any, chain: list[Any], password: str) -> dict[str, Any]:
    outs = _issued.render(props, key, cert, chain, password, drop=NOT_OUTPUTS)
    outs["key_pem_fingerprint"] = keys.public_key_fingerprint_sha256(key) if props.get("key_pem") else None
    return outs


def _issue(props: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    template = _template(props)
    template.validate()
    key = _key_for(props, (old or {}).get("private_key_pem"))
    issuer = _load_issuer(props)
    at = renewal.now()
    if issuer is None:
        cert = x509util.sign_certificate(template, subject_public_key=key.public_key(), signing_key=key,
                                         issuer=None, now=at)
        chain: list[Any] = []
    else:
        ca_cert, ca_key, chain = issuer
        cert = x509util.sign_certificate(template, subject_public_key=key.public_key(), signing_key=ca_key,
                                         issuer=ca_cert, now=at)
    return _render(props, key, cert, chain, _issued.keystore_password(props, old))


def reissue_reasons(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """Why the stored certificate no longer fits its inputs (empty when it still does)."""
    name = news.get("name") or "certificate"
    reasons = _issued.changed_fields(name, olds, news, REISSUE_FIELDS)
    if news.get("key_pem") and not is_unknown(news["key_pem"]):
        if keys.public_key_fingerprint_sha256(keys.load_private_key(news["key_pem"])) != olds.get("key_pem_fingerprint"):
            reasons.append(f"{name}: the signing key changed; re-issuing")
    elif is_unknown(news.get("key_pem")):
        reasons.append(f"{name}: key_pem changes (known after apply); re-issuing")
    if olds.get("not_before") and olds.get("not_after") and not is_unknown(news.get("renew")):
        decision = renewal.renewal_decision(
            name, x509util.parse_rfc3339(olds["not_before"]), x509util.parse_rfc3339(olds["not_after"]),
            renewal.RenewalPolicy.parse(news.get("renew")), renewal.now(),
        )
        if decision.due:
            reasons.append(decision.reason)
    return reasons


class CertificateProvider(CertplaneProvider):
    def validate(self, news: dict[str, Any]) -> dict[str, Any]:
        if not is_unknown(news.get("key")) and not news.get("key_pem"):
            news["key"] = keys.KeySpec.parse(news.get("key")).as_dict()
        if not any(is_unknown(news.get(f)) for f in REISSUE_FIELDS):
            _template(news).validate()
        if not is_unknown(news.get("renew")):
            renewal.RenewalPolicy.parse(news.get("renew"))
        if not is_unknown(news.get("formats")):
            formats.check_formats(list(news.get("formats") or []))
        if news.get("ca_cert_pem") and not is_unknown([news.get("ca_cert_pem"), news.get("ca_private_key_pem")]):
            _load_issuer(news)
        if news.get("key_pem") and not is_unknown(news.get("key_pem")):
            _key_for(news, None)
        return news

    @user_facing("issuing a certificate")
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"cert-{uuid.uuid4().hex[:12]}", _issue(props, None))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _issued.in_place_diff(reissue_reasons(olds, news), _issued.rendering_changed(olds, news, (f for f in RENDER_FIELDS if f != "keystore_password")))

    @user_facing("renewing a certificate")
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if reissue_reasons(olds, news):
            return UpdateResult(_issue(news, olds))
        outs = _issued.rerender(olds, news, drop=NOT_OUTPUTS)
        outs["key_pem_fingerprint"] = olds.get("key_pem_fingerprint")
        return UpdateResult(outs)


class _Certificate(_issued.IssuedCertificate):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None) -> None:
        base = {"name": name, "key": None, "key_pem": None, "reuse_key": False, "common_name": None,
                "organization": None, "dns_names": [], "ip_addresses": [], "validity_days": 90, "is_ca": False,
                "path_length": None, "client_auth": False, "permitted_dns_domains": [], "ca_cert_pem": None,
                "ca_private_key_pem": None, "ca_chain_pem": None, "renew": None, "formats": [],
                "keystore_password": None}
        outputs = {k: None for k in (*_issued.OUTPUTS, "key_pem_fingerprint") if k not in base}
        secret = pulumi.ResourceOptions(additional_secret_outputs=_issued.SECRET_OUTPUTS)
        super().__init__(CertificateProvider(), name, {**base, **outputs, **props},
                         pulumi.ResourceOptions.merge(secret, opts))


class SelfSignedCertificate(_Certificate):
    """A certificate signed by its own key: lab endpoints and CA roots (`is_ca=True`)."""

    def __init__(self, name: str, *, opts: pulumi.ResourceOptions | None = None, **props: Any) -> None:
        super().__init__(name, props, opts)


class LocallySignedCertificate(_Certificate):
    """A certificate signed by a certplane CA (`ca_cert_pem` + secret `ca_private_key_pem`)."""

    def __init__(self, name: str, *, ca_cert_pem: Any, ca_private_key_pem: Any,
                 opts: pulumi.ResourceOptions | None = None, **props: Any) -> None:
        super().__init__(name, {**props, "ca_cert_pem": ca_cert_pem,
                                "ca_private_key_pem": pulumi.Output.secret(ca_private_key_pem)}, opts)
