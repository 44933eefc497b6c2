"""PrivateKey: a generated key (a CA's), kept as a Pulumi secret in state, or out of state in a key store
(`key_storage`: state then holds its reference and public key only, e.g. a root on a removable drive).
Changing the algorithm replaces it; changing where it is kept moves the same key."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import DiffResult
from pydantic import model_validator

from . import _custody
from ._dynamic import CertplaneProvider, CertplaneResource, PlannedDiff, Stored, note
from .core import keys
from .core.validation import SECRET, Model, State


class PrivateKeyInputs(Model):
    """A key specification, written out in full (`ecdsa` alone is `ecdsa` on `P-256`)."""

    algorithm: str = "ecdsa"
    size: int | None = None
    curve: str | None = None
    name: str | None = None  # names the key in its store (given with key_storage only)
    key_storage: dict[str, Any] | None = None  # None: in state

    @model_validator(mode="after")
    def _storage(self) -> PrivateKeyInputs:
        _custody.settings_of(self.key_storage)
        return self

    @property
    def storage(self) -> _custody.KeyStorageSettings:
        return _custody.settings_of(self.key_storage)

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        spec = keys.KeySpec.parse({k: v for k, v in raw.items() if v is not None and k in ("algorithm", "size",
                                                                                          "curve")}, field="")
        return {**raw, "algorithm": spec.algorithm, "size": spec.size, "curve": spec.curve}

    def spec(self) -> keys.KeySpec:
        return keys.KeySpec(self.algorithm, size=self.size, curve=self.curve)  # type: ignore[arg-type]


class PrivateKeyOutputs(State):
    private_key_pem: Annotated[str | None, SECRET] = None
    public_key_pem: str | None = None
    public_key_fingerprint_sha256: str | None = None
    key_algorithm: str | None = None
    private_key_ref: str | None = None  # where the key is, when key_storage keeps it out of state


class PrivateKeyProvider(CertplaneProvider[PrivateKeyInputs, PrivateKeyOutputs]):
    inputs = PrivateKeyInputs
    outputs = PrivateKeyOutputs
    noun = "a private key"

    def create_typed(self, inputs: PrivateKeyInputs) -> tuple[str, PrivateKeyOutputs]:
        resource_id = f"key-{uuid.uuid4().hex[:12]}"
        key = keys.generate_private_key(inputs.spec())
        return resource_id, _outputs(inputs, key, _custody.keep(inputs.storage, _owner(inputs, resource_id), key))

    def diff_typed(self, _id: str, olds: Stored[PrivateKeyInputs, PrivateKeyOutputs],
                   news: PrivateKeyInputs) -> DiffResult:
        changed = [k for k in ("algorithm", "size", "curve") if getattr(olds.inputs, k) != getattr(news, k)]
        moved = ["key_storage"] if not changed and news.storage != olds.inputs.storage else []
        return PlannedDiff(details={name: "update" for name in [*changed, *moved]}, replaces=changed)

    def update_typed(self, _id: str, olds: Stored[PrivateKeyInputs, PrivateKeyOutputs],
                     news: PrivateKeyInputs) -> PrivateKeyOutputs:
        """The same key, kept elsewhere now. The old copy is never removed in the same step (state still names
        it until this update is recorded): the note says where it is."""
        key = _custody.load(olds.inputs.storage, olds.outputs.private_key_pem, olds.outputs.private_key_ref)
        outputs = _outputs(news, key, _custody.keep(news.storage, _owner(news, _id), key))
        if olds.outputs.private_key_ref:
            note(f"{news.name or _id}: the key moved; the copy at {olds.outputs.private_key_ref} is no longer "
                 "used: remove it once this update is done")
        return outputs

    def delete_typed(self, _id: str, olds: Stored[PrivateKeyInputs, PrivateKeyOutputs]) -> None:
        _custody.forget(olds.inputs.storage, _owner(olds.inputs, _id))


def _owner(inputs: PrivateKeyInputs, resource_id: str) -> str:
    return _custody.owner(inputs.name, resource_id) if inputs.name else resource_id


def _outputs(inputs: PrivateKeyInputs, key: keys.PrivateKey, kept: _custody.Kept) -> PrivateKeyOutputs:
    return PrivateKeyOutputs(private_key_pem=kept.private_key_pem, private_key_ref=kept.private_key_ref,
                             public_key_pem=keys.public_key_pem(key),
                             public_key_fingerprint_sha256=keys.public_key_fingerprint_sha256(key),
                             key_algorithm=inputs.spec().label)


class PrivateKey(CertplaneResource, module="certplane", name="PrivateKey"):
    """A private key. Outputs: private_key_pem (secret), public_key_pem, public_key_fingerprint_sha256."""

    provider = PrivateKeyProvider

    private_key_pem: pulumi.Output[str]
    public_key_pem: pulumi.Output[str]
    public_key_fingerprint_sha256: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]
    private_key_ref: pulumi.Output[str | None]

    def __init__(self, name: str, *, algorithm: str = "ecdsa", size: int | None = None, curve: str | None = None,
                 key_storage: dict[str, Any] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        # name and key_storage only when kept out of state: a key in state keeps exactly the inputs it had
        stored = {"name": name, "key_storage": key_storage} if key_storage else {}
        super().__init__(name, {"algorithm": algorithm, "size": size, "curve": curve, **stored}, opts)
