"""Reading certificates: PEM blocks, parsing, fingerprints, names and who signed what. No pydantic and no
key handling, so what only reads certificates (the operator CLI, a TLS probe) starts fast; everything here is
also reachable as `providers.core.certificates`, where requesting and signing live."""

from __future__ import annotations

import ipaddress
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .digest import bundle_digest, colon_hex
from .net import dns_match

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.S)


def pem_blocks(text: str) -> list[tuple[str, str]]:
    """All PEM blocks in `text` as (label, block), in order; anything between blocks is ignored."""
    return [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text or "")]


def load_certificates(text: str) -> list[x509.Certificate]:
    certs = []
    for label, block in pem_blocks(text):
        if label in ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"):
            certs.append(x509.load_pem_x509_certificate(block.replace(label, "CERTIFICATE").encode()))
    return certs


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def chain_to_pem(certs: list[x509.Certificate]) -> str:
    return "".join(to_pem(c) for c in certs)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Uppercase colon-separated, as `openssl x509 -fingerprint -sha256` prints it."""
    return colon_hex(cert.fingerprint(hashes.SHA256()))


def same_fingerprint(a: str, b: str) -> bool:
    """Fingerprints compared as people write them: case and colons do not matter."""
    def norm(text: str) -> str:
        return text.replace(":", "").strip().lower()

    return norm(a) == norm(b)


def fingerprint_of_pem(pem: str | bytes | None) -> str | None:
    """The fingerprint of the first certificate in `pem`, None when there is none."""
    certs = load_certificates(pem.decode() if isinstance(pem, bytes) else (pem or ""))
    return fingerprint_sha256(certs[0]) if certs else None


def serial_hex(cert: x509.Certificate) -> str:
    return f"{cert.serial_number:x}"


def dns_names_of(cert: x509.Certificate) -> list[str]:
    return subject_alt_names(cert)[0]


def subject_alt_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the subjectAltName extension; empty when there is none."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def covers(cert: x509.Certificate, name: str) -> bool:
    """Whether a client connecting to `name` (a DNS name or an IP address) accepts `cert` for it (its SANs)."""
    dns, ips = subject_alt_names(cert)
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return any(dns_match(p, name) for p in dns)
    return any(ipaddress.ip_address(v) == ip for v in ips)


def verified_bundle_digest(chain: list[x509.Certificate], names: list[str], *,
                           anchor: x509.Certificate | None = None) -> str | None:
    """`digest.bundle_digest` of `chain` (leaf first, as a server sends it) when each certificate is signed by
    the next and the leaf's SANs hold every one of `names` (case aside); None otherwise. A chain that does not
    end below a root it was given (`anchor`, which a client trusts and a server does not send: a leaf served
    alone by a CA without an intermediate) needs at least two certificates.

    The inventory records it, so `certplane check --probe` can accept an endpoint that sends exactly these bytes
    without parsing or verifying them again: what it would find was found here. Anything else is checked in
    full."""
    if not chain or any(not signed_by(cert, issuer) for cert, issuer in zip(chain, chain[1:])):
        return None
    if len(chain) < 2 and not (anchor is not None and is_self_issued(anchor) and chain[0] != anchor
                               and signed_by(chain[0], anchor)):
        return None  # a leaf alone counts only below the root it was given (verified only then: a signature)
    dns, ips = subject_alt_names(chain[0])
    held = {n.lower().rstrip(".") for n in dns} | set(ips)
    if any(n.lower().rstrip(".") not in held for n in names):
        return None
    return bundle_digest([c.public_bytes(serialization.Encoding.DER) for c in chain])


def describe(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if cns:
        return f"'CN={cns[0].value!s}'"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
        if names:
            return f"'{names[0]}'"
    except x509.ExtensionNotFound:
        pass
    return f"'serial {cert.serial_number:x}'"


def is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `issuer`'s key verifies `cert`'s signature and the names line up."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and friends
        return False
    return True
