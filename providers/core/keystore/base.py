"""The key-store contract: where a certificate's (or a CA level's) private key lives when it is kept out of
Pulumi state, and the five verbs the providers need.

The provider writes the key with `put` *before* it is used to issue, so a certificate never exists whose key
was not stored; state then holds only the reference `put` returned (never key material), and `get` turns it
back into the key for every later render and deploy. A store is a plain object built from validated settings:
it holds no clients and no keys between calls (providers are pickled into state), and every failure is one
KeyStoreError line naming the place (a path, a secret ARN), never the key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from typing import Any, Protocol, runtime_checkable

from ..errors import InvalidInputError
from ..keys import PrivateKey, public_key_fingerprint_sha256
from ..plugins import Factory
from ..validation import Model

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_OWNER = 100  # characters of an owner's segment: a file name (with `.pem`) and a secret name stay short


class KeyStorageSettings(Model):
    """Base of every key store's settings model (the `type` that names the store is the registry's key)."""


@runtime_checkable
class KeyStore(Protocol):
    """Keys of many owners (one certificate or CA level each), addressed by the references `put` returns.

    References are stable, human-readable and carry no key material; they name this store's location, so a
    reference written by another store (another directory, another prefix) is refused, never followed."""

    @property
    def kind(self) -> str: ...

    def put(self, owner: str, key: PrivateKey) -> str:
        """Store `key` durably for `owner` and return its reference. Idempotent: the same key again returns
        the same reference and stores nothing new (a retried `up` must not pile up copies)."""

    def get(self, ref: str) -> PrivateKey:
        """The key `ref` names; KeyStoreError when the reference is not this store's, or the key is gone,
        unreadable or not a key."""

    def prune(self, owner: str, keep: Collection[str]) -> None:
        """Let go of the owner's keys whose references are not in `keep` (the provider keeps the current key
        and the previous one, which stays deployed until the new certificate is)."""

    def delete(self, owner: str) -> None:
        """Remove every key of `owner`; idempotent (absent, or deleted before, is fine)."""

    def location(self, owner: str) -> str:
        """Where `owner`'s keys live, in one line (for messages and docs)."""


KeyStorePlugin = Factory[Any, "KeyStore | None"]
"""One key storage type: its `type`, its settings model, and how to build the store (None: the key stays in
state)."""


def key_id(key: PrivateKey) -> str:
    """What names a stored key: its SPKI SHA-256 (public, so a reference may show it), lowercase hex."""
    return public_key_fingerprint_sha256(key)


def owner_segment(owner: str) -> str:
    """`owner` as one name segment every store can use (a directory, the tail of a secret name): letters,
    digits, `.`, `_`, `-`, not starting with `.`. An owner that had to be changed (or shortened) gets a hash of
    the original appended, so two owners never share a segment (`a/b` and `a_b` stay apart)."""
    if not owner:
        raise InvalidInputError("owner", "must not be empty")
    safe = _UNSAFE.sub("_", owner)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe == owner and len(safe) <= MAX_OWNER:
        return safe
    digest = hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe[:MAX_OWNER - 13]}-{digest}"


__all__ = ["KeyStorageSettings", "KeyStore", "KeyStorePlugin", "key_id", "owner_segment"]
