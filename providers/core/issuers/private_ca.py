"""private_ca: a root (and optionally a name-constrained intermediate) the stack runs itself, signing
certificates for internal names (what ACM Private CA, Vault PKI and step-ca do as services)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Annotated, Any

from cryptography import x509
from pydantic import model_validator

from .. import keys, keystore
from ..certificates import (CertificateRequest, PermittedDomains, ValidityDays, check_key_pair, is_ca,
                            is_self_issued, load_certificates, name_attribute, outside_constraints,
                            sign_certificate)
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
    """The signing CA's certificate and key, and the CAs above it (the root may be included; it is not served).
    The key is given (a secret), or named in a key store (`ca_key_ref` in `ca_key_storage`): read only when a
    certificate is signed, so a preview never needs a store that may be offline."""

    ca_cert_pem: str
    ca_private_key_pem: SecretText | None = None
    ca_key_ref: str | None = None
    ca_key_storage: dict[str, Any] | None = None
    ca_chain_pem: str = ""

    @model_validator(mode="after")
    def _one_key(self) -> PrivateCaCredentials:
        if (self.ca_private_key_pem is None) == (self.ca_key_ref is None):
            raise InvalidInputError("ca_private_key_pem", "give the CA's key, or its reference in a key store "
                                                          "(ca_key_ref), exactly one")
        return self


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


LoadedCa = tuple[x509.Certificate, keys.PrivateKey | None, tuple[x509.Certificate, ...]]


def load(credentials: PrivateCaCredentials, *, read_key: bool = True) -> LoadedCa:
    """(CA certificate, its key, the chain to serve after a leaf), each checked; raises InvalidInputError.
    `read_key` False: a key in a store is not read (the key None), a key given is still checked.

    A key given in the credentials is loaded and checked once per process for the same text: every leaf of a
    fleet carries the same CA, and the provider checks each of them (parsing and matching a P-384 key per leaf
    was a few percent of a no-op preview)."""
    if credentials.ca_key_ref is None:
        return _load_given(credentials.ca_cert_pem, credentials.ca_private_key_pem or "", credentials.ca_chain_pem)
    return _load(credentials, read_key=read_key)


@functools.lru_cache(maxsize=16)
def _load_given(ca_cert_pem: str, ca_private_key_pem: str, ca_chain_pem: str) -> LoadedCa:
    return _load(PrivateCaCredentials(ca_cert_pem=ca_cert_pem, ca_private_key_pem=ca_private_key_pem,
                                      ca_chain_pem=ca_chain_pem), read_key=True)


def _load(credentials: PrivateCaCredentials, *, read_key: bool) -> LoadedCa:
    certs = load_certificates(credentials.ca_cert_pem)
    if not certs:
        raise InvalidInputError("ca_cert_pem", "is not a PEM certificate")
    ca_cert = certs[0]
    ca_key = _signing_key(credentials) if read_key or credentials.ca_key_ref is None else None
    if ca_key is not None:
        try:
            check_key_pair(ca_key, ca_cert)
        except InvalidInputError as err:
            raise err.within("ca_key_ref" if credentials.ca_key_ref else "ca_private_key_pem") from None
    if not is_ca(ca_cert):
        raise InvalidInputError("ca_cert_pem", "is not a CA certificate (basicConstraints CA:FALSE)")
    above = [c for c in load_certificates(credentials.ca_chain_pem) if not is_self_issued(c)]
    served = ([] if is_self_issued(ca_cert) else [ca_cert]) + above
    return ca_cert, ca_key, tuple(served)


class PrivateCaIssuer:
    def __init__(self, credentials: PrivateCaCredentials) -> None:
        self.credentials = credentials

    def issue(self, request: IssueRequest) -> Issued:
        ca_cert, ca_key, chain = load(self.credentials)
        assert ca_key is not None, "load reads the key unless told not to"
        # With a CSR, only its public key (and the proof its signature gives) is used: the CA decides the subject
        # and extensions from the request, as for certplane's own keys.
        cert = sign_certificate(request.request.template(), subject_public_key=request.public_key,
                                signing_key=ca_key, issuer=ca_cert, now=request.now)
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
        """The signing CA certificate and the chain above it: a renewed or replaced CA re-issues its leaves."""
        if credentials is None:
            return KIND
        text = "\n".join(pem.strip() for pem in (credentials.ca_cert_pem, credentials.ca_chain_pem))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def build(self, order: PrivateCaOrder, credentials: PrivateCaCredentials | None) -> PrivateCaIssuer:
        if credentials is None:
            raise InvalidInputError("issuer_credentials", "a private CA certificate needs its CA's certificate and key")
        return PrivateCaIssuer(credentials)


PLUGIN = PrivateCaPlugin()
