"""private_ca: a root (and optionally a name-constrained intermediate) the stack runs itself, signing
certificates for internal names (what ACM Private CA, Vault PKI and step-ca do as services)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from typing import Annotated, Any

from cryptography import x509
from pydantic import model_validator

from .. import keys, keystore
from ..certificates import (CertificateRequest, PermittedDomains, Signer, ValidityDays, check_key_pair, is_ca,
                            is_self_issued, load_certificates, name_attribute, outside_constraints,
                            sign_certificate)
from ..clock import parse_rfc3339
from ..pem import chain_to_pem
from ..errors import InvalidInputError
from ..keys import KeySpec
from ..keystore import KeyStorageField
from ..renewal import RenewalPolicy
from ..validation import KeySpecField, Model, SecretText, policy, whole_number
from .base import CaLevel, IssueRequest, Issued, IssuerPlugin, IssuerSettings, OrderSettings

KIND = "private_ca"


class NameConstraints(Model):
    permitted_dns_domains: PermittedDomains = ()


class PrivateCaSettings(IssuerSettings):
    """common_name, organization, key (default ECDSA P-384), validity_days (3650), intermediate (sign
    certificates with an intermediate under the root), intermediate_validity_days (half the root's),
    path_length, name_constraints (the DNS subtrees the CA may sign for), renew (of the CA certificates),
    root_key_storage and intermediate_key_storage (where each CA level's key is kept: a root held offline, on a
    removable drive, is needed only when the intermediate is signed; `key_storage` is its certificates')."""

    common_name: Annotated[str, policy(name_attribute)]
    organization: Annotated[str | None, policy(name_attribute)] = None
    key: KeySpecField = KeySpec("ecdsa", curve="P-384")
    validity_days: ValidityDays = 3650
    intermediate: bool = False
    intermediate_validity_days: ValidityDays | None = None
    path_length: Annotated[int, whole_number(0, 16)] | None = None
    name_constraints: NameConstraints | None = None
    renew: RenewalPolicy | None = None  # of the CA certificates themselves
    root_key_storage: KeyStorageField | None = None
    intermediate_key_storage: KeyStorageField | None = None

    @model_validator(mode="after")
    def _storage_of_levels(self) -> PrivateCaSettings:
        if self.intermediate_key_storage is not None and not self.intermediate:
            raise InvalidInputError("intermediate_key_storage", "this CA has no intermediate (intermediate: true "
                                                                "adds one)")
        return self

    def levels(self) -> Sequence[CaLevel]:
        constraints = self.name_constraints.permitted_dns_domains if self.name_constraints else ()
        root = CaLevel("root", self.key, CertificateRequest(
            common_name=self.common_name, organization=self.organization, is_ca=True,
            validity_days=self.validity_days, path_length=None if self.intermediate else self.path_length,
            permitted_dns_domains=() if self.intermediate else constraints), self.renew, self.root_key_storage)
        if not self.intermediate:
            return (root,)
        intermediate = CaLevel("intermediate", self.key, CertificateRequest(
            common_name=f"{self.common_name} Intermediate"[:64], organization=self.organization, is_ca=True,
            path_length=0, validity_days=self.intermediate_validity_days or max(1, self.validity_days // 2),
            permitted_dns_domains=constraints), self.renew, self.intermediate_key_storage)
        return (root, intermediate)


class PrivateCaOrder(OrderSettings):
    pass


class PrivateCaCredentials(Model):
    """The signing CA and its key, in one of two forms.

    - **Signer** (what the stack's own CA gives each of its certificates, `signer_credentials`): the CA's subject
      (`ca_name`, RFC 4514), key identifier (`ca_key_id`, hex), expiry (`ca_not_after`) and identity
      (`ca_identity`), and the chain a certificate it signs is served with (`served_chain_pem`). That is all
      signing needs: the CA's own certificate is not copied into every certificate's state (it was ~0.7 KB of
      each one's encrypted inputs).
    - **Certificate**: the CA's certificate (`ca_cert_pem`) and the CAs above it (`ca_chain_pem`; the root may be
      included, it is not served), as state written before and a CA given by hand have it.

    The key is given (a secret), or named in a key store (`ca_key_ref` in `ca_key_storage`): read only when a
    certificate is signed, so a preview never needs a store that may be offline."""

    ca_cert_pem: str | None = None
    ca_chain_pem: str = ""
    ca_name: str | None = None
    ca_key_id: str | None = None
    ca_not_after: str | None = None
    ca_identity: str | None = None
    served_chain_pem: str = ""
    ca_private_key_pem: SecretText | None = None
    ca_key_ref: str | None = None
    ca_key_storage: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> PrivateCaCredentials:
        if (self.ca_private_key_pem is None) == (self.ca_key_ref is None):
            raise InvalidInputError("ca_private_key_pem", "give the CA's key, or its reference in a key store "
                                                          "(ca_key_ref), exactly one")
        signer = (self.ca_name, self.ca_key_id, self.ca_not_after, self.ca_identity)
        if self.ca_cert_pem is None and None in signer:
            missing = [n for n, v in zip(SIGNER_FIELDS, signer) if v is None]
            raise InvalidInputError(missing[0], "is required: give the CA as a signer (ca_name, ca_key_id, "
                                                "ca_not_after, ca_identity) or by its certificate (ca_cert_pem)")
        if self.ca_cert_pem is not None and any(v is not None for v in signer):
            raise InvalidInputError("ca_cert_pem", "give the CA once: by its certificate, or as a signer")
        return self


SIGNER_FIELDS = ("ca_name", "ca_key_id", "ca_not_after", "ca_identity")


def identity_of(ca_cert_pem: str, ca_chain_pem: str) -> str:
    """A CA's identity: its certificate and the chain above it. A renewed or replaced CA re-issues its leaves."""
    text = "\n".join(pem.strip() for pem in (ca_cert_pem, ca_chain_pem))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def signer_credentials(ca_cert_pem: str, ca_chain_pem: str) -> dict[str, str]:
    """The signer form of a CA's credentials (without its key), from its certificate and the chain above it:
    what the CA hierarchy (components/private_ca.py) gives every certificate it signs. A subject that RFC 4514
    text would not give back byte for byte (a string type other than the default for its attribute) keeps the
    certificate form: a leaf's issuer name must encode exactly as its CA's subject, or clients cannot build the
    chain. So does a certificate that is not a usable CA's: the provider's check then says what is wrong with it,
    in one line naming the field, where this (run by the program) would end the program with a traceback."""
    certificate_form = {"ca_cert_pem": ca_cert_pem, "ca_chain_pem": ca_chain_pem}
    try:
        _, signer, chain = _served(ca_cert_pem, ca_chain_pem)
    except InvalidInputError:
        return certificate_form
    name = signer.subject.rfc4514_string()
    if x509.Name.from_rfc4514_string(name).public_bytes() != signer.subject.public_bytes():
        return certificate_form
    return {"ca_name": name, "ca_key_id": signer.key_id.hex(),
            "ca_not_after": signer.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ca_identity": identity_of(ca_cert_pem, ca_chain_pem), "served_chain_pem": chain_to_pem(list(chain))}


def _signing_key(credentials: PrivateCaCredentials) -> keys.PrivateKey:
    if credentials.ca_key_ref is not None:
        store = keystore.build(keystore.parse_settings(credentials.ca_key_storage))
        if store is None:
            raise InvalidInputError("ca_key_storage", "the CA's key is kept by reference: name its key store")
        return store.get(credentials.ca_key_ref)
    try:
        return keys.load_private_key(credentials.ca_private_key_pem or "")
    except InvalidInputError as err:
        raise InvalidInputError("ca_private_key_pem", err.reason) from None


LoadedCa = tuple[Signer, keys.PrivateKey | None, tuple[x509.Certificate, ...]]


def load(credentials: PrivateCaCredentials, *, read_key: bool = True) -> LoadedCa:
    """(what signing needs of the CA, its key, the chain to serve after a leaf), each checked; raises
    InvalidInputError. `read_key` False: a key in a store is not read (the key None), a key given is still checked
    against the CA.

    A key given in the credentials is loaded and checked once per process for the same credentials: every leaf
    of a fleet carries the same CA, and the provider checks each of them (parsing and matching a P-384 key per
    leaf was a few percent of a no-op preview)."""
    if credentials.ca_key_ref is None:
        return _load_given(tuple(getattr(credentials, name) for name in _GIVEN_FIELDS))
    return _load(credentials, read_key=read_key)


_GIVEN_FIELDS = tuple(name for name in PrivateCaCredentials.model_fields if name != "ca_key_storage")
"""A CA whose key is given is all text (`ca_key_storage` is only for a key kept by reference): its fields, in
order, are the cache key."""


@functools.lru_cache(maxsize=16)
def _load_given(fields: tuple[str | None, ...]) -> LoadedCa:
    return _load(PrivateCaCredentials.model_validate(dict(zip(_GIVEN_FIELDS, fields))), read_key=True)


def _load(credentials: PrivateCaCredentials, *, read_key: bool) -> LoadedCa:
    key_field = "ca_key_ref" if credentials.ca_key_ref else "ca_private_key_pem"
    ca_key = _signing_key(credentials) if read_key or credentials.ca_key_ref is None else None
    if credentials.ca_cert_pem is not None:
        ca_cert, signer, served = _served(credentials.ca_cert_pem, credentials.ca_chain_pem)
        if ca_key is not None:
            try:
                check_key_pair(ca_key, ca_cert)
            except InvalidInputError as err:
                raise err.within(key_field) from None
        return signer, ca_key, served
    signer = _signer(credentials)
    if ca_key is not None and not _signs_for(ca_key, signer):
        raise InvalidInputError(key_field, "is not the CA's key (its public key does not have the CA's key "
                                           "identifier)")
    return signer, ca_key, tuple(load_certificates(credentials.served_chain_pem))


def _served(ca_cert_pem: str,
            ca_chain_pem: str) -> tuple[x509.Certificate, Signer, tuple[x509.Certificate, ...]]:
    """The CA certificate, checked, what signing needs of it, and the chain a certificate it signs is served with."""
    certs = load_certificates(ca_cert_pem)
    if not certs:
        raise InvalidInputError("ca_cert_pem", "is not a PEM certificate")
    ca_cert = certs[0]
    if not is_ca(ca_cert):
        raise InvalidInputError("ca_cert_pem", "is not a CA certificate (basicConstraints CA:FALSE)")
    try:
        signer = Signer.of(ca_cert)
    except x509.ExtensionNotFound:
        raise InvalidInputError("ca_cert_pem", "has no subject key identifier (certificates it signs could not "
                                               "name it)") from None
    above = [c for c in load_certificates(ca_chain_pem) if not is_self_issued(c)]
    return ca_cert, signer, tuple(([] if is_self_issued(ca_cert) else [ca_cert]) + above)


def _signer(credentials: PrivateCaCredentials) -> Signer:
    try:
        subject = x509.Name.from_rfc4514_string(credentials.ca_name or "")
    except ValueError:
        raise InvalidInputError("ca_name", "is not an RFC 4514 name") from None
    try:
        key_id = bytes.fromhex(credentials.ca_key_id or "")
    except ValueError:
        raise InvalidInputError("ca_key_id", "is not hex") from None
    if not key_id:
        raise InvalidInputError("ca_key_id", "is empty")
    try:
        not_after = parse_rfc3339(credentials.ca_not_after or "")
    except ValueError:
        raise InvalidInputError("ca_not_after", "is not an RFC 3339 instant") from None
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", credentials.ca_identity or ""):
        raise InvalidInputError("ca_identity", "is not sha256:<64 hex digits>")
    return Signer(subject, key_id, not_after)


def _signs_for(key: keys.PrivateKey, signer: Signer) -> bool:
    """The key is the CA's: its public key has the identifier the CA's certificate carries (certplane's CAs
    derive it from the public key, RFC 5280 §4.2.1.2 method 1, as `x509.SubjectKeyIdentifier.from_public_key`)."""
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest == signer.key_id


class PrivateCaIssuer:
    def __init__(self, credentials: PrivateCaCredentials) -> None:
        self.credentials = credentials

    def issue(self, request: IssueRequest) -> Issued:
        signer, ca_key, chain = load(self.credentials)
        assert ca_key is not None, "load reads the key unless told not to"
        # With a CSR, only its public key (and the proof its signature gives) is used: the CA decides the subject
        # and extensions from the request, as for certplane's own keys.
        cert = sign_certificate(request.request.template(), subject_public_key=request.public_key,
                                signing_key=ca_key, issuer=signer, now=request.now)
        return Issued(leaf=cert, chain=chain)


class PrivateCaPlugin(IssuerPlugin[PrivateCaSettings, PrivateCaOrder, PrivateCaCredentials]):
    kind = KIND
    settings = PrivateCaSettings
    order = PrivateCaOrder
    credentials = PrivateCaCredentials
    credentials_identify_issuer = True
    chain_stable = True

    def default_validity_days(self, settings: PrivateCaSettings) -> int | None:
        return min(90, settings.validity_days)

    def check_for(self, settings: PrivateCaSettings, request: CertificateRequest) -> None:
        permitted = settings.name_constraints.permitted_dns_domains if settings.name_constraints else ()
        outside = outside_constraints(request.domains, permitted)
        if outside:
            raise InvalidInputError("domains", f"{', '.join(outside)} outside the issuer's name constraints "
                                               f"({', '.join(permitted)}): clients reject such a chain")

    def check_credentials(self, credentials: PrivateCaCredentials) -> None:
        load(credentials, read_key=False)  # a root held offline is read only when it signs

    def identity(self, order: PrivateCaOrder, credentials: PrivateCaCredentials | None) -> str:
        """The signing CA certificate and the chain above it (`identity_of`; a signer carries it): a renewed or
        replaced CA re-issues its leaves."""
        if credentials is None:
            return KIND
        if credentials.ca_cert_pem is None:
            return credentials.ca_identity or ""
        return identity_of(credentials.ca_cert_pem, credentials.ca_chain_pem)

    def build(self, order: PrivateCaOrder, credentials: PrivateCaCredentials | None) -> PrivateCaIssuer:
        if credentials is None:
            raise InvalidInputError("issuer_credentials", "a private CA certificate needs its CA's certificate and key")
        return PrivateCaIssuer(credentials)


PLUGIN = PrivateCaPlugin()
