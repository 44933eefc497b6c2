"""Shared mechanics for targets: atomic file writes, file snapshots, locks and bounded subprocesses."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import DeployError, InvalidInputError
from ..files import atomic_write as atomic_write, fsync_dir as fsync_dir  # kept importable from here
from ..tls import await_served

_SECRET_MARKERS = ("PRIVATE KEY",)
MAX_FILE_STEM = 128  # bytes: `<stem>.fullchain.pem` and its temporary `.<name>.XXXXXXXX.tmp` stay within NAME_MAX


def safe_file_stem(name: str, field: str) -> str:
    """`name` as the start of the file names a target writes (`<name>.crt`), or InvalidInputError naming
    `field`: one plain file name, never a path. Refused: empty, `/` or `\\`, a NUL or other control character, a
    leading `.` (`.`, `..`, hidden files, certplane's own `.certplane*`), more than MAX_FILE_STEM bytes."""
    unusable = "is not usable as a file name"
    if not name:
        raise InvalidInputError(field, f"an empty name {unusable}")
    if "/" in name or "\\" in name:
        raise InvalidInputError(field, f"{name!r} {unusable}: it contains '/' or '\\'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidInputError(field, f"{name!r} {unusable}: it contains a control character")
    if name.startswith("."):
        raise InvalidInputError(field, f"{name!r} {unusable}: it starts with '.'")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_STEM:
        raise InvalidInputError(field, f"a name of {size} bytes {unusable}: at most {MAX_FILE_STEM}")
    return name


def require_served(kind: str, host: str, port: int, listen: str, names: Sequence[str], fingerprint: str, *,
                   present: bool = True, tries: int, interval: float, confirmations: int,
                   hint: Callable[[str], str] = lambda _name: "") -> None:
    """The verification of every target that terminates TLS: poll real handshakes (tls.await_served) until each
    name serves `fingerprint` (present=False: none does any more), else one DeployError line naming the first
    name that did not settle, what it served, and `hint(name)` (what to check in the user's config)."""
    served = await_served(host, port, names, fingerprint, present=present, tries=tries, interval=interval,
                          confirmations=confirmations)
    if not served.pending:
        return
    name = served.pending[0]
    if not present:
        raise DeployError(f"{kind}: {name} on {listen} still serves {fingerprint} after its binding was removed "
                          f"(checked {tries} times)")
    got = served.seen.get(name) or "no certificate (handshake failed)"
    raise DeployError(f"{kind}: {name} on {listen} serves {got}, expected {fingerprint} (checked {tries} times over "
                      f"{tries * interval:g} s){hint(name)}")


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def ensure_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)


class FileSet:
    """Snapshot a few files, change them, and put every one back if anything after fails."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.saved = {p: (read_or_none(p), p.stat() if p.exists() else None) for p in paths}

    def restore(self) -> None:
        for path, (data, st) in self.saved.items():
            if data is None or st is None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:
                atomic_write(path, data, st.st_mode & 0o7777)
                with contextlib.suppress(PermissionError):  # owner and group as they were, where we may
                    os.chown(path, st.st_uid, st.st_gid)


def server_lock(kind: str, identity: str) -> Path:
    """The lock file for one server (`kind` + what names it, e.g. its main config's path): the same path for
    every target and process on this machine that changes that server, kept out of the server's own files
    (which a config manager may replace by rename) in a directory of the user's own."""
    directory = Path(tempfile.gettempdir()) / f"certplane-locks-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    if directory.stat().st_uid != os.getuid() or directory.stat().st_mode & 0o077:
        raise DeployError(f"{directory} is not a private directory of this user; remove it and run again")
    return directory / f"{kind}-{hashlib.sha256(identity.encode()).hexdigest()[:24]}.lock"


@contextlib.contextmanager
def locked(lock_file: Path, *, timeout: float = 120.0) -> Iterator[None]:
    """One deploy at a time per server (see server_lock) or directory: Pulumi runs resources in parallel
    threads and processes."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DeployError(f"timed out after {timeout:g} s waiting for the lock {lock_file}") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def scrub(line: str) -> str:
    """Never pass on a line that could carry key material."""
    return "(output withheld: it looked like key material)" if any(m in line for m in _SECRET_MARKERS) else line


def run(args: Sequence[str], *, timeout: float, what: str) -> tuple[int, list[str]]:
    """Run a command without a shell; returns (exit code, non-empty stderr-or-stdout lines, scrubbed)."""
    code, stdout, stderr = run_capturing(args, timeout=timeout, what=what)
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    return code, [scrub(ln) for ln in lines]


def run_capturing(args: Sequence[str], *, timeout: float, what: str) -> tuple[int, str, str]:
    """Run a command without a shell; returns (exit code, stdout, stderr), unscrubbed: for callers that read
    the output (a config dump), never for messages."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DeployError(f"{what}: command not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"{what}: {args[0]} did not finish within {timeout:g} s") from None
    return proc.returncode, proc.stdout or "", proc.stderr or ""
