"""Fingerprints as text, from DER bytes: the standard library only, so a TLS probe compares what a server sent
with the inventory without importing `cryptography` (certificates are parsed only when they differ)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def colon_hex(digest: bytes) -> str:
    """Uppercase colon-separated, as `openssl x509 -fingerprint -sha256` prints it."""
    return ":".join(f"{b:02X}" for b in digest)


def fingerprint_of_der(der: bytes) -> str:
    """The SHA-256 fingerprint of one certificate (its DER), as `pem.fingerprint_sha256` gives it."""
    return colon_hex(hashlib.sha256(der).digest())


def bundle_digest(ders: Sequence[bytes]) -> str:
    """One SHA-256 (hex) over a served chain, leaf first: the DER of each certificate, one after the other (DER
    is self-delimiting, so two different chains never give the same bytes)."""
    return hashlib.sha256(b"".join(ders)).hexdigest()


__all__ = ["bundle_digest", "colon_hex", "fingerprint_of_der"]
