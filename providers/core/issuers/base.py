"""The issuer seam: whoever signs a certificate (a CA the stack runs, the certificate's own key, an ACME CA, a
cloud CA) is an `Issuer` that turns a request and a key into a chain, declared by one `IssuerPlugin`.

A plug-in has up to three models, because an issuer's settings live in three places:
- `settings`: its block in `certplane:issuers` (everything the user configures);
- `order`: what each certificate carries to issue and renew on its own (validated again by the certificate's
  provider, so a certificate never depends on config it cannot see);
- `credentials`: what the issuer's own resources produce (a CA's key, an ACME account), when it has any.
Fields marked REISSUE in `order` re-issue the certificate when they change; SECRET ones are encrypted.

Optional capabilities are small protocols: `Revokes`, `AdvisesRenewal` on the issuer, `RunsCa` and
`HasAccount` on the settings (the stack provisions a CA hierarchy or an account for it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from cryptography import x509

from ..certificates import (CertificateRequest, check_csr_key, check_csr_request, csr_public_key,
                            request_pem)
from ..errors import InvalidInputError
from ..keys import KeySpec, PrivateKey, PublicKey
from ..keystore import KeyStorageField, KeyStorageSettings
from ..renewal import AriWindow, Instant, RenewalPolicy
from ..validation import Model, parse


class IssuerSettings(Model):
    """Base of an issuer's `certplane:issuers.<name>` block. Every kind takes `reissue_before` (an RFC 3339
    instant): re-issue this issuer's certificates issued before it (a certificate's own setting wins; the stack's
    `certplane:reissue_before` is the fallback), and `key_storage`: where its certificates keep their private
    keys (state, file, aws_secretsmanager; a certificate's own setting wins)."""

    reissue_before: Instant | None = None
    key_storage: KeyStorageField | None = None


class OrderSettings(Model):
    """Base of what a certificate carries about its issuer."""


@dataclass(frozen=True)
class IssueRequest:
    """What to issue: the request, and the key or a CSR (`csr`: its key is held elsewhere, e.g. an HSM; with
    `key` too when the key is given as well). A CSR is checked on construction against the request's names and
    the key (certificates.check_csr_request, check_csr_key), so no issuer signs a CSR for other names or a key
    that is not the one served."""

    name: str  # the certificate's name, for messages
    request: CertificateRequest
    key: PrivateKey | None  # None only with a CSR
    now: dt.datetime
    csr: x509.CertificateSigningRequest | None = None

    def __post_init__(self) -> None:
        if self.csr is None:
            if self.key is None:
                raise InvalidInputError("key_pem", "a certificate needs its private key or a CSR (csr_pem)")
            return
        check_csr_request(self.csr, self.request)
        if self.key is not None:
            check_csr_key(self.csr, self.key)

    @property
    def public_key(self) -> PublicKey:
        """The key the certificate is for: the private key's, else the CSR's (the same when both are given)."""
        if self.key is not None:
            return self.key.public_key()
        assert self.csr is not None  # __post_init__
        return csr_public_key(self.csr)

    def csr_pem(self, names: Sequence[str]) -> bytes:
        """The PEM CSR a CA that signs requests is sent: the given CSR as it is, else one of the key for `names`."""
        return request_pem(names, key=self.key, csr=self.csr)


@dataclass(frozen=True)
class Issued:
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # the leaf's issuer first, the root left out
    renewal_window: AriWindow | None = None
    notes: tuple[str, ...] = ()  # for the user: cleanup problems, fallbacks


class Issuer(Protocol):
    def issue(self, request: IssueRequest) -> Issued:
        """Sign or order a certificate for `request.public_key` (the CSR's, when one is given); raises
        CertplaneError (one line) on failure."""


@runtime_checkable
class Revokes(Protocol):
    def revoke(self, leaf: x509.Certificate) -> bool:
        """Revoke `leaf` if the certificate's order asks for it on destroy; False when nothing was done."""


@runtime_checkable
class AdvisesRenewal(Protocol):
    def renewal_window(self, leaf: x509.Certificate, *, quick: bool) -> AriWindow | None:
        """The CA's suggested renewal window (RFC 9773), None when it offers none. `quick`: bounded to a few
        seconds and allowed to fail (a preview must not hang on a slow CA)."""


@dataclass(frozen=True)
class CaLevel:
    """One certificate authority of a hierarchy the stack runs: a key, and the CA certificate for it, signed by
    the level before (the first is self-signed)."""

    suffix: str  # resource names: <issuer>-<suffix>-key, <issuer>-<suffix>
    key: KeySpec
    request: CertificateRequest
    renew: RenewalPolicy | None = None
    key_storage: KeyStorageSettings | None = None  # where this level's key is kept (None: state)


@runtime_checkable
class RunsCa(Protocol):
    """Settings of an issuer whose CA certificates and keys the stack creates itself; certificates are signed
    by the last level, with the levels above it as their chain (the root left out)."""

    def levels(self) -> Sequence[CaLevel]: ...


@dataclass(frozen=True)
class AccountRequest:
    directory_url: str
    email: str | None
    ca_bundle: str | None
    eab_kid: str | None
    eab_hmac_key: str | None = field(repr=False)
    key: KeySpec = field(default_factory=KeySpec)


@runtime_checkable
class HasAccount(Protocol):
    """Settings of an issuer that needs one account registered with the CA, shared by its certificates."""

    def account(self) -> AccountRequest: ...


S = TypeVar("S", bound=IssuerSettings)
O = TypeVar("O", bound=OrderSettings)
C = TypeVar("C", bound=Model)


class IssuerPlugin(Generic[S, O, C]):
    """One issuer kind. Subclasses set the class attributes and implement `build`; the rest has defaults."""

    kind: ClassVar[str]
    settings: type[S]
    order: type[O]
    credentials: type[C] | None = None
    retains_credentials: ClassVar[bool] = False  # kept in the certificate's state (e.g. to revoke on destroy)
    credentials_identify_issuer: ClassVar[bool] = False  # new credentials mean a new signer (a CA's certificate)
    chain_stable: ClassVar[bool] = False  # a renewal from the same issuer keeps the chain (a CA's own chain)
    needs_private_key: ClassVar[bool] = False  # signs with the certificate's own key: a CSR alone is not enough

    def order_for(self, settings: S, *, issuer: str, challenge: str | None) -> O:
        """What a certificate of this issuer carries. `issuer` is the config name (for messages); `challenge`
        the certificate's own choice, which only issuers that validate control can use."""
        if challenge:
            raise InvalidInputError("challenge", f"{self.kind} issuers validate no domain control: remove it")
        return parse(self.order, self.order_values(settings))

    def order_values(self, settings: S) -> dict[str, Any]:
        """The settings each certificate carries (validated by `order`); none by default."""
        return {}

    def check(self, order: O, request: CertificateRequest, key: KeySpec | None) -> None:
        """Refuse at preview what this issuer cannot issue (a key type, a name, a field it cannot honour)."""

    def check_csr(self, order: O, request: CertificateRequest, csr: x509.CertificateSigningRequest) -> None:
        """Refuse at preview a CSR given with the certificate that this issuer cannot sign (its key type). The
        rules every CSR follows (names, key) are certificates.check_csr_request and check_csr_key, not here."""

    def check_for(self, settings: S, request: CertificateRequest) -> None:
        """Refuse at preview what this issuer's own settings cannot honour for a certificate (a name outside a
        CA's name constraints). Runs on the stack config, where the issuer's settings are known."""

    def default_renewal(self, settings: S) -> RenewalPolicy | None:
        """The renewal policy of this issuer's certificates when they set none (None: two thirds)."""
        return None

    def default_validity_days(self, settings: S) -> int | None:
        """A certificate's lifetime when it sets none (None: the CA decides)."""
        return 90

    def check_credentials(self, credentials: C) -> None:
        """Refuse credentials that cannot sign (a key that does not match its CA certificate). Run by `check`,
        not on every decode: it parses key material."""

    def identity(self, order: O, credentials: C | None) -> str:
        """What names the signer: when it changes, certificates are re-issued (e.g. a CA certificate)."""
        return self.kind

    def build(self, order: O, credentials: C | None) -> Issuer:
        raise NotImplementedError


__all__ = ["AccountRequest", "AdvisesRenewal", "CaLevel", "HasAccount", "IssueRequest", "Issued", "Issuer",
           "IssuerPlugin", "IssuerSettings", "OrderSettings", "Revokes", "RunsCa"]
