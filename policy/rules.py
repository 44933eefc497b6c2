"""certplane's policy rules, pure: each takes one certificate as the engine shows it to a policy pack (its
resource inputs) and the rule's settings, and returns what is wrong, one sentence per problem. The pack
(`__main__.py`) runs them in `pulumi preview`/`up` and `./certplane plan`; their tests run them directly.

Checked: `pulumi-python:dynamic/certplane:Certificate`, `...:UploadedCertificate`, and a CA's `...:PrivateKey`
(key strength only). The rules about tags, issuers and plain secrets read `policy_facts`, which only the
certificates of `certplane:certificates` carry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from providers.core import certificates as x509util
from providers.core import clock
from providers.core.renewal import window_too_long

CERTIFICATE = "pulumi-python:dynamic/certplane:Certificate"
UPLOADED = "pulumi-python:dynamic/certplane:UploadedCertificate"
PRIVATE_KEY = "pulumi-python:dynamic/certplane:PrivateKey"  # a CA's key
CHECKED = (CERTIFICATE, UPLOADED, PRIVATE_KEY)

# CA/Browser Forum ballot SC-081: the longest lifetime a publicly trusted TLS certificate may have, by the
# date it is issued (398 days before the first step).
SC081 = (("2026-03-15", 200), ("2027-03-15", 100), ("2029-03-15", 47))
SC081_BEFORE = 398


@dataclass(frozen=True)
class Subject:
    """One certificate, from its resource inputs."""

    name: str
    uploaded: bool
    domains: tuple[str, ...] = ()
    key: Mapping[str, Any] = field(default_factory=dict)  # {algorithm, size | curve} (issued certificates)
    leaf: x509.Certificate | None = None  # an upload's certificate
    is_ca: bool = False
    validity_days: int | None = None
    renew: Mapping[str, Any] = field(default_factory=dict)
    issuer_type: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)  # issuer (its name), tags, plain_secrets

    @property
    def issuer(self) -> str:
        return str(self.facts.get("issuer") or ("upload" if self.uploaded else self.issuer_type))

    @property
    def managed(self) -> bool:
        """A certificate of `certplane:certificates` (not a CA's own certificate)."""
        return bool(self.facts)

    @property
    def lifetime_days(self) -> float | None:
        if self.leaf is not None:
            return (self.leaf.not_valid_after_utc - self.leaf.not_valid_before_utc).total_seconds() / 86400
        return float(self.validity_days) if self.validity_days else None


def subject(resource_type: str, name: str, props: Mapping[str, Any]) -> Subject | None:
    if resource_type not in CHECKED:
        return None
    if resource_type == PRIVATE_KEY:
        return Subject(name=name, uploaded=False, key={k: props.get(k) for k in ("algorithm", "size", "curve")},
                       is_ca=True)
    uploaded = resource_type == UPLOADED
    leaf = None
    if uploaded:
        certs = x509util.load_certificates(str(props.get("certificate_pem") or ""))
        leaf = certs[0] if certs else None
    domains = tuple(str(d) for d in (props.get("domains") or ()))
    if leaf is not None and not domains:
        domains = tuple(x509util.dns_names_of(leaf))
    return Subject(name=str(props.get("name") or name), uploaded=uploaded, domains=domains,
                   key=dict(props.get("key") or {}), leaf=leaf, is_ca=bool(props.get("is_ca")),
                   validity_days=props.get("validity_days"), renew=dict(props.get("renew") or {}),
                   issuer_type=str(props.get("issuer_type") or ""), facts=dict(props.get("policy_facts") or {}))


# --- the rules ------------------------------------------------------------------------------------------------

def key_strength(cert: Subject, config: Mapping[str, Any]) -> list[str]:
    min_rsa = int(config.get("min_rsa_bits", 2048))
    curves = [str(c) for c in config.get("allowed_curves", ("P-256", "P-384"))]
    algorithm, size, curve = _key_of(cert)
    if algorithm == "rsa" and size is not None and size < min_rsa:
        return [f"{cert.name}: an RSA key of {size} bits is under the minimum of {min_rsa}"]
    if algorithm == "ecdsa" and curve is not None and curve not in curves:
        return [f"{cert.name}: ECDSA curve {curve} is not allowed (allowed: {', '.join(curves)})"]
    if algorithm == "ed25519" and not config.get("allow_ed25519", True):
        return [f"{cert.name}: Ed25519 keys are not allowed here"]
    return []


def allowed_issuers(cert: Subject, config: Mapping[str, Any]) -> list[str]:
    if not cert.managed:
        return []
    env = str(cert.facts.get("tags", {}).get("env") or "")
    by_env: Mapping[str, Sequence[str]] = config.get("by_env") or {}
    allowed = by_env.get(env)
    if allowed is None or cert.issuer in allowed:
        return []
    return [f"{cert.name}: issuer {cert.issuer} is not allowed for env {env} (allowed: {', '.join(allowed)})"]


def public_max_validity(cert: Subject, config: Mapping[str, Any], now: dt.datetime | None = None) -> list[str]:
    public = set(config.get("public_issuers") or ()) | set(config.get("public_issuer_types") or ("acme",))
    if not cert.managed or not ({cert.issuer, cert.issuer_type} & public):
        return []
    days = cert.lifetime_days
    if days is None:  # the CA sets it (ACME): it follows the same ballot
        return []
    issued = cert.leaf.not_valid_before_utc if cert.leaf is not None else (now or clock.now())
    limit = max_public_days(issued)
    if days > limit + 1e-6:
        return [f"{cert.name}: a lifetime of {days:g} days is over the {limit} days a public certificate issued on "
                f"{issued:%Y-%m-%d} may have (CA/Browser Forum SC-081)"]
    return []


def max_public_days(at: dt.datetime) -> int:
    limit = SC081_BEFORE
    for since, days in SC081:
        if at >= dt.datetime.fromisoformat(since).replace(tzinfo=dt.timezone.utc):
            limit = days
    return limit


def wildcard_zones(cert: Subject, config: Mapping[str, Any]) -> list[str]:
    zones = [str(z).lower().rstrip(".") for z in config.get("zones") or ()]
    out = []
    for name in cert.domains:
        if not name.startswith("*."):
            continue
        base = name[2:].lower().rstrip(".")
        if not any(base == z or base.endswith("." + z) for z in zones):
            out.append(f"{cert.name}: wildcard {name} is outside the zones that allow wildcards "
                       f"({', '.join(zones) or 'none'})")
    return out


def required_tags(cert: Subject, config: Mapping[str, Any]) -> list[str]:
    if not cert.managed:
        return []
    tags = cert.facts.get("tags") or {}
    missing = [t for t in config.get("tags", ("owner", "env")) if not str(tags.get(t) or "").strip()]
    return [f"{cert.name}: missing tag(s) {', '.join(missing)}"] if missing else []


def renewal_window(cert: Subject, config: Mapping[str, Any]) -> list[str]:
    before = cert.renew.get("before_days")
    reason = window_too_long(float(before) if before is not None else None, cert.lifetime_days)
    return [f"{cert.name}: {reason}"] if reason else []


def plain_secrets(cert: Subject, config: Mapping[str, Any]) -> list[str]:
    return [f"{cert.name}: {path} is in the stack file in plain text: set it with `pulumi config set --path "
            f"--secret {path.split(':', 1)[1] if ':' in path else path}`"
            for path in cert.facts.get("plain_secrets") or ()]


RULES: dict[str, tuple[str, Callable[[Subject, Mapping[str, Any]], list[str]]]] = {
    "key-strength": ("Keys at least as strong as the minimum (RSA bits, ECDSA curves)", key_strength),
    "allowed-issuers": ("Only the issuers allowed for a certificate's env tag", allowed_issuers),
    "public-max-validity": ("Public certificates no longer than CA/Browser Forum SC-081 allows on the day",
                            public_max_validity),
    "wildcard-zones": ("Wildcards only in the zones that allow them", wildcard_zones),
    "required-tags": ("Every certificate carries the required tags (owner, env)", required_tags),
    "renewal-window": ("A renewal window shorter than the lifetime", renewal_window),
    "plain-secrets": ("No private key or credential in the stack file in plain text", plain_secrets),
}


def _key_of(cert: Subject) -> tuple[str, int | None, str | None]:
    if cert.leaf is not None:
        public = cert.leaf.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            return "rsa", public.key_size, None
        if isinstance(public, ec.EllipticCurvePublicKey):
            return "ecdsa", None, {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
                public.curve.name, public.curve.name)
        if isinstance(public, ed25519.Ed25519PublicKey):
            return "ed25519", None, None
        return "other", None, None
    algorithm = str(cert.key.get("algorithm") or "")
    size = cert.key.get("size")
    return algorithm, int(size) if size is not None else None, cert.key.get("curve")
