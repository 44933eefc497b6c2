"""PrivateKey: a generated key whose PEM is a Pulumi secret (a CA's key). Changing the algorithm replaces it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import DiffResult
from pydantic import model_validator

from ._dynamic import CertplaneProvider, CertplaneResource, PlannedDiff, Stored
from .core import keys
from .core.validation import SECRET, Model, State


class PrivateKeyInputs(Model):
    """A key specification, written out in full (`ecdsa` alone is `ecdsa` on `P-256`)."""

    algorithm: str = "ecdsa"
    size: int | None = None
    curve: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        spec = keys.KeySpec.parse({k: v for k, v in raw.items() if v is not None}, field="")
        return {"algorithm": spec.algorithm, "size": spec.size, "curve": spec.curve}

    def spec(self) -> keys.KeySpec:
        return keys.KeySpec(self.algorithm, size=self.size, curve=self.curve)  # type: ignore[arg-type]


class PrivateKeyOutputs(State):
    private_key_pem: Annotated[str | None, SECRET] = None
    public_key_pem: str | None = None
    public_key_fingerprint_sha256: str | None = None
    key_algorithm: str | None = None


class PrivateKeyProvider(CertplaneProvider[PrivateKeyInputs, PrivateKeyOutputs]):
    inputs = PrivateKeyInputs
    outputs = PrivateKeyOutputs
    noun = "a private key"

    def create_typed(self, inputs: PrivateKeyInputs) -> tuple[str, PrivateKeyOutputs]:
        spec = inputs.spec()
        key = keys.generate_private_key(spec)
        return f"key-{uuid.uuid4().hex[:12]}", PrivateKeyOutputs(
            private_key_pem=keys.private_key_to_pem(key), public_key_pem=keys.public_key_pem(key),
            public_key_fingerprint_sha256=keys.public_key_fingerprint_sha256(key), key_algorithm=spec.label)

    def diff_typed(self, _id: str, olds: Stored[PrivateKeyInputs, PrivateKeyOutputs],
                   news: PrivateKeyInputs) -> DiffResult:
        changed = [k for k in ("algorithm", "size", "curve") if getattr(olds.inputs, k) != getattr(news, k)]
        return PlannedDiff(details={name: "update" for name in changed}, replaces=changed)


class PrivateKey(CertplaneResource, module="certplane", name="PrivateKey"):
    """A private key. Outputs: private_key_pem (secret), public_key_pem, public_key_fingerprint_sha256."""

    provider = PrivateKeyProvider

    private_key_pem: pulumi.Output[str]
    public_key_pem: pulumi.Output[str]
    public_key_fingerprint_sha256: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]

    def __init__(self, name: str, *, algorithm: str = "ecdsa", size: int | None = None, curve: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, {"algorithm": algorithm, "size": size, "curve": curve}, opts)
