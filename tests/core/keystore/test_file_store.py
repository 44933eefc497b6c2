"""The file key store on a real directory: modes, atomic idempotent writes, references that stay inside the
store, and every failure one line that names the path and never the key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from providers.core import keys, keystore
from providers.core.errors import InvalidInputError, KeyStoreError
from providers.core.keystore.file import FileKeyStore


def new_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


def body(key: keys.PrivateKey) -> str:
    """The base64 body of the key's PEM: what must never reach a message."""
    return "".join(keys.private_key_to_pem(key).splitlines()[1:-1])


def store(directory: Path) -> FileKeyStore:
    built = keystore.build(keystore.parse_settings({"type": "file", "directory": str(directory)}))
    assert isinstance(built, FileKeyStore)
    return built


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    return directory


def test_put_then_get_round_trips_with_private_modes(root: Path) -> None:
    key = new_key()
    ref = store(root).put("www", key)
    path = root / "www" / f"{keystore.key_id(key)[:16]}.pem"
    assert ref == f"file:{path}"
    assert keys.same_public_key(store(root).get(ref), key)
    assert mode(root / "www") == 0o700 and mode(path) == 0o600
    assert [p.name for p in (root / "www").iterdir()] == [path.name]  # no temporary file left behind


def test_put_is_idempotent(root: Path) -> None:
    key = new_key()
    first = store(root).put("www", key)
    before = os.stat(first.removeprefix("file:")).st_mtime_ns
    assert store(root).put("www", key) == first
    assert os.stat(first.removeprefix("file:")).st_mtime_ns == before
    assert len(list((root / "www").iterdir())) == 1


def test_prune_keeps_the_listed_references_and_removes_the_others(root: Path) -> None:
    s = store(root)
    old, previous, current = (s.put("www", new_key()) for _ in range(3))
    other_owner = s.put("api", new_key())
    s.prune("www", [previous, current, "aws_secretsmanager:arn:elsewhere#v", f"file:/elsewhere/www/{'0' * 16}.pem"])
    assert sorted(p.name for p in (root / "www").iterdir()) == sorted(
        Path(r.removeprefix("file:")).name for r in (previous, current))
    with pytest.raises(KeyStoreError, match="is gone"):
        s.get(old)
    s.get(other_owner)
    s.prune("nobody", [])  # an owner with no keys


def test_delete_removes_every_key_and_twice_is_fine(root: Path) -> None:
    s = store(root)
    ref = s.put("www", new_key())
    s.put("www", new_key())
    s.delete("www")
    s.delete("www")
    assert not (root / "www").exists()
    with pytest.raises(KeyStoreError, match="is gone"):
        s.get(ref)


def test_a_reference_of_another_directory_is_refused(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    ref = store(elsewhere).put("www", new_key())
    with pytest.raises(KeyStoreError) as err:
        store(root).get(ref)
    assert str(err.value) == (f"the key reference {ref!r} is not a key file of this key storage directory {root}: "
                              "was the directory moved? put the key files back under it")
    for bad in ("", "file:relative/www/x.pem", f"file:{root}/www/../../x.pem", f"aws_secretsmanager:{root}"):
        with pytest.raises(KeyStoreError, match="is not a key file of this key storage directory"):
            store(root).get(bad)


def test_a_missing_storage_directory_asks_whether_the_drive_is_mounted(tmp_path: Path) -> None:
    gone = tmp_path / "usb"
    line = f"key storage directory {gone} does not exist (is the drive mounted?)"
    with pytest.raises(KeyStoreError) as err:
        store(gone).put("root-ca", new_key())
    assert str(err.value) == line
    assert not gone.exists()  # never created in the drive's place
    with pytest.raises(KeyStoreError) as err:
        store(gone).get(f"file:{gone}/root-ca/0123456789abcdef.pem")
    assert str(err.value) == line


def test_a_group_readable_key_file_or_directory_is_refused(root: Path) -> None:
    key = new_key()
    ref = store(root).put("www", key)
    path = Path(ref.removeprefix("file:"))
    os.chmod(path, 0o640)
    with pytest.raises(KeyStoreError) as err:
        store(root).get(ref)
    assert str(err.value) == f"the key file {path} is readable by group or others (mode 0640): chmod 600 {path}"
    assert body(key) not in str(err.value)
    with pytest.raises(KeyStoreError, match="readable by group or others"):
        store(root).put("www", key)
    os.chmod(path, 0o600)
    os.chmod(root / "www", 0o750)
    with pytest.raises(KeyStoreError) as err:
        store(root).get(ref)
    assert str(err.value) == (f"the key directory {root / 'www'} is readable by group or others (mode 0750): "
                              f"chmod 700 {root / 'www'}")


def test_a_missing_unreadable_or_foreign_key_file_is_one_line_without_key_material(root: Path) -> None:
    key, other = new_key(), new_key()
    ref = store(root).put("www", key)
    path = Path(ref.removeprefix("file:"))

    path.write_text("not a key\n")
    with pytest.raises(KeyStoreError) as err:
        store(root).get(ref)
    assert str(err.value) == (f"the key file {path} is not a usable private key: the private key is not a "
                              "PEM-encoded RSA, ECDSA or Ed25519 key")

    path.write_text(keys.private_key_to_pem(other))
    with pytest.raises(KeyStoreError) as err:
        store(root).get(ref)
    assert "holds another key than its name says" in str(err.value)
    assert body(other) not in str(err.value) and body(key) not in str(err.value)

    assert store(root).put("www", key) == ref  # put repairs a file that no longer holds its key
    assert keys.same_public_key(store(root).get(ref), key)

    path.unlink()
    with pytest.raises(KeyStoreError) as err:
        store(root).get(ref)
    assert str(err.value) == (f"the key file {path} is gone: restore it from backup, or re-key with "
                              "reissue_before")
    assert "\n" not in str(err.value)


def test_owners_become_one_safe_segment_and_never_collide(root: Path) -> None:
    s = store(root)
    refs = {owner: s.put(owner, new_key()) for owner in ("a/b", "a_b", "../up", ".hidden", "x" * 300)}
    assert len({Path(r.removeprefix("file:")).parent for r in refs.values()}) == len(refs)
    assert all(Path(r.removeprefix("file:")).parent.parent == root for r in refs.values())
    assert sorted(os.listdir(root)) == sorted(Path(r.removeprefix("file:")).parent.name for r in refs.values())
    assert s.location("a/b") == f"key files under {Path(refs['a/b'].removeprefix('file:')).parent}"
    with pytest.raises(InvalidInputError):
        s.put("", new_key())


def test_a_relative_directory_resolves_against_the_project(tmp_path: Path) -> None:
    settings = keystore.parse_settings({"type": "file", "directory": "keys"}, context={"base_dir": str(tmp_path)})
    assert getattr(settings, "directory") == str(tmp_path / "keys")
    with pytest.raises(InvalidInputError) as err:
        keystore.parse_settings({"type": "file"})
    assert str(err.value) == "directory: is required"


def test_state_is_the_default_and_builds_no_store() -> None:
    for raw in (None, {"type": "state"}):
        settings = keystore.parse_settings(raw)
        assert keystore.build(settings) is None and not keystore.is_external(settings)
    assert keystore.REGISTRY.dump(keystore.parse_settings(None)) == {"type": "state"}
    with pytest.raises(InvalidInputError) as err:
        keystore.parse_settings({"type": "vault"})
    assert str(err.value) == "type: unrecognized key storage type: vault (known: aws_secretsmanager, file, state)"
