"""Download formats: PEM variants, PKCS#12/PFX, JKS and DER, as nginx, Apache, Java and the consoles accept."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Annotated

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import AfterValidator

from .certificates import chain_to_pem, to_pem
from .errors import InvalidInputError
from .keys import PrivateKey, private_key_to_pem

FORMATS = ("pem", "pkcs12", "jks", "der")
DEFAULT_ALIAS = "certplane"


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    for f in formats:
        if f not in FORMATS:
            raise InvalidInputError("", f"unknown format {f!r}: use {', '.join(FORMATS)}")
    return tuple(formats)


Formats = Annotated[tuple[str, ...], AfterValidator(check_formats)]
"""The download formats of a certificate (`pem` is always rendered)."""


def generate_password() -> str:
    """A keystore password: 24 URL-safe characters (~143 bits), accepted by keytool and Windows."""
    return secrets.token_urlsafe(18)


def render(
    formats: Sequence[str],
    *,
    key: PrivateKey | None,
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    password: str,
    alias: str = DEFAULT_ALIAS,
) -> dict[str, str]:
    """All requested outputs. PEM outputs are always present; binary formats are base64. `key` None: a
    certificate whose key certplane never holds (CSR mode): no key output, and no keystore (it holds the key)."""
    out = {
        "cert_pem": to_pem(leaf),
        "chain_pem": chain_to_pem(chain),
        "fullchain_pem": to_pem(leaf) + chain_to_pem(chain),
    }
    if key is None:
        check_keystores_need_key(formats)
        if "der" in formats:
            out["cert_der_base64"] = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()
        return out
    out["private_key_pem"] = private_key_to_pem(key)
    if "pkcs12" in formats:
        out["pkcs12_base64"] = base64.b64encode(pkcs12_bytes(key, leaf, chain, password, alias)).decode()
    if "jks" in formats:
        out["jks_base64"] = base64.b64encode(jks_bytes(key, leaf, chain, password, alias)).decode()
    if "der" in formats:
        out["cert_der_base64"] = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()
    return out


def check_keystores_need_key(formats: Sequence[str]) -> None:
    """PKCS#12 and JKS hold the private key: refused for a certificate whose key certplane is not given."""
    wanted = [f for f in ("pkcs12", "jks") if f in formats]
    if wanted:
        raise InvalidInputError("formats", f"{' and '.join(wanted)} hold{'s' if len(wanted) == 1 else ''} the "
                                           "private key, and this certificate's key is not given: give it with the "
                                           f"CSR (csr.private_key), or drop {' and '.join(wanted)}")


def pkcs12_bytes(key: PrivateKey, leaf: x509.Certificate, chain: list[x509.Certificate], password: str,
                 alias: str = DEFAULT_ALIAS) -> bytes:
    """AES-256 PBES2 PKCS#12: read by OpenSSL 1.1+/3, Java 9+ keytool, Windows 10 1709+ and the consoles."""
    return pkcs12.serialize_key_and_certificates(
        alias.encode(), key, leaf, chain or None,
        serialization.BestAvailableEncryption(password.encode()),
    )


def jks_bytes(key: PrivateKey, leaf: x509.Certificate, chain: list[x509.Certificate], password: str,
              alias: str = DEFAULT_ALIAS) -> bytes:
    """A Java KeyStore (type JKS) holding one PrivateKeyEntry with the full chain."""
    import jks  # type: ignore[import-untyped]  # pyjks ships no type hints; imported here, as only JKS needs it (~0.1 s)

    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    certs = [c.public_bytes(serialization.Encoding.DER) for c in [leaf, *chain]]
    entry = jks.PrivateKeyEntry.new(alias, certs, key_der, "pkcs8")
    store = jks.KeyStore.new("jks", [entry])
    return bytes(store.saves(password))


__all__ = ["FORMATS", "Formats", "check_formats", "check_keystores_need_key", "generate_password", "render", "pkcs12_bytes", "jks_bytes", "private_key_to_pem"]
