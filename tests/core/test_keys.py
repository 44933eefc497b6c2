from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from providers.core import keys
from providers.core.errors import InvalidInputError
from tests.support.pem_markers import PKCS8_HEADER


@pytest.mark.parametrize(
    ("raw", "kind", "label"),
    [
        ({"algorithm": "rsa", "size": 2048}, rsa.RSAPrivateKey, "RSA-2048"),
        ({"algorithm": "rsa", "size": 3072}, rsa.RSAPrivateKey, "RSA-3072"),
        ({"algorithm": "rsa", "size": 4096}, rsa.RSAPrivateKey, "RSA-4096"),
        ({"algorithm": "ecdsa", "curve": "P-256"}, ec.EllipticCurvePrivateKey, "ECDSA-P-256"),
        ({"algorithm": "ecdsa", "curve": "P-384"}, ec.EllipticCurvePrivateKey, "ECDSA-P-384"),
        ({"algorithm": "ed25519"}, ed25519.Ed25519PrivateKey, "Ed25519"),
    ],
)
def test_every_key_type_generates_and_round_trips(raw, kind, label):
    spec = keys.KeySpec.parse(raw)
    key = keys.generate_private_key(spec)
    assert isinstance(key, kind)
    assert keys.spec_of(key).label == label
    pem = keys.private_key_to_pem(key)
    assert pem.startswith(PKCS8_HEADER)
    again = keys.load_private_key(pem)
    assert keys.public_key_fingerprint_sha256(again) == keys.public_key_fingerprint_sha256(key)
    assert len(keys.public_key_fingerprint_sha256(key)) == 64


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"algorithm": "rsa", "size": 1024}, "key.size: RSA keys must be 2048, 3072 or 4096 bits"),
        ({"algorithm": "ecdsa", "curve": "P-521"}, "key.curve: ECDSA curve must be P-256 or P-384"),
        ({"algorithm": "dsa"}, "key.algorithm: unknown key algorithm 'dsa': use rsa, ecdsa or ed25519"),
    ],
)
def test_bad_key_specs_name_the_field(raw, message):
    with pytest.raises(InvalidInputError) as err:
        keys.KeySpec.parse(raw)
    assert str(err.value) == message


def test_encrypted_key_needs_its_passphrase_and_errors_never_echo_the_key():
    from cryptography.hazmat.primitives import serialization

    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"s3cret-pass")).decode()
    assert keys.same_public_key(keys.load_private_key(pem, "s3cret-pass"), key)
    with pytest.raises(InvalidInputError) as missing:
        keys.load_private_key(pem)
    assert str(missing.value) == "the private key is encrypted: give its passphrase"
    with pytest.raises(InvalidInputError) as wrong:
        keys.load_private_key(pem, "nope")
    assert str(wrong.value) == "the private key cannot be decrypted: wrong passphrase or not a PEM key"
    assert "PRIVATE KEY" not in str(wrong.value) and "s3cret" not in str(wrong.value)
