"""`type: file`: keys as PKCS#8 PEM files under a directory of the operator's choosing (a removable drive for
an offline root CA, an encrypted volume), `<directory>/<owner>/<spki[:16]>.pem`.

Contracts: the storage directory itself is never created (an unmounted drive must not be silently replaced by
an empty directory on the host's disk: put and get say `is the drive mounted?`); only the per-owner directory
is, mode 0700. Key files are 0600, written atomically (temp file, fsync, rename), so a crash leaves the old
set of keys or the new, never half a key. A key directory or file that group or others can read is refused
rather than used, and so is one owned by another user. A file's name is its key's SPKI fingerprint, so `get`
proves the file still holds the key the reference names.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from ..errors import InvalidInputError, KeyStoreError
from ..files import atomic_write, fsync_dir
from ..keys import PrivateKey, load_private_key, private_key_to_pem
from ..plugins import Factory
from ..validation import LOCATION, ProjectPath
from .base import KeyStorageSettings, KeyStore, key_id, owner_segment

PREFIX = "file:"
ID_LENGTH = 16  # hex characters of the SPKI fingerprint in a file name: 64 bits, unique among an owner's keys
DIR_MODE, FILE_MODE = 0o700, 0o600


class FileSettings(KeyStorageSettings):
    """directory: where the keys live (relative paths resolve against the project directory); it must exist."""

    directory: Annotated[ProjectPath, LOCATION]


@dataclass(frozen=True)
class FileKeyStore:
    root: Path
    kind: str = "file"

    def put(self, owner: str, key: PrivateKey) -> str:
        home = self._home(owner, create=True)
        path = home / f"{key_id(key)[:ID_LENGTH]}.pem"
        if path.exists():
            self._private(path, FILE_MODE)
            with contextlib.suppress(KeyStoreError):
                if key_id(self._load(path)) == key_id(key):
                    return PREFIX + str(path)
        atomic_write(path, private_key_to_pem(key).encode(), FILE_MODE)
        return PREFIX + str(path)

    def get(self, ref: str) -> PrivateKey:
        path = self._path_of(ref)
        self._mounted()
        if not path.parent.is_dir():
            raise KeyStoreError(f"the key file {path} is gone (so is its directory {path.parent}): restore it from "
                                "backup, or re-key with reissue_before")
        self._private(path.parent, DIR_MODE)
        if not path.exists():
            raise KeyStoreError(f"the key file {path} is gone: restore it from backup, or re-key with reissue_before")
        self._private(path, FILE_MODE)
        key = self._load(path)
        if key_id(key)[:ID_LENGTH] != path.stem:
            raise KeyStoreError(f"the key file {path} holds another key than its name says: restore it from backup, "
                                "or re-key with reissue_before")
        return key

    def prune(self, owner: str, keep: Collection[str]) -> None:
        home = self._home(owner, create=False)
        if not home.is_dir():
            return
        kept = {path for path in map(self._path_or_none, keep) if path is not None}  # another store's: not here
        removed = False
        for path in home.glob("*.pem"):
            if path not in kept:
                path.unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_dir(home)

    def delete(self, owner: str) -> None:
        home = self._home(owner, create=False)
        if not home.is_dir():
            return
        for path in home.iterdir():  # key files and any temporary file a crashed write left
            path.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            home.rmdir()
        fsync_dir(self.root)

    def location(self, owner: str) -> str:
        return f"key files under {self.root / owner_segment(owner)}"

    # --- the rules every verb shares -------------------------------------------------------------------------

    def _mounted(self) -> None:
        if not self.root.is_dir():
            raise KeyStoreError(f"key storage directory {self.root} does not exist (is the drive mounted?)")

    def _home(self, owner: str, *, create: bool) -> Path:
        """The owner's directory: created (0700) when asked, refused when others may read it."""
        self._mounted()
        home = self.root / owner_segment(owner)
        if create and not home.is_dir():
            try:
                home.mkdir(mode=DIR_MODE)
                os.chmod(home, DIR_MODE)  # mkdir's mode is filtered by the umask
            except FileExistsError:
                pass
            except OSError as err:
                raise KeyStoreError(f"cannot create the key directory {home}: {err.strerror}") from None
            fsync_dir(self.root)
        if home.is_dir():
            self._private(home, DIR_MODE)
        return home

    def _private(self, path: Path, mode: int) -> None:
        """Refuse a key directory or file that is not this user's alone (copied with the wrong umask, a backup
        restored as root): its key may have been read, and using it would hide that."""
        st = path.lstat()
        if st.st_uid != os.getuid():
            raise KeyStoreError(f"{self._what(path)} {path} belongs to another user (uid {st.st_uid}): chown it to "
                                "the user running pulumi")
        if stat.S_ISLNK(st.st_mode):
            raise KeyStoreError(f"{self._what(path)} {path} is a symbolic link: keys are read only from real files")
        if st.st_mode & 0o077:
            raise KeyStoreError(f"{self._what(path)} {path} is readable by group or others "
                                f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod {mode:o} {path}")

    @staticmethod
    def _what(path: Path) -> str:
        return "the key file" if path.suffix == ".pem" else "the key directory"

    def _load(self, path: Path) -> PrivateKey:
        try:
            pem = path.read_text()
        except FileNotFoundError:
            raise KeyStoreError(f"the key file {path} is gone: restore it from backup, or re-key with "
                                "reissue_before") from None
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "it is not text"
            raise KeyStoreError(f"the key file {path} cannot be read: {reason}") from None
        try:
            return load_private_key(pem)
        except InvalidInputError as err:
            raise KeyStoreError(f"the key file {path} is not a usable private key: {err.reason}") from None

    def _path_or_none(self, ref: str) -> Path | None:
        try:
            return self._path_of(ref)
        except KeyStoreError:
            return None

    def _path_of(self, ref: str) -> Path:
        """The file a reference names, refused unless it is one of this store's: `<root>/<owner>/<id>.pem`."""
        raw = ref.removeprefix(PREFIX) if ref.startswith(PREFIX) else None
        path = Path(raw) if raw else None
        if (path is None or not path.is_absolute() or ".." in path.parts or path.parent.parent != self.root
                or path.suffix != ".pem" or path.parent.name.startswith(".")):
            raise KeyStoreError(f"the key reference {ref!r} is not a key file of this key storage directory "
                                f"{self.root}: was the directory moved? put the key files back under it")
        return path


def _build(settings: FileSettings) -> KeyStore | None:
    return FileKeyStore(Path(settings.directory))


PLUGIN: Factory[FileSettings, KeyStore | None] = Factory("file", FileSettings, _build)
