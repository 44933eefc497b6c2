"""What every certificate resource publishes, whoever issued it (an issuer plug-in or an upload): the same
outputs, rendered the same way, so components and bindings never care where a certificate came from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

import pulumi
from cryptography import x509

from ._dynamic import CertplaneResource
from .core import certificates as x509util
from .core import formats, keys, renewal
from .core.clock import parse_rfc3339, rfc3339
from .core.validation import SECRET, State

Secret = Annotated[str | None, SECRET]


class IssuedOutputs(State):
    """The certificate, its key in every format asked for, and the facts the inventory and renewal read."""

    cert_pem: str | None = None
    chain_pem: str | None = None
    private_key_pem: Secret = None
    serial: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    issued_at: str | None = None  # when certplane issued it (not_before is backdated by the CA); None: older state
    renewal_time: str | None = None
    renewal_source: str | None = None
    ari_window_start: str | None = None
    ari_window_end: str | None = None
    fingerprint_sha256: str | None = None
    key_algorithm: str | None = None
    public_key_fingerprint_sha256: str | None = None
    issuer: str | None = None  # the issuer's distinguished name
    dns_names: list[str] | None = None
    pkcs12_base64: Secret = None
    jks_base64: Secret = None
    cert_der_base64: str | None = None
    keystore_password: Secret = None

    @property
    def issued(self) -> bool:
        return bool(self.cert_pem and self.not_before and self.not_after)

    def window(self) -> renewal.AriWindow | None:
        if self.ari_window_start and self.ari_window_end:
            return renewal.AriWindow(parse_rfc3339(self.ari_window_start), parse_rfc3339(self.ari_window_end))
        return None

    def lifetime(self, name: str, policy: renewal.RenewalPolicy, window: renewal.AriWindow | None = None, *,
                 reissue_before: dt.datetime | None = None) -> renewal.Lifetime | None:
        if not (self.not_before and self.not_after):
            return None
        return renewal.Lifetime(name, parse_rfc3339(self.not_before), parse_rfc3339(self.not_after), policy, window,
                                reissue_before=reissue_before,
                                issued_at=parse_rfc3339(self.issued_at) if self.issued_at else None)

    def leaf(self) -> x509.Certificate:
        return x509util.load_certificates(self.cert_pem or "")[0]

    def chain(self) -> list[x509.Certificate]:
        return x509util.load_certificates(self.chain_pem or "")

    def key(self) -> keys.PrivateKey:
        return keys.load_private_key(self.private_key_pem or "")


def render(key: keys.PrivateKey | None, leaf: x509.Certificate, chain: Sequence[x509.Certificate], *,
           formats_wanted: Sequence[str], password: str, policy: renewal.RenewalPolicy,
           window: renewal.AriWindow | None = None, name: str | None = None,
           issued_at: dt.datetime | None = None) -> dict[str, Any]:
    """Every IssuedOutputs field for a certificate and its key (None: a key certplane is never given, CSR mode;
    the facts about it come from the leaf). `name`: the certificate's, whose jitter moves its renewal time (None:
    no jitter, e.g. an upload certplane never renews); `issued_at`: when it was issued."""
    public = key if key is not None else leaf.public_key()
    renew_at = renewal.renewal_time(leaf.not_valid_before_utc, leaf.not_valid_after_utc, policy, window, name=name)
    rendered = formats.render(formats_wanted, key=key, leaf=leaf, chain=list(chain), password=password)
    del rendered["fullchain_pem"]  # cert_pem + chain_pem: published by the component, never stored twice
    return {
        "pkcs12_base64": None, "jks_base64": None, "cert_der_base64": None, **rendered,
        "serial": x509util.serial_hex(leaf),
        "not_before": rfc3339(leaf.not_valid_before_utc),
        "not_after": rfc3339(leaf.not_valid_after_utc),
        "issued_at": rfc3339(issued_at) if issued_at else None,
        "renewal_time": rfc3339(renew_at),
        "renewal_source": "ari" if window else "policy",
        "ari_window_start": rfc3339(window.start) if window else None,
        "ari_window_end": rfc3339(window.end) if window else None,
        "fingerprint_sha256": x509util.fingerprint_sha256(leaf),
        "key_algorithm": keys.spec_of(public).label,  # type: ignore[arg-type]
        "public_key_fingerprint_sha256": keys.public_key_fingerprint_sha256(public),  # type: ignore[arg-type]
        "issuer": leaf.issuer.rfc4514_string(),
        "dns_names": x509util.dns_names_of(leaf),
        "keystore_password": password,
    }


def keystore_password(configured: str | None, previous: str | None) -> str:
    """The configured password, else the one generated before (stable across renewals), else a new one."""
    return configured or previous or formats.generate_password()


def key_for_renewal(spec: keys.KeySpec, old_key: keys.PrivateKey | None, reuse: bool) -> keys.PrivateKey:
    """A new key, unless `reuse` and the old key is of the same kind (a changed algorithm always means new)."""
    if old_key is not None and reuse and keys.spec_of(old_key) == spec:
        return old_key
    return keys.generate_private_key(spec)


REISSUED = ("cert_pem", "chain_pem", "serial", "not_before", "not_after", "renewal_time",
            "fingerprint_sha256")  # what every re-issue changes (the key too, unless it is kept)


def in_place_diff(reasons: Sequence[str], rerender: bool, changed: Sequence[str], *, rekey: bool,
                  same_chain: bool = False, key_field: str = "private_key_pem") -> Any:
    """Certificates are never replaced: re-issue and re-render are updates of the same resource. Each reason is
    shown in `pulumi preview`; the diff names the inputs that changed and, for a re-issue, the certificate's
    own properties (`not_after`, `serial`, ... `private_key_pem` when a new key is made, `chain_pem` unless the
    issuer keeps its chain)."""
    from ._dynamic import PlannedDiff, note

    for reason in reasons:
        note(reason)
    details = {name: "update" for name in changed}
    if reasons:
        details.update({name: "update" for name in REISSUED if not (same_chain and name == "chain_pem")})
        if rekey:
            details[key_field] = "update"  # private_key_ref when the key is kept out of state
    return PlannedDiff(details=details, changes=bool(reasons) or rerender)


class IssuedCertificate(CertplaneResource):
    """Outputs every certificate resource has (typed for components; the provider's Outputs model is the list)."""

    cert_pem: pulumi.Output[str]
    chain_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    serial: pulumi.Output[str]
    not_before: pulumi.Output[str]
    not_after: pulumi.Output[str]
    renewal_time: pulumi.Output[str]
    renewal_source: pulumi.Output[str]
    fingerprint_sha256: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]
    public_key_fingerprint_sha256: pulumi.Output[str]
    issuer: pulumi.Output[str]
    dns_names: pulumi.Output[list[str]]
    pkcs12_base64: pulumi.Output[str | None]
    jks_base64: pulumi.Output[str | None]
    cert_der_base64: pulumi.Output[str | None]
    keystore_password: pulumi.Output[str]

    def __init__(self, name: str, *, opts: pulumi.ResourceOptions | None = None, **props: Any) -> None:
        super().__init__(name, {"name": name, **props}, opts)

    @property
    def fullchain_pem(self) -> pulumi.Output[str]:
        """The leaf, then its chain: what TLS servers send (derived, so state holds the PEMs once)."""
        return pulumi.Output.all(self.cert_pem, self.chain_pem).apply(lambda v: (v[0] or "") + (v[1] or ""))


__all__ = ["IssuedCertificate", "IssuedOutputs", "in_place_diff", "key_for_renewal", "keystore_password", "render"]
