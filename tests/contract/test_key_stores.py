"""Every registered key storage type keeps the same contract against a real counterpart (a directory, moto's
Secrets Manager): a key put is seen outside the store and read back by its reference, a second key (a renewal)
leaves the first readable, prune keeps what it is told to keep, and delete (twice, without error) leaves
nothing the reference can read. A type that builds no store keeps the key in state, as before."""

from __future__ import annotations

import pytest

from providers.core import keys, keystore
from providers.core.errors import KeyStoreError
from tests.contract import sandboxes

pytestmark = pytest.mark.integration


def new_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


@pytest.mark.parametrize("kind", keystore.REGISTRY.kinds)
def test_put_get_renew_prune_delete(kind: str, request: pytest.FixtureRequest) -> None:
    with sandboxes.load("keystores", kind).open(request) as box:
        settings = keystore.parse_settings({**box.settings, keystore.REGISTRY.key: kind})
        store = keystore.build(settings)
        if store is None:  # the key stays in Pulumi state: there is no store to drive
            assert not keystore.is_external(settings) and not box.seen(box.owner)
            return
        assert keystore.is_external(settings) and store.kind == kind
        owner, first, second = box.owner, new_key(), new_key()
        assert not box.seen(owner)

        ref = store.put(owner, first)
        assert box.seen(owner)
        assert store.put(owner, first) == ref  # a retried put is the same key, the same reference
        assert keys.same_public_key(store.get(ref), first)
        assert "PRIVATE KEY" not in ref and keys.private_key_to_pem(first) not in ref

        renewed = store.put(owner, second)
        assert renewed != ref
        assert keys.same_public_key(store.get(ref), first) and keys.same_public_key(store.get(renewed), second)

        store.prune(owner, [ref, renewed])  # the previous key stays until the new certificate is deployed
        assert keys.same_public_key(store.get(ref), first) and keys.same_public_key(store.get(renewed), second)
        store.prune(owner, [renewed])
        assert keys.same_public_key(store.get(renewed), second)
        assert store.location(owner) and "\n" not in store.location(owner)

        store.delete(owner)
        store.delete(owner)
        assert not box.seen(owner)
        for gone in (ref, renewed):
            with pytest.raises(KeyStoreError) as err:
                store.get(gone)
            assert "\n" not in str(err.value) and "PRIVATE KEY" not in str(err.value)
