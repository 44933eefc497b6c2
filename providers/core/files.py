"""Durable local writes shared by every layer that writes files certplane owns (deploy targets, key stores,
the metrics textfile): a reader sees the old file or the new one, never half of one, and a file that will hold
a key is never briefly readable by others."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int, *, uid: int = -1, gid: int = -1) -> None:
    """Write via a temp file in the same directory, fsync, rename: readers see the old or the new file, never
    half of one. The mode is set before any byte is written, so a key is never briefly world-readable."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` survive a crash (the entry itself is what changed)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["atomic_write", "fsync_dir"]
