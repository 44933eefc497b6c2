"""acme: any RFC 8555 directory (Let's Encrypt, ZeroSSL, Google Trust Services, step-ca, Pebble), through
certbot's `acme` library (providers/core/acme). One account per issuer; each certificate orders with DNS-01 or
HTTP-01, renews at the start of the CA's ACME Renewal Information window when it offers one, and is revoked on
destroy only when asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from acme.client import ClientV2
from cryptography import x509
from pydantic import AfterValidator, Field, field_validator, model_validator

from .. import dns, http01, keys
from ..dns import DnsSettingsField
from ..http01 import Http01SettingsField
from ..acme import ari, orders, revoke
from ..acme import client as acme_client
from ..acme.errors import RetryPolicy
from ..acme.ratelimits import RateLimits
from ..certificates import CertificateRequest, csr_public_key
from ..clock import real_now
from ..errors import CertplaneError, InvalidInputError
from ..keys import KeySpec, PrivateKey
from ..renewal import AriWindow, RenewalPolicy
from ..validation import REISSUE, SECRET, KeySpecField, Model, ProjectPath, SecretText, parse, policy, whole_number
from .base import AccountRequest, IssueRequest, Issued, IssuerPlugin, IssuerSettings, OrderSettings

KIND = "acme"
Challenge = Literal["dns-01", "http-01"]
DirectoryUrl = Annotated[str, policy(acme_client.check_directory_url)]  # http:// off loopback: refused since 2026-12
ARI_PROBE = RetryPolicy(attempts=1, max_total=5.0)  # a preview re-asks for the window only if it is quick
DEFAULT_ORDER_TIMEOUT = 120


def default_challenge(has_dns: bool) -> Challenge:
    """DNS-01 when the issuer has a DNS provider (it also covers wildcards), else HTTP-01."""
    return "dns-01" if has_dns else "http-01"


def _account_key(spec: KeySpec) -> KeySpec:
    return acme_client.check_key_spec(spec)


_NOT_A_KEY = (("-----BEGIN CERTIFICATE REQUEST-----", "a certificate request"),
              ("-----BEGIN CERTIFICATE-----", "a certificate"), ("PUBLIC KEY-----", "a public key"))


def load_account_key(pem: str) -> PrivateKey:
    """An existing account's private key (`account_key_pem`): unencrypted PEM (PKCS#8, PKCS#1 or SEC1) of an
    RSA (2048, 3072, 4096 bits) or ECDSA (P-256, P-384) key, what Let's Encrypt and the other CAs accept. Every
    refusal is one line that never echoes the text: it is key material."""
    if not pem.strip():
        raise InvalidInputError("", "is empty: give the PEM of the account's private key, as a secret")
    try:
        key = keys.load_private_key(pem)
    except InvalidInputError as err:
        if "encrypted" in err.reason:
            raise InvalidInputError("", "the account key is encrypted: give it unencrypted, as a secret (e.g. "
                                        "`openssl pkey -in KEY.pem`)") from None
        if "unsupported" in err.reason:
            raise InvalidInputError("", "is neither an RSA nor an ECDSA key: ACME account keys are one of "
                                        "those") from None
        other = next((what for marker, what in _NOT_A_KEY if marker in pem and "PRIVATE KEY-----" not in pem), None)
        raise InvalidInputError("", f"is {other}, not the account's private key" if other else
                                    "is not a PEM-encoded private key (PKCS#8, PKCS#1 or SEC1: give the "
                                    "account's private key, as a secret)") from None
    spec = keys.spec_of(key)
    if spec.algorithm == "ed25519":
        raise InvalidInputError("", "ACME CAs do not accept Ed25519 account keys: use an RSA or ECDSA key")
    try:
        KeySpec.parse(spec.as_dict(), field="")
    except InvalidInputError as err:
        raise InvalidInputError("", f"not an account key ACME CAs accept: {err.reason}") from None
    return key


def _account_key_pem(pem: str) -> str:
    load_account_key(pem)
    return pem


@dataclass(frozen=True)
class AcmeAccountRequest(AccountRequest):
    """An ACME account, and the existing key to use for it (`key_pem`), when one is given: an account shared
    with other stacks, which this stack never deactivates."""

    key_pem: str | None = field(default=None, repr=False)


class Eab(Model):
    """External Account Binding, from the CA's console: key id and HMAC key (base64url; give it as a secret)."""

    kid: str | None = None
    hmac_key: SecretText | None = None

    @model_validator(mode="after")
    def _both(self) -> Eab:
        try:
            acme_client.check_eab(self.kid, self.hmac_key)
        except InvalidInputError as err:
            raise InvalidInputError("", err.reason) from None  # already said of `eab`
        return self


class AcmeSettings(IssuerSettings):
    """directory_url; optional email, ca_bundle (trust for the directory's own TLS), eab, profile, dns (the
    DNS-01 provider), http01 (webroot or standalone), account_key (the spec of the key certplane generates for
    this stack's account; ECDSA P-256) or account_key_pem (an existing account's key, a secret: the account is
    shared, e.g. with other stacks, and never deactivated by this one), revoke_on_destroy, renew."""

    directory_url: DirectoryUrl
    email: Annotated[str | None, AfterValidator(acme_client.check_email)] = None
    ca_bundle: ProjectPath | None = None
    eab: Eab | None = None
    profile: str | None = Field(default=None, min_length=1)
    dns: DnsSettingsField | None = None
    http01: Http01SettingsField | None = None
    account_key: Annotated[KeySpecField, AfterValidator(_account_key)] = KeySpec("ecdsa", curve="P-256")
    account_key_pem: Annotated[SecretText, AfterValidator(_account_key_pem)] | None = None
    revoke_on_destroy: bool = False
    renew: RenewalPolicy | None = None  # of its certificates, when they set none (the CA's ARI window wins)
    rate_limits: RateLimits | None = None  # read by `certplane plan` only (docs/RATE-LIMITS.md)

    @model_validator(mode="after")
    def _one_account_key(self) -> AcmeSettings:
        if self.account_key_pem and "account_key" in self.model_fields_set:
            raise InvalidInputError("account_key", "give account_key (the key certplane generates) or "
                                                   "account_key_pem (an existing account's key), not both")
        return self

    def account(self) -> AcmeAccountRequest:
        """The account to register or, with `account_key_pem`, to use (the CA returns the key's existing
        account, RFC 8555 §7.3.1). `key` is then the existing key's spec."""
        key = keys.spec_of(load_account_key(self.account_key_pem)) if self.account_key_pem else self.account_key
        return AcmeAccountRequest(directory_url=self.directory_url, email=self.email, ca_bundle=self.ca_bundle,
                                  eab_kid=self.eab.kid if self.eab else None,
                                  eab_hmac_key=self.eab.hmac_key if self.eab else None, key=key,
                                  key_pem=self.account_key_pem)


class AcmeOrder(OrderSettings):
    """What one certificate needs to order and renew on its own."""

    directory_url: Annotated[DirectoryUrl, REISSUE]
    ca_bundle: ProjectPath | None = None
    profile: Annotated[str | None, REISSUE] = None
    challenge: Annotated[Challenge, REISSUE]
    dns: Annotated[DnsSettingsField | None, SECRET] = None  # may hold credentials
    http01: Http01SettingsField | None = None
    revoke_on_destroy: bool = False
    revoke_reason: str | int | None = None
    order_timeout_seconds: Annotated[int, whole_number(1, 3600)] | None = None

    @field_validator("revoke_reason")
    @classmethod
    def _reason(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            revoke.reason_code(value)
        return value

    @model_validator(mode="after")
    def _solver(self) -> AcmeOrder:
        if self.challenge == "dns-01" and self.dns is None:
            raise InvalidInputError("challenge", "dns-01 needs a DNS provider: set dns in the issuer's settings")
        if self.challenge == "http-01" and self.http01 is None:
            raise InvalidInputError("challenge", "http-01 needs http01 in the issuer's settings ({mode: webroot, "
                                                 "webroot: DIR} or {mode: standalone, listen: HOST:PORT})")
        return self


class AcmeCredentials(Model):
    """The issuer's account (providers/acme_account.py): its key signs every request."""

    account_key_pem: SecretText
    account_url: str = Field(min_length=1)


class AcmeIssuer:
    def __init__(self, order: AcmeOrder, credentials: AcmeCredentials) -> None:
        self.order, self.credentials = order, credentials

    def _client(self, retry: RetryPolicy | None = None) -> ClientV2:
        conn = acme_client.Connection(self.order.directory_url, self.order.ca_bundle)
        if retry is not None:
            conn = acme_client.Connection(conn.directory_url, conn.ca_bundle, retry=retry, timeout=5)
        return acme_client.shared_client(conn, self.credentials.account_key_pem, self.credentials.account_url)

    def _solver(self) -> Any:
        if self.order.challenge == "dns-01":
            return dns.make_solver(self.order.dns)
        return http01.make_solver(self.order.http01)

    def issue(self, request: IssueRequest) -> Issued:
        client = self._client()
        issued = orders.issue(client, list(request.request.domains), self._solver(), key=request.key,
                              csr=request.csr, profile=self.order.profile,
                              timeout=float(self.order.order_timeout_seconds or DEFAULT_ORDER_TIMEOUT))
        notes = list(issued.cleanup_errors)
        try:
            window = ari.renewal_window(client, issued.leaf)
        except CertplaneError as err:  # ARI is advisory: the renewal policy applies instead
            notes.append(f"no ACME renewal info ({err}); using the renewal policy")
            window = None
        return Issued(leaf=issued.leaf, chain=tuple(issued.chain), renewal_window=window, notes=tuple(notes))

    def renewal_window(self, leaf: x509.Certificate, *, quick: bool) -> AriWindow | None:
        return ari.renewal_window(self._client(ARI_PROBE if quick else None), leaf)

    def revoke(self, leaf: x509.Certificate) -> bool:
        if not self.order.revoke_on_destroy or leaf.not_valid_after_utc <= real_now():
            return False  # not asked, or expired: nothing left to revoke
        return revoke.revoke(self._client(), leaf, self.order.revoke_reason or "cessationOfOperation")


class AcmePlugin(IssuerPlugin[AcmeSettings, AcmeOrder, AcmeCredentials]):
    kind = KIND
    settings = AcmeSettings
    order = AcmeOrder
    credentials = AcmeCredentials
    retains_credentials = True  # the account key revokes on destroy

    def order_for(self, settings: AcmeSettings, *, issuer: str, challenge: str | None) -> AcmeOrder:
        """The solver settings of the certificate's challenge only: an HTTP-01 certificate carries no DNS
        credentials."""
        chosen = challenge or default_challenge(settings.dns is not None)
        return parse(AcmeOrder, {
            "directory_url": settings.directory_url, "ca_bundle": settings.ca_bundle, "profile": settings.profile,
            "challenge": chosen, "dns": settings.dns if chosen == "dns-01" else None,
            "http01": settings.http01 if chosen == "http-01" else None,
            "revoke_on_destroy": settings.revoke_on_destroy})

    def check(self, order: AcmeOrder, request: CertificateRequest, key: KeySpec | None) -> None:
        if key is not None:
            try:
                acme_client.check_key_spec(key)
            except InvalidInputError as err:
                raise err.within("key") from None
        if not request.domains:
            raise InvalidInputError("domains", "an ACME certificate needs at least one domain")
        for name in request.domains:
            if name.startswith("*.") and order.challenge != "dns-01":
                raise InvalidInputError("challenge", f"wildcard {name} can only be validated with dns-01")
        if request.ip_addresses:
            raise InvalidInputError("ip_addresses", "not supported for ACME certificates yet")
        if request.validity_days is not None:
            raise InvalidInputError("validity_days", "ACME CAs set the lifetime themselves: choose it with the "
                                                     "issuer's profile")
        if request.client_auth or request.is_ca:
            raise InvalidInputError("client_auth" if request.client_auth else "is_ca",
                                    "ACME CAs issue TLS server certificates only")

    def check_csr(self, order: AcmeOrder, request: CertificateRequest, csr: x509.CertificateSigningRequest) -> None:
        """The CSR's key is one ACME CAs accept (no Ed25519), as `check` asks of a key certplane generates."""
        try:
            acme_client.check_key_spec(keys.spec_of(csr_public_key(csr)))
        except InvalidInputError as err:
            raise InvalidInputError("csr_pem", err.reason) from None

    def default_validity_days(self, settings: AcmeSettings) -> int | None:
        return None

    def default_renewal(self, settings: AcmeSettings) -> RenewalPolicy | None:
        return settings.renew

    def check_credentials(self, credentials: AcmeCredentials) -> None:
        try:
            acme_client.jwk_for(keys.load_private_key(credentials.account_key_pem))
        except InvalidInputError as err:
            raise InvalidInputError("account_key_pem", err.reason) from None

    def build(self, order: AcmeOrder, credentials: AcmeCredentials | None) -> AcmeIssuer:
        if credentials is None:
            raise InvalidInputError("issuer_credentials", "an ACME certificate needs its issuer's account")
        return AcmeIssuer(order, credentials)


PLUGIN = AcmePlugin()
