"""Key stores: where a private key lives when it is kept out of Pulumi state. One module per storage type
(settings model, store class, `PLUGIN`), listed once in `REGISTRY`; `state` (the default) keeps the key in
state as before and builds no store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from ..plugins import Registry
from ..validation import first_problem
from .base import KeyStorageSettings, KeyStore, KeyStorePlugin, key_id, owner_segment

REGISTRY: Registry[KeyStorePlugin] = Registry.of_modules(__name__, [
    "state",
    "file",
    "aws_secretsmanager",
], noun="key storage type")

KeyStorageField = Annotated[KeyStorageSettings, REGISTRY.validator(), REGISTRY.serializer()]
"""A `key_storage` block as a model field (`type` picks the model that validates the rest)."""


def parse_settings(raw: Any, *, context: Mapping[str, Any] | None = None) -> KeyStorageSettings:
    """A key storage block (with its `type`) validated by its type's model; None is `state`. Raises
    InvalidInputError naming the field of the first problem."""
    if isinstance(raw, KeyStorageSettings):
        return raw
    settings = first_problem(lambda: REGISTRY.validate({REGISTRY.key: "state"} if raw is None else raw,
                                                       context=context))
    assert isinstance(settings, KeyStorageSettings)
    return settings


def build(settings: KeyStorageSettings) -> KeyStore | None:
    """The store for `settings`; None when the key stays in state. Building does no I/O (stores hold no
    clients), so it is cheap to call wherever a store is needed."""
    return REGISTRY.plugin_of(settings).build(settings)


def is_external(settings: KeyStorageSettings) -> bool:
    """Whether the key lives outside state (state then holds only the reference)."""
    return build(settings) is not None


__all__ = ["REGISTRY", "KeyStorageField", "KeyStorageSettings", "KeyStore", "KeyStorePlugin", "build",
           "is_external", "key_id", "owner_segment", "parse_settings"]
