"""private_ca: a root (and optionally a name-constrained intermediate) the stack runs itself, signing
certificates for internal names (what ACM Private CA, Vault PKI and step-ca do as services)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated

from cryptography import x509

from .. import keys
from ..certificates import (CertificateRequest, PermittedDomains, ValidityDays, check_key_pair, is_ca,
                            is_self_issued, load_certificates, name_attribute, outside_constraints,
                            sign_certificate)
from ..errors import InvalidInputError
from ..keys import KeySpec, KeySpecField
from ..renewal import RenewalPolicy
from ..validation import Model, SecretText, policy, whole_number
from .base import CaLevel, IssueRequest, Issued, IssuerPlugin, IssuerSettings, OrderSettings

KIND = "private_ca"


class NameConstraints(Model):
    permitted_dns_domains: PermittedDomains = ()


class PrivateCaSettings(IssuerSettings):
    """common_name, organization, key (default ECDSA P-384), validity_days (3650), intermediate (sign
    certificates with an intermediate under the root), intermediate_validity_days (half the root's),
    path_length, name_constraints (the DNS subtrees the CA may sign for), renew (of the CA certificates)."""

    common_name: Annotated[str, policy(name_attribute)]
    organization: Annotated[str | None, policy(name_attribute)] = None
    key: KeySpecField = KeySpec("ecdsa", curve="P-384")
    validity_days: ValidityDays = 3650
    intermediate: bool = False
    intermediate_validity_days: ValidityDays | None = None
    path_length: Annotated[int, whole_number(0, 16)] | None = None
    name_constraints: NameConstraints | None = None
    renew: RenewalPolicy | None = None  # of the CA certificates themselves

    def levels(self) -> Sequence[CaLevel]:
        constraints = self.name_constraints.permitted_dns_domains if self.name_constraints else ()
        root = CaLevel("root", self.key, CertificateRequest(
            common_name=self.common_name, organization=self.organization, is_ca=True,
            validity_days=self.validity_days, path_length=None if self.intermediate else self.path_length,
            permitted_dns_domains=() if self.intermediate else constraints), self.renew)
        if not self.intermediate:
            return (root,)
        intermediate = CaLevel("intermediate", self.key, CertificateRequest(
            common_name=f"{self.common_name} Intermediate"[:64], organization=self.organization, is_ca=True,
            path_length=0, validity_days=self.intermediate_validity_days or max(1, self.validity_days // 2),
            permitted_dns_domains=constraints), self.renew)
        return (root, intermediate)


class PrivateCaOrder(OrderSettings):
    pass


class PrivateCaCredentials(Model):
    """The signing CA's certificate and key, and the CAs above it (the root may be included; it is not served)."""

    ca_cert_pem: str
    ca_private_key_pem: SecretText
    ca_chain_pem: str = ""


def load(credentials: PrivateCaCredentials) -> tuple[x509.Certificate, keys.PrivateKey, tuple[x509.Certificate, ...]]:
    """(CA certificate, its key, the chain to serve after a leaf), each checked; raises InvalidInputError."""
    certs = load_certificates(credentials.ca_cert_pem)
    if not certs:
        raise InvalidInputError("ca_cert_pem", "is not a PEM certificate")
    ca_cert = certs[0]
    try:
        ca_key = keys.load_private_key(credentials.ca_private_key_pem)
    except InvalidInputError as err:
        raise InvalidInputError("ca_private_key_pem", err.reason) from None
    try:
        check_key_pair(ca_key, ca_cert)
    except InvalidInputError as err:
        raise err.within("ca_private_key_pem") from None
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
        cert = sign_certificate(request.request.template(), subject_public_key=request.key.public_key(),
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
        load(credentials)

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
