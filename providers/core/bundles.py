"""Uploaded third-party certificates: accept leaf, chain and key in any order and PEM mix, then prove the
bundle is deployable (key matches leaf, chain ordered and signed, validity, key strength) or say in one line
what is wrong."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from .certificates import check_key_pair, describe, is_self_issued, pem_blocks
from .clock import rfc3339
from .errors import BundleError, InvalidInputError
from .keys import PrivateKey, load_private_key, same_public_key

CERT_LABELS = ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE")
KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class Bundle:
    key: PrivateKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf's issuer first, then up towards the root


def _issuer_label(cert: x509.Certificate) -> str:
    cns = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return f"'CN={cns[0].value!s}'" if cns else f"'{cert.issuer.rfc4514_string()}'"


def validate_bundle(
    certificate_pem: str, chain_pem: str, private_key_pem: str, *, passphrase: str | None, now: dt.datetime
) -> Bundle:
    """Parse and check an uploaded bundle; raises BundleError with one line per the first problem found."""
    text = "\n".join(t for t in (certificate_pem, chain_pem, private_key_pem) if t)
    if not text.strip():
        raise BundleError("the certificate bundle is empty: give the certificate, its chain and its private key")
    blocks = pem_blocks(text)
    if not blocks:
        raise BundleError(
            "no PEM data found: expected '-----BEGIN CERTIFICATE-----' blocks "
            "(DER, PKCS#7 and PFX are not accepted; convert with openssl)"
        )
    certs: list[x509.Certificate] = []
    keys: list[str] = []
    for label, block in blocks:
        if label in CERT_LABELS:
            try:
                certs.append(x509.load_pem_x509_certificate(block.replace(label, "CERTIFICATE").encode()))
            except ValueError:
                raise BundleError(f"certificate #{len(certs) + 1} is not a valid X.509 certificate") from None
        elif label in KEY_LABELS:
            keys.append(block)
        else:
            raise BundleError(f"unsupported PEM block '{label}': give certificates and one private key")
    if not certs:
        raise BundleError("no certificate found: give the leaf certificate as a PEM block")
    if not keys:
        raise BundleError("no private key found: give the certificate's private key as a PEM block")
    if len(keys) > 1:
        raise BundleError(f"found {len(keys)} private keys: give exactly one")
    try:
        key = load_private_key(keys[0], passphrase)
    except InvalidInputError as err:
        raise BundleError(err.reason) from None

    leaf = next((c for c in certs if same_public_key(c.public_key(), key)), None)  # type: ignore[arg-type]
    if leaf is None:
        try:
            check_key_pair(key, certs[0])  # says which certificate the key does not match
        except InvalidInputError as err:
            raise BundleError(err.reason) from None
        raise AssertionError("no certificate matches the key, yet the first one does")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise BundleError(f"the RSA key is {key.key_size} bits: at least {MIN_RSA_BITS} bits are required")

    chain = _order_chain(leaf, [c for c in certs if c is not leaf])
    for cert in (leaf, *chain):
        if now >= cert.not_valid_after_utc:
            raise BundleError(f"certificate {describe(cert)} expired on {rfc3339(cert.not_valid_after_utc)}")
        if now < cert.not_valid_before_utc:
            raise BundleError(
                f"certificate {describe(cert)} is not valid until {rfc3339(cert.not_valid_before_utc)}"
            )
    return Bundle(key=key, leaf=leaf, chain=tuple(chain))


def _order_chain(leaf: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """Walk issuer links from the leaf; every given certificate must be on that path, signatures must verify."""
    ordered: list[x509.Certificate] = []
    current = leaf
    remaining = list(pool)
    while not is_self_issued(current):
        candidates = [c for c in remaining if c.subject == current.issuer]
        if not candidates:
            break
        issuer = candidates[0]
        try:
            current.verify_directly_issued_by(issuer)
        except Exception:  # noqa: BLE001 - InvalidSignature, unsupported algorithm
            raise BundleError(
                f"the signature of {describe(current)} does not verify with its issuer {describe(issuer)}"
            ) from None
        ordered.append(issuer)
        remaining = [c for c in remaining if c is not issuer]
        current = issuer
    # A leaf whose issuer was not given (bare leaf, or leaf + root without the intermediate).
    if not ordered and not is_self_issued(leaf):
        raise BundleError(
            f"missing intermediate: no certificate for {_issuer_label(current)}, the issuer of "
            f"{describe(current)}; add the CA's intermediate certificate to the chain"
        )
    if remaining:
        raise BundleError(f"certificate {describe(remaining[0])} is not part of the chain of {describe(leaf)}")
    return ordered
