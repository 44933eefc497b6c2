"""Key custody in the Certificate provider, as plain Python on dicts (no engine): what the store holds after a
failed issue, a renewal with reuse_key, a re-render, and a destroy."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.certificate import CertificateProvider
from providers.core import certificates as x509util
from providers.core import keys
from providers.core.errors import CertplaneError
from tests.support.pki import make_ca

from .test_certificate_provider import at, leaf_inputs, signed_by


def stored(store: Path) -> list[Path]:
    return sorted(store.rglob("*.pem"))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    return path


def in_store(store: Path, **over):
    return leaf_inputs(key_storage={"type": "file", "directory": str(store)}, **over)


def test_a_failed_first_issue_leaves_no_key_behind(store: Path, monkeypatch) -> None:
    at(monkeypatch, "2026-11-27T12:00:00Z")
    ca = make_ca("Custody CA")
    bad = signed_by(ca)
    bad["issuer_credentials"]["ca_private_key_pem"] = keys.private_key_to_pem(
        keys.generate_private_key(keys.KeySpec()))  # not the CA's key: signing fails after the key was stored
    with pytest.raises(CertplaneError):
        CertificateProvider().create(in_store(store, **bad))
    assert stored(store) == [], "nothing names the key of a create that failed"


def test_state_names_the_key_and_a_renewal_keeps_the_one_before(store: Path, monkeypatch) -> None:
    provider = CertificateProvider()
    at(monkeypatch, "2026-11-27T12:00:00Z")
    created = provider.create(in_store(store))
    outs = created.outs
    assert outs.get("private_key_pem") is None and outs["private_key_ref"].startswith("file:")
    first = outs["private_key_ref"]
    at(monkeypatch, "2027-02-10T12:00:00Z")  # due
    renewed = provider.update(created.id, outs, in_store(store)).outs
    assert renewed["private_key_ref"] != first and renewed["previous_key_ref"] == first
    assert len(stored(store)) == 2
    at(monkeypatch, "2027-04-30T12:00:00Z")
    again = provider.update(created.id, renewed, in_store(store)).outs
    assert again["previous_key_ref"] == renewed["private_key_ref"]
    assert {p.name for p in stored(store)} == {again["private_key_ref"].rsplit("/", 1)[1],
                                              renewed["private_key_ref"].rsplit("/", 1)[1]}, "older ones pruned"
    leaf = x509util.load_certificates(again["cert_pem"])[0]
    key = keys.load_private_key(Path(again["private_key_ref"].removeprefix("file:")).read_text())
    x509util.check_key_pair(key, leaf)
    provider.delete(created.id, again)
    assert stored(store) == [], "destroy removes the certificate's keys"


def test_reuse_key_keeps_the_stored_key(store: Path, monkeypatch) -> None:
    provider = CertificateProvider()
    at(monkeypatch, "2026-11-27T12:00:00Z")
    created = provider.create(in_store(store, reuse_key=True))
    at(monkeypatch, "2027-02-10T12:00:00Z")
    renewed = provider.update(created.id, created.outs, in_store(store, reuse_key=True)).outs
    assert renewed["private_key_ref"] == created.outs["private_key_ref"]
    assert renewed["serial"] != created.outs["serial"]


def test_a_key_given_by_reference_is_not_read_to_rerender(store: Path, tmp_path: Path, monkeypatch) -> None:
    """A CA level whose key is on an unplugged drive re-renders (a new renewal policy) without it."""
    from providers.private_key import PrivateKeyProvider

    drive = tmp_path / "drive"
    drive.mkdir(mode=0o700)
    storage = {"type": "file", "directory": str(drive)}
    at(monkeypatch, "2026-11-27T12:00:00Z")
    key = PrivateKeyProvider().create({"algorithm": "ecdsa", "name": "root-key", "key_storage": storage}).outs
    assert key.get("private_key_pem") is None
    root = {"name": "root", "common_name": "Drive Root", "is_ca": True, "validity_days": 3650, "formats": ["pem"],
            "issuer_type": "self_signed", "key_ref": key["private_key_ref"],
            "key_fingerprint": key["public_key_fingerprint_sha256"], "key_storage": storage}
    provider = CertificateProvider()
    created = provider.create(root)
    drive.rename(tmp_path / "unplugged")
    news = {**root, "renew": {"before_days": 400}}
    diff = provider.diff(created.id, created.outs, news)
    assert diff.changes
    outs = provider.update(created.id, created.outs, news).outs
    assert outs["serial"] == created.outs["serial"] and outs.get("private_key_pem") is None
