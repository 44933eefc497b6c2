"""State written by earlier releases of certplane, read in today's shape.

Certificates, before the issuer seam: a certificate was one of two resources with flat inputs: `Self/LocallySignedCertificate` (signed
here: `ca_cert_pem`, `ca_chain_pem`, `dns_names`, ...) or `AcmeCertificate` (`directory_url`, `account_key_pem`,
`dns`, ...). Both are now `Certificate` with an issuer plug-in. Their state stays as written until the next
update rewrites it, so it is translated on every read; the translation is pure and tested
(tests/providers/test_legacy_state.py, and an upgrade on the real engine in tests/integration).
"""

from __future__ import annotations

from typing import Any

from .core.deploy import nginx
from .core.issuers import private_ca, self_signed
from .core.validation import SECRET, marked

_ACME_ORDER = ("directory_url", "ca_bundle", "profile", "challenge", "dns", "http01", "revoke_on_destroy",
               "revoke_reason", "order_timeout_seconds")
_V1_CERTIFICATE_ONLY = ("ca_cert_pem", "ca_chain_pem", "ca_private_key_pem", "account_key_pem",
                        "account_url", *_ACME_ORDER)


def certificate(raw: dict[str, Any]) -> dict[str, Any]:
    """A certificate's state in today's shape (unchanged when it already is)."""
    if "issuer_type" in raw:
        return raw
    if raw.get("directory_url") and raw.get("account_url") is not None:
        return _acme_v1(raw)
    return _signed_here_v1(raw)


def _split(order: dict[str, Any], model: type[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = set(marked(model, SECRET))
    present = {k: v for k, v in order.items() if v is not None}
    return ({k: v for k, v in present.items() if k not in secret}, {k: v for k, v in present.items() if k in secret})


def _common(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in _V1_CERTIFICATE_ONLY}


def _acme_v1(raw: dict[str, Any]) -> dict[str, Any]:
    from .core.issuers import acme  # only state an ACME certificate wrote needs the ACME client's modules

    order = {k: raw.get(k) for k in _ACME_ORDER}
    order["challenge"] = raw.get("challenge") or acme.default_challenge(bool(raw.get("dns")))
    settings, secrets = _split(order, acme.AcmeOrder)
    return {**_common(raw), "issuer_type": acme.KIND, "issuer_settings": settings, "issuer_secrets": secrets or None,
            "issuer_credentials": {"account_key_pem": raw.get("account_key_pem"), "account_url": raw.get("account_url")},
            "issuer_identity": acme.PLUGIN.identity(acme.AcmeOrder.model_construct(), None)}


def _signed_here_v1(raw: dict[str, Any]) -> dict[str, Any]:
    domains = raw.get("dns_names") or []
    out = {**_common(raw), "domains": domains}
    if not raw.get("is_ca") and domains and raw.get("common_name") == domains[0]:
        out["common_name"] = None  # written out then; implied by the first domain now
    if raw.get("common_name") and len(str(raw["common_name"])) > 64:
        out["common_name"] = None  # was left out of the certificate (too long for a CN) and is now refused
    if raw.get("ca_cert_pem"):
        given = {"ca_cert_pem": raw["ca_cert_pem"], "ca_private_key_pem": raw.get("ca_private_key_pem") or "",
                 "ca_chain_pem": raw.get("ca_chain_pem") or ""}
        identity = private_ca.PLUGIN.identity(private_ca.PrivateCaOrder(),
                                              private_ca.PrivateCaCredentials.model_construct(**given))
        # Inputs carried the CA's key (outputs never did): with it, they are today's credentials.
        credentials = given if raw.get("ca_private_key_pem") else None
        return {**out, "issuer_type": private_ca.KIND, "issuer_settings": {}, "issuer_credentials": credentials,
                "issuer_identity": identity}
    return {**out, "issuer_type": self_signed.KIND, "issuer_settings": {},
            "issuer_identity": self_signed.PLUGIN.identity(self_signed.SelfSignedOrder(), None)}


def binding(raw: dict[str, Any]) -> dict[str, Any]:
    """A binding's state in today's shape. Before nginx had modes, every nginx binding was a whole server block:
    state written then (settings without `mode`) is server mode, whatever today's default is."""
    settings = raw.get("target_settings")
    if raw.get("target_type") == nginx.KIND and isinstance(settings, dict) and "mode" not in settings:
        return {**raw, "target_settings": {**settings, "mode": "server"}}
    return raw
