"""Key custody for the providers: whether a private key is kept in state (a Pulumi secret, the default) or in a
key store (providers/core/keystore) that state names only by reference.

The order is the contract a store's user relies on:
- a new key is written to the store *before* a certificate is issued for it (a key only in memory is lost with
  the process, and a certificate without its key is useless);
- the previous key stays in the store beside the current one (a binding rolls back to the certificate it
  served before, and reads that key from the store); keys older than the previous are pruned when a new one is
  kept, so a failed issue's orphan does not linger past the next success;
- a destroy removes the owner's keys, after the certificate is revoked and its bindings removed.

An owner is one resource: its name and resource id, so two stacks (or a resource replaced) never share keys.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .core import keys, keystore
from .core.errors import CertplaneError, InvalidInputError
from .core.validation import location_of
from .core.keystore import KeyStorageSettings, KeyStore


def settings_of(raw: Mapping[str, Any] | None, field: str = "key_storage") -> KeyStorageSettings:
    """A `key_storage` block (None: in state), its problems named under `field`."""
    try:
        return keystore.parse_settings(dict(raw) if raw else None)
    except InvalidInputError as err:
        raise err.within(field) from None


def store_of(settings: KeyStorageSettings) -> KeyStore | None:
    """The store that keeps keys out of state; None when they are kept in state."""
    return keystore.build(settings)


def wire(settings: KeyStorageSettings | None) -> dict[str, Any] | None:
    """A `key_storage` input as resources carry it (its `type` included); None for keys kept in state, so a
    resource that keeps its key in state carries exactly the inputs it had before key storage existed."""
    if settings is None or store_of(settings) is None:
        return None
    return {"type": kind_of(settings), **settings.wire()}


def check_formats(settings: KeyStorageSettings, formats: Collection[str]) -> None:
    """A key kept out of state stays out: no output may carry it, and a PKCS#12 or a JKS holds the key."""
    carrying = [f for f in ("pkcs12", "jks") if f in formats]
    if carrying and store_of(settings) is not None:
        raise InvalidInputError("formats", f"{' and '.join(carrying)} would carry the private key in state, and "
                                           f"key_storage {kind_of(settings)} keeps it out: drop "
                                           f"{'them' if len(carrying) > 1 else 'it'} (deploy targets build their "
                                           "own keystores from the stored key)")


def kind_of(settings: KeyStorageSettings) -> str:
    return keystore.REGISTRY.plugin_of(settings).kind


def owner(name: str, resource_id: str) -> str:
    return f"{name}-{resource_id}"


@dataclass(frozen=True)
class Kept:
    """Where one key is now: its PEM for state, or the reference state keeps instead (never both)."""

    private_key_pem: str | None = None
    private_key_ref: str | None = None


def keep(settings: KeyStorageSettings, owner_id: str, key: keys.PrivateKey) -> Kept:
    """Put `key` where it is kept, before anything uses it; what state records of it."""
    store = store_of(settings)
    if store is None:
        return Kept(private_key_pem=keys.private_key_to_pem(key))
    return Kept(private_key_ref=store.put(owner_id, key))


def load(settings: KeyStorageSettings, pem: str | None, ref: str | None) -> keys.PrivateKey:
    """The key state names: its PEM, or the key its reference names in `settings`' store."""
    if ref:
        store = store_of(settings)
        if store is None:
            raise InvalidInputError("key_storage", f"the key is kept by reference ({ref}), but key_storage is "
                                                   "state: name the store that holds it")
        return store.get(ref)
    return keys.load_private_key(pem or "")


def same_store(a: KeyStorageSettings, b: KeyStorageSettings) -> bool:
    """Whether two settings name the same store (kind and LOCATION-marked settings: a directory, a region, a
    prefix); other settings (a recovery window, a profile) change how it is reached, not which keys it holds."""
    if kind_of(a) != kind_of(b):
        return False
    return location_of(a) == location_of(b)


def undo_keep(settings: KeyStorageSettings, owner_id: str, kept: Kept, *, created: bool,
              named: Collection[str | None] = ()) -> None:
    """A key stored for an issue that then failed: nothing names it. For a create, the owner (a fresh resource
    id) holds nothing else: it goes. For an update, the owner's keys but those state names (`named`) go. Best
    effort: the issue's own failure is what the user needs to read."""
    store = store_of(settings)
    if store is None or not kept.private_key_ref:
        return
    try:
        if created:
            store.delete(owner_id)
        else:
            store.prune(owner_id, [ref for ref in named if ref])
    except CertplaneError:
        pass  # pruned by the next issue that succeeds


def retire(settings: KeyStorageSettings, owner_id: str, current: Kept, previous_ref: str | None) -> None:
    """Prune the owner's keys but the current one and the one before it (still deployed until the new
    certificate is)."""
    store = store_of(settings)
    if store is not None and current.private_key_ref:
        store.prune(owner_id, [ref for ref in (current.private_key_ref, previous_ref) if ref])


def forget(settings: KeyStorageSettings, owner_id: str) -> None:
    """Remove every key of the owner (a destroy); nothing to do for keys kept in state."""
    store = store_of(settings)
    if store is not None:
        store.delete(owner_id)


__all__ = ["Kept", "check_formats", "same_store", "undo_keep", "forget", "keep", "kind_of", "load", "owner", "retire", "settings_of", "store_of", "wire"]
