"""X.509 certificates: what to ask for (CertificateRequest), signing (self-signed and by a CA), PEM handling
and chain verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import AfterValidator, model_validator

from .errors import InvalidInputError
# Reading certificates lives in .pem (no pydantic: the CLI's start-up); re-exported for everything else.
from .pem import chain_to_pem as chain_to_pem
from .pem import covers as covers
from .pem import describe as describe
from .pem import verified_bundle_digest as verified_bundle_digest
from .net import dns_match as dns_match
from .pem import dns_names_of as dns_names_of
from .pem import fingerprint_of_pem as fingerprint_of_pem
from .pem import fingerprint_sha256 as fingerprint_sha256
from .pem import is_ca as is_ca
from .pem import is_self_issued as is_self_issued
from .pem import load_certificates as load_certificates
from .pem import pem_blocks as pem_blocks
from .pem import same_fingerprint as same_fingerprint
from .pem import serial_hex as serial_hex
from .pem import signed_by as signed_by
from .pem import subject_alt_names as subject_alt_names
from .pem import to_pem as to_pem
from .keys import PrivateKey, PublicKey, same_public_key, signature_hash
from .validation import Model, policy, whole_number

BACKDATE = dt.timedelta(minutes=5)  # tolerate clock skew between issuer and relying parties
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class CertificateTemplate:
    """What to put in a certificate: a plain value, built from a validated CertificateRequest."""

    common_name: str | None = None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    organization: str | None = None
    validity_days: int = 90
    is_ca: bool = False
    path_length: int | None = None
    client_auth: bool = False
    permitted_dns_domains: tuple[str, ...] = field(default=())


def check_dns_names(names: Sequence[str]) -> tuple[str, ...]:
    """Every name valid, none listed twice (case does not make two names)."""
    seen: set[str] = set()
    for name in names:
        check_dns_name(name, "")
        if name.lower() in seen:
            raise InvalidInputError("", f"{name!r} is listed twice")
        seen.add(name.lower())
    return tuple(names)


def check_ip_addresses(values: Sequence[str]) -> tuple[str, ...]:
    for ip in values:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidInputError("", f"{ip!r} is not an IP address") from None
    return tuple(values)


def check_name_constraints(names: Sequence[str]) -> tuple[str, ...]:
    """Permitted DNS subtrees: domain names, optionally with a leading dot (subdomains only)."""
    for name in names:
        check_dns_name(name.lstrip("."), "")
    return tuple(names)


def name_attribute(value: str | None) -> str | None:
    """RFC 5280 caps a common name or organization at 64 characters; clients reject longer ones."""
    if value is not None and not 1 <= len(value) <= 64:
        raise InvalidInputError("", "must be 1 to 64 characters (RFC 5280)")
    return value


def names_clients_match(names: Sequence[str]) -> tuple[str, ...]:
    """What a TLS client would not match, refused at preview: a trailing dot (RFC 5280 dNSNames have none;
    clients compare the name as typed) and an IP address given as a DNS name (clients match an IP address only
    against an iPAddress SAN)."""
    for name in names:
        if name.endswith("."):
            raise InvalidInputError("", f"{name!r} ends with a dot: certificates name {name.rstrip('.')!r}")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            continue
        raise InvalidInputError("", f"{name!r} is an IP address: list it under ip_addresses (clients match an IP "
                                    "only against an IP address in the certificate)")
    return tuple(names)


def outside_constraints(names: Sequence[str], permitted: Sequence[str]) -> list[str]:
    """The names a CA constrained to the `permitted` DNS subtrees cannot sign for (RFC 5280 4.2.1.10: `example.com`
    permits it and its subdomains, `.example.com` only subdomains). Clients reject such a chain."""
    def inside(name: str, subtree: str) -> bool:
        name, subtree = name.lower().lstrip("*."), subtree.lower()
        if subtree.startswith("."):
            return name.endswith(subtree)
        return name == subtree or name.endswith("." + subtree)

    return [n for n in names if permitted and not any(inside(n, s) for s in permitted)]


DnsNames = Annotated[tuple[str, ...], AfterValidator(check_dns_names), policy(names_clients_match)]
IpAddresses = Annotated[tuple[str, ...], AfterValidator(check_ip_addresses)]
PermittedDomains = Annotated[tuple[str, ...], AfterValidator(check_name_constraints)]
ValidityDays = Annotated[int, whole_number(1, 36500, "days")]


class CertificateRequest(Model):
    """What a certificate should say: its names, lifetime and uses. Validated the same way in stack config
    and in every certificate provider; the issuer decides how (and whether) it can honour each field."""

    domains: DnsNames = ()
    ip_addresses: IpAddresses = ()
    common_name: Annotated[str | None, policy(name_attribute)] = None
    organization: Annotated[str | None, policy(name_attribute)] = None
    validity_days: ValidityDays | None = None
    client_auth: bool = False
    is_ca: bool = False
    path_length: Annotated[int, whole_number(0, 16)] | None = None
    permitted_dns_domains: PermittedDomains = ()

    @model_validator(mode="after")
    def _subject(self) -> CertificateRequest:
        check_subject(self.domains, self.ip_addresses, is_ca=self.is_ca, common_name=self.common_name)
        return self

    def template(self, default_validity_days: int = 90) -> CertificateTemplate:
        return CertificateTemplate(
            common_name=self.common_name, dns_names=self.domains, ip_addresses=self.ip_addresses,
            organization=self.organization, validity_days=self.validity_days or default_validity_days,
            is_ca=self.is_ca, path_length=self.path_length, client_auth=self.client_auth,
            permitted_dns_domains=self.permitted_dns_domains)


def check_subject(domains: Sequence[str], ip_addresses: Sequence[str], *, is_ca: bool = False,
                  common_name: str | None = None) -> None:
    """A leaf names at least one domain or address; a CA has a common name."""
    if not is_ca and not (domains or ip_addresses):
        raise InvalidInputError("domains", "a certificate needs at least one domain or IP address")
    if is_ca and not common_name:
        raise InvalidInputError("common_name", "a certificate authority needs a common name")


def check_dns_name(name: str, field_name: str) -> None:
    """A DNS name or a wildcard whose `*` is the whole leftmost label."""
    if not isinstance(name, str) or not name or len(name) > 253:
        raise InvalidInputError(field_name, f"{name!r} is not a valid DNS name")
    labels = name.lower().rstrip(".").split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:
            raise InvalidInputError(field_name, f"wildcard {name!r} must cover a domain with at least two labels")
    if "*" in name[1:] or not labels or not all(_LABEL.match(label) for label in labels):
        raise InvalidInputError(field_name, f"{name!r} is not a valid DNS name")


def _subject(template: CertificateTemplate) -> x509.Name:
    attrs = []
    if template.organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, template.organization))
    cn = template.common_name or (template.dns_names[0] if template.dns_names else None)
    if cn and len(cn) <= 64:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def random_serial() -> int:
    """A random positive 128-bit serial (CA/B Forum asks for at least 64 bits of entropy)."""
    return secrets.randbits(127) | (1 << 126)


@dataclass(frozen=True)
class Signer:
    """What signing under a CA needs of the CA's certificate: its subject (the issuer name), its key identifier
    (the authority key identifier), and its expiry (which no certificate it signs outlives)."""

    subject: x509.Name
    key_id: bytes
    not_after: dt.datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> Signer:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return cls(cert.subject, ski.digest, cert.not_valid_after_utc)


def sign_certificate(
    template: CertificateTemplate,
    *,
    subject_public_key: PublicKey,
    signing_key: PrivateKey,
    issuer: Signer | x509.Certificate | None,
    now: dt.datetime,
) -> x509.Certificate:
    """Sign a certificate. `issuer=None` means self-signed by `signing_key`.

    A CA-issued certificate never outlives its issuer: validity is capped at the issuer's not_after.
    """
    if isinstance(issuer, x509.Certificate):
        issuer = Signer.of(issuer)
    not_before = now.replace(microsecond=0) - BACKDATE
    not_after = now.replace(microsecond=0) + dt.timedelta(days=template.validity_days)
    if issuer is not None:
        not_after = min(not_after, issuer.not_after)
        if not_after <= now:
            raise InvalidInputError("issuer", "the issuing CA certificate has expired: renew the CA first")
    subject = _subject(template)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(subject_public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=template.is_ca, path_length=template.path_length if template.is_ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(issuer.key_id, None, None), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
    if template.is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        if template.permitted_dns_domains:
            builder = builder.add_extension(
                x509.NameConstraints(permitted_subtrees=[x509.DNSName(d) for d in template.permitted_dns_domains],
                                     excluded_subtrees=None),
                critical=True,
            )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=isinstance(subject_public_key, rsa.RSAPublicKey),
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if template.client_auth else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in template.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in template.ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not subject.rdns)
    return builder.sign(signing_key, signature_hash(signing_key))  # type: ignore[arg-type]


# --- PEM and identity helpers -------------------------------------------------------------------------------

def build_csr(key: PrivateKey, domains: Sequence[str]) -> bytes:
    """A PEM CSR with every domain as a SAN; the first is also the CN when it fits (64 characters). For a CA
    that signs a request (ACME, AWS Private CA)."""
    builder = x509.CertificateSigningRequestBuilder()
    if len(domains[0]) <= 64:
        builder = builder.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]),
                                    critical=False)
    csr = builder.sign(key, signature_hash(key))  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM)


def issued_mismatch(leaf: x509.Certificate, key: PrivateKey | PublicKey, domains: Sequence[str]) -> str | None:
    """Why a certificate a CA returned for a CSR is not the one asked for (another public key, other names), or
    None: the one rule every issuer that signs a request applies before accepting its answer. `key` is the
    CSR's: certplane's own private key, or the public key of a CSR given with the certificate."""
    def name(domain: str) -> str:
        return domain.rstrip(".").lower()

    if not same_public_key(leaf.public_key(), key):  # type: ignore[arg-type]
        return "the CA returned a certificate for another public key than the CSR's; refusing it"
    got, asked = sorted({name(n) for n in dns_names_of(leaf)}), sorted({name(d) for d in domains})
    if got != asked:
        return (f"the CA returned a certificate for {', '.join(got) or 'no names'} instead of {', '.join(asked)}; "
                "refusing it")
    return None


def check_key_pair(key: PrivateKey, cert: x509.Certificate) -> None:
    """The key is the certificate's: a server given another key fails every handshake."""
    if not same_public_key(key, cert.public_key()):  # type: ignore[arg-type]
        raise InvalidInputError("", f"the private key does not match the certificate {describe(cert)}")


# --- certificate requests given with a certificate (CSR mode) ---------------------------------------------------
# The private key is held elsewhere (an HSM, another team): certplane sends the CSR as it is to a CA that signs
# requests, or signs its public key with a CA it runs, and never sees the key unless it is given too.

CSR_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")  # the second is what older openssl/Java write
_CERTIFICATE_LABELS = ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE")
_KEYS_ALLOWED = "RSA of 2048 bits or more, ECDSA P-256 or P-384, or Ed25519"


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """One PEM certificate request whose signature verifies (its maker holds the key: proof of possession) and
    whose key certplane's certificates may carry. Refusals are one line that never quotes the text: a PEM pasted
    into the wrong field may be a private key."""
    blocks = pem_blocks(pem if isinstance(pem, str) else "")
    requests = [block for label, block in blocks if label in CSR_LABELS]
    if not requests:
        labels = {label for label, _ in blocks}
        if labels & set(_CERTIFICATE_LABELS):
            raise InvalidInputError("", "is a certificate, not a certificate request: give the CSR "
                                        "(-----BEGIN CERTIFICATE REQUEST-----)")
        if any("PRIVATE KEY" in label for label in labels):
            raise InvalidInputError("", "is a private key, not a certificate request: give the CSR (and the key, "
                                        "if at all, as key_pem)")
        raise InvalidInputError("", "is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)")
    if len(requests) > 1:
        raise InvalidInputError("", f"holds {len(requests)} certificate requests: give one")
    try:
        csr = x509.load_pem_x509_csr(requests[0].replace("NEW CERTIFICATE REQUEST", "CERTIFICATE REQUEST").encode())
    except ValueError:
        raise InvalidInputError("", "is not a valid certificate request: its PEM does not decode") from None
    try:
        valid = csr.is_signature_valid
    except Exception:  # noqa: BLE001 - an algorithm cryptography cannot verify is no proof either
        valid = False
    if not valid:
        raise InvalidInputError("", "the certificate request's signature does not verify: it was altered or not "
                                    "signed by its own key; make it again")
    csr_public_key(csr)
    return csr


def csr_public_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    """The CSR's public key, when it is one certplane's certificates may carry (the key types KeySpec offers,
    RSA of any size from 2048 bits); InvalidInputError (one line) otherwise."""
    try:
        key = csr.public_key()
    except Exception:  # noqa: BLE001 - a key type cryptography does not know
        raise InvalidInputError("", f"the CSR's key is of a type certplane does not know: use {_KEYS_ALLOWED}") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise InvalidInputError("", f"the CSR's RSA key has {key.key_size} bits, too weak: use {_KEYS_ALLOWED}")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise InvalidInputError("", f"the CSR's ECDSA key is on {key.curve.name}: use {_KEYS_ALLOWED}")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise InvalidInputError("", f"the CSR's key is a {type(key).__name__.removesuffix('PublicKey') or 'other'} key: "
                                f"use {_KEYS_ALLOWED}")


def _dns_name(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return False
    try:
        check_dns_name(value, "")
    except InvalidInputError:
        return False
    return True


def csr_names(csr: x509.CertificateSigningRequest) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) a CA that signs the request as it is puts in the certificate: the SANs, and the
    common name when it is a DNS name the SANs leave out (ACME CAs add it, RFC 8555 §7.4). Lowercased, in order,
    each once."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    names = [str(n).lower() for n in dns]
    names += [str(cn.value).lower() for cn in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
              if _dns_name(str(cn.value))]
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(str(ip) for ip in ips))


def check_csr_request(csr: x509.CertificateSigningRequest, request: CertificateRequest) -> None:
    """The CSR names what the certificate asks for, as sets: an ACME CA validates and signs the CSR's names, not
    the config's, so a difference would issue (or fail to issue) a certificate nobody asked for."""
    dns, ips = csr_names(csr)
    asked_dns = tuple(dict.fromkeys(d.lower() for d in request.domains))
    asked_ips = tuple(dict.fromkeys(str(ipaddress.ip_address(ip)) for ip in request.ip_addresses))
    given, asked = dns + ips, asked_dns + asked_ips
    if set(given) == set(asked):
        return
    extra = [n for n in given if n not in asked]
    missing = [n for n in asked if n not in given]
    differ = "; ".join(part for part in (f"only in the CSR: {', '.join(extra)}" if extra else "",
                                         f"not in the CSR: {', '.join(missing)}" if missing else "") if part)
    raise InvalidInputError("csr_pem", f"the CSR names {', '.join(given) or 'nothing'}; the certificate asks for "
                                       f"{', '.join(asked) or 'nothing'} ({differ}): make them the same")


def check_csr_key(csr: x509.CertificateSigningRequest, key: PrivateKey) -> None:
    """A key given with a CSR is the CSR's: the certificate is issued for the CSR's key and served with this one."""
    if not same_public_key(key, csr_public_key(csr)):
        raise InvalidInputError("key_pem", "is not the CSR's private key: give the key the CSR was made with, or "
                                           "leave key_pem out")


def csr_fingerprint(csr: x509.CertificateSigningRequest) -> str:
    """SHA-256 of the CSR's DER, lowercase hex: names one request (a new CSR is a new request)."""
    return hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()


def request_pem(names: Sequence[str], *, key: PrivateKey | None,
                csr: x509.CertificateSigningRequest | None) -> bytes:
    """What a CA that signs requests is sent: the CSR given with the certificate, as it is (only its key's holder
    can sign another), else a CSR of certplane's own key for `names` (build_csr)."""
    if csr is not None:
        return csr.public_bytes(serialization.Encoding.PEM)
    if key is None:
        raise InvalidInputError("key_pem", "a certificate needs its private key or a CSR (csr_pem)")
    return build_csr(key, names)


