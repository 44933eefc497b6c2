"""Private keys: specification, generation, PEM round trips and public fingerprints.

No pydantic here (the CLI reads keys' facts and starts faster without it): the model field for a KeySpec is
`validation.KeySpecField`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .errors import InvalidInputError

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]
Algorithm = Literal["rsa", "ecdsa", "ed25519"]

RSA_SIZES = (2048, 3072, 4096)
CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}


@dataclass(frozen=True)
class KeySpec:
    """What key to generate. `size` is for RSA, `curve` for ECDSA; the other stays None."""

    algorithm: Algorithm = "ecdsa"
    size: int | None = None
    curve: str | None = None

    @classmethod
    def parse(cls, raw: object, field: str = "key") -> KeySpec:
        """Validate a `{algorithm, size, curve}` mapping; raises InvalidInputError naming the field."""
        if isinstance(raw, KeySpec):
            return raw
        if raw is not None and not isinstance(raw, dict):
            raise InvalidInputError(field, "must be a mapping like {algorithm: ecdsa, curve: P-256}")
        values = dict(raw or {})
        for key in values:
            if key not in ("algorithm", "size", "curve"):
                raise InvalidInputError(_at(field, str(key)), "unknown setting (known: algorithm, size, curve)")
        algorithm = str(values.get("algorithm") or "ecdsa").lower()
        if algorithm == "rsa":
            size = values.get("size") or 2048
            if isinstance(size, str) and size.strip().isdigit():
                size = int(size)  # YAML `size: "2048"`
            if not isinstance(size, int) or isinstance(size, bool) or size not in RSA_SIZES:
                raise InvalidInputError(_at(field, "size"), "RSA keys must be 2048, 3072 or 4096 bits")
            if values.get("curve"):
                raise InvalidInputError(_at(field, "curve"), "only ECDSA keys have a curve")
            return cls("rsa", size=size)
        if algorithm == "ecdsa":
            curve = str(values.get("curve") or "P-256").upper()
            if curve not in CURVES:
                raise InvalidInputError(_at(field, "curve"), "ECDSA curve must be P-256 or P-384")
            if values.get("size"):
                raise InvalidInputError(_at(field, "size"), "only RSA keys have a size")
            return cls("ecdsa", curve=curve)
        if algorithm == "ed25519":
            if values.get("size") or values.get("curve"):
                raise InvalidInputError(_at(field, "size" if values.get("size") else "curve"),
                                        "Ed25519 keys have no size or curve")
            return cls("ed25519")
        raise InvalidInputError(_at(field, "algorithm"),
                                f"unknown key algorithm {algorithm!r}: use rsa, ecdsa or ed25519")

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"algorithm": self.algorithm}
        if self.size is not None:
            out["size"] = self.size
        if self.curve is not None:
            out["curve"] = self.curve
        return out

    @property
    def label(self) -> str:
        return {"rsa": f"RSA-{self.size}", "ecdsa": f"ECDSA-{self.curve}", "ed25519": "Ed25519"}[self.algorithm]


def _at(field: str, sub: str) -> str:
    return f"{field}.{sub}" if field else sub


def generate_private_key(spec: KeySpec) -> PrivateKey:
    if spec.algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.size or 2048)
    if spec.algorithm == "ecdsa":
        return ec.generate_private_key(CURVES[spec.curve or "P-256"])
    return ed25519.Ed25519PrivateKey.generate()


def spec_of(key: PrivateKey | PublicKey) -> KeySpec:
    """The KeySpec that describes an existing key (for inventory and upload checks)."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return KeySpec("rsa", size=key.key_size)
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return KeySpec("ecdsa", curve=names.get(key.curve.name, key.curve.name))
    return KeySpec("ed25519")


def private_key_to_pem(key: PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM: what nginx, Apache, Java and the cloud consoles accept."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key(pem: str, password: str | None = None) -> PrivateKey:
    """Load a PEM private key (PKCS#1, PKCS#8, SEC1; encrypted when `password` is given).

    Errors never echo the input: it is key material.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except TypeError as err:
        if "encrypted" in str(err).lower() and not password:
            raise InvalidInputError("", "the private key is encrypted: give its passphrase") from None
        raise InvalidInputError("", "the private key passphrase is not needed: the key is not encrypted") from None
    except ValueError:
        if password:
            raise InvalidInputError("", "the private key cannot be decrypted: wrong passphrase or not a PEM key") from None
        raise InvalidInputError("", "the private key is not a PEM-encoded RSA, ECDSA or Ed25519 key") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise InvalidInputError("", "unsupported private key type: use RSA, ECDSA or Ed25519")
    return key


def _public(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        return key.public_key()
    return key


def public_key_pem(key: PrivateKey | PublicKey) -> str:
    return _public(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_fingerprint_sha256(key: PrivateKey | PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (the SPKI pin HPKP and ACM use)."""
    der = _public(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The digest a CA key signs with: SHA-384 for P-384, none for Ed25519, else SHA-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def same_public_key(a: PrivateKey | PublicKey, b: PrivateKey | PublicKey) -> bool:
    return public_key_fingerprint_sha256(a) == public_key_fingerprint_sha256(b)
