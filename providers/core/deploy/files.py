"""files: write the bundle into a directory for software certplane does not drive itself (HAProxy, Java, a
sidecar), then run its optional reload command. observe() reads the certificate file back.

Layout. Files are named after the certificate, whose name must be one plain file name (_support.safe_file_stem:
no `/` or `\\`, no leading `.`, no control characters, at most 128 bytes; refused as `certificate: ...` before
anything is written). The public paths are relative symlinks into one versioned set:

    <directory>/<name>.crt .chain.pem .fullchain.pem .key [.p12 .jks] -> .certplane/<name>/current/<same name>
    <directory>/.certplane/<name>/current      -> <version>, replaced by renaming a new link over it
    <directory>/.certplane/<name>/<version>/   the real files, with `mode` (`key_mode` for key and keystores),
                                               `owner` and `group`
    <directory>/.certplane/<name>/owner.json   which binding owns these paths (see Ownership)

Consistency. A deploy writes the whole new set into a fresh version directory, then renames one link
(`current`): a reader that opens `<name>.crt` and `<name>.key` after that moment gets the new pair, before it the
old one, never one of each (the kubelet's layout for Secrets). Then every public link is renamed into place
again, so a watcher of the directory gets an event per file only once the new set is whole; the reload command
runs after that. The set before stays (a reader may be half-way through it, and it is what a restore switches
back to); older ones are pruned. Plain files at the public paths (written by a release before this one, or your
own) are first copied into a version directory and replaced by links to that copy, contents unchanged, so the
first deploy after an upgrade switches at once too. Any failure puts back what was there: the switch is undone
and the new version deleted; a failure while writing the new set (a full disk, `owner:` not permitted) has
changed nothing a consumer reads. Consumers must follow symlinks (TLS servers, JVMs and openssl do) and should watch
the directory, not one file's inode (which a switch leaves as it was).

Directories. `.certplane/` is 0711. `.certplane/<name>/` and the version directories hold the key: they get
`owner`/`group` like the files and mode 0700, plus search (x, not list) for the group when `mode` or `key_mode`
lets the group read, and for others when `mode` lets others read: whoever the file modes let read a file can
reach it.

Ownership. Two bindings that resolve to the same paths (a target renamed with its directory kept; two targets,
or two stacks, on one directory) must not overwrite or delete each other's files. A binding's first deploy
records a random owner id in its `live` facts and in owner.json, under the directory's lock. A deploy
- owns the paths when owner.json names its owner id, or when there is none (a first deploy; files of an earlier
  release, which it adopts);
- takes them over from another binding only when that binding deployed this very certificate (the same leaf
  fingerprint): a renamed target, whose new binding Pulumi creates before it deletes the old one, or any other
  replacement. The old binding's remove then deletes nothing, and a later deploy of it (it was not being
  deleted: two targets of one stack on one directory) is refused, so the two never take turns;
- is refused otherwise (another stack's certificate on the same name and directory, or a binding that lost the
  paths to another), in one line naming the owner and what to do. A target renamed in the same `pulumi up` as
  a renewal is refused this way too (its certificate is new): delete owner.json as the message says, then run
  again.
remove() deletes links, versions and owner.json only while owner.json names this binding (or is absent: files
of an earlier release); a takeover that fails its verify hands owner.json back to the binding it came from.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import field_validator

from .. import clock, keys
from .. import formats as fmt
from ..certificates import fingerprint_of_pem, load_certificates
from ..errors import DeployError, DeployFailed, InvalidInputError
from ..validation import LOCATION, Argv, ProjectPath, number
from . import base
from ._support import atomic_write, fsync_dir, locked, read_or_none, run, safe_file_stem
from .base import DEFAULT, Binding, Bundle, TargetPlugin, TargetSettings

KIND = "files"
FILE_FORMATS = ("pem", "pkcs12", "jks")
LOCK = ".certplane.lock"
STORE = ".certplane"  # <directory>/.certplane/<name>/: the versions, `current` and owner.json
CURRENT = "current"
MARKER = "owner.json"
SUFFIXES = {"cert_file": ".crt", "chain_file": ".chain.pem", "fullchain_file": ".fullchain.pem", "key_file": ".key",
            "pkcs12_file": ".p12", "jks_file": ".jks"}
KEY_FILES = ("key_file", "pkcs12_file", "jks_file")  # hold the private key: key_mode


def _octal(value: str) -> int:
    try:
        mode = int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise InvalidInputError("", f"{value!r} is not an octal file mode like \"0640\"")
    return mode


class FilesSettings(TargetSettings):
    """directory; optional mode ("0640"), key_mode ("0600"), owner, group, formats ([pem]), reload_command
    (argv list), reload_timeout (s). Files are named after the certificate."""

    directory: Annotated[ProjectPath, LOCATION]
    mode: str = "0640"
    key_mode: str = "0600"
    owner: str | None = None
    group: str | None = None
    formats: tuple[str, ...] = ("pem",)
    reload_command: Argv | None = None
    reload_timeout: Annotated[float, number(1, 3600)] = 30.0

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> str:
        _octal(value)
        return str(value)

    @field_validator("key_mode", mode="before")
    @classmethod
    def _key_mode(cls, value: Any) -> str:
        if _octal(value) & 0o007:
            raise InvalidInputError("", "a private key must not be readable or writable by others")
        return str(value)

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is not None:
            _uid(value)
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None:
            _gid(value)
        return value

    @field_validator("formats", mode="before")
    @classmethod
    def _formats(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(f in FILE_FORMATS for f in value):
            raise InvalidInputError("", f"must be a list of {', '.join(FILE_FORMATS)}")
        return value


def _uid(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise InvalidInputError("", f"no such user {name!r}") from None


def _gid(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise InvalidInputError("", f"no such group {name!r}") from None


class FilesTarget(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: FilesSettings) -> None:
        self.directory = Path(settings.directory)
        self.mode = _octal(settings.mode)
        self.key_mode = _octal(settings.key_mode)
        self.uid = _uid(settings.owner) if settings.owner else -1
        self.gid = _gid(settings.group) if settings.group else -1
        self.formats = settings.formats
        self.reload_command = settings.reload_command
        self.reload_timeout = settings.reload_timeout
        # Key-holding directories: the owner's, plus search for whoever the file modes let read a file.
        self.dir_mode = 0o700 | (0o010 if (self.mode | self.key_mode) & 0o070 else 0) | \
            (0o001 if self.mode & 0o007 else 0)

    def check_binding(self, binding: Binding) -> None:
        return None

    def paths(self, bundle_name: str) -> dict[str, Path]:
        """The public paths for a certificate name; InvalidInputError (`certificate: ...`) for a name that is not
        one plain file name."""
        name = safe_file_stem(bundle_name, "certificate")
        fields = ["cert_file", "chain_file", "fullchain_file", "key_file"]
        fields += ["pkcs12_file"] if "pkcs12" in self.formats else []
        fields += ["jks_file"] if "jks" in self.formats else []
        return {field: self._public(name, field) for field in fields}

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        paths = self.paths(bundle.name)  # before anything is written
        contents = self._render(bundle, paths)
        undo = _Undo()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with locked(self.directory / LOCK):
                owner_id, took_over = self._claim(binding, bundle)
                try:
                    self._switch(binding, bundle, paths, contents, owner_id, undo)
                    self._reload()
                except BaseException as err:
                    failed = undo.run()
                    if failed:
                        said = (str(err).removesuffix("; previous files restored") if isinstance(err, DeployError)
                                else f"files: cannot write {_where(err, self.directory, bundle.name)}"
                                if isinstance(err, OSError) else f"files: deploy interrupted ({type(err).__name__})")
                        raise DeployError(f"{said}; restoring the previous files failed too ({failed}): "
                                          f"{self._home(bundle.name)} may hold a partial deploy") from None
                    if isinstance(err, DeployError):  # undone: the files are as they were, nothing to roll back
                        raise DeployFailed(str(err), nothing_changed=True) from None
                    raise
                undo.commit()
        except OSError as err:  # disk full, EPERM from `owner:`, a file where the directory should be
            raise DeployFailed(f"files: cannot write {_where(err, self.directory, bundle.name)}; "
                               "previous files restored", nothing_changed=True) from None
        live: dict[str, Any] = {"name": bundle.name, "directory": str(self.directory),
                                **{k: str(v) for k, v in paths.items()}, "owner_id": owner_id}
        if took_over is not None:
            live["took_over"] = took_over  # for a rollback of this deploy: whose files they were
        return live

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        got = self.observe_name(bundle.name)
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"files: {self.paths(bundle.name)['fullchain_file']} holds {got or 'no certificate'}, "
                              f"expected {bundle.fingerprint_sha256}")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        name = str(binding.live.get("name") or "") or _name_from_live(binding.live)
        return {DEFAULT: self.observe_name(name) if name else None}

    def observe_name(self, bundle_name: str) -> str | None:
        """The fingerprint at `<name>.fullchain.pem`, read through the links (a name an earlier release accepted
        that is no plain file name any more is still read, if it names a file in the directory)."""
        path = self.directory / f"{bundle_name}{SUFFIXES['fullchain_file']}"
        if "\0" in bundle_name or path.parent != self.directory:
            return None
        try:
            return fingerprint_of_pem(read_or_none(path))
        except OSError as err:
            raise DeployError(f"files: cannot read {path}: {err.strerror or err}") from None

    def remove(self, binding: Binding) -> None:
        """Deletes the files, unless another binding has taken them over; runs no reload, since the consumer's
        config may still point at them."""
        name = str(binding.live.get("name") or "") or _name_from_live(binding.live)
        if not name or not self.directory.is_dir():
            return
        try:
            safe_file_stem(name, "certificate")
        except InvalidInputError:  # a name an earlier release accepted: it wrote plain files only
            self._unlink_listed(binding.live)
            return
        try:
            with locked(self.directory / LOCK):
                marker = self._read_marker(name)
                if marker is not None and marker["owner_id"] != _owner_id(binding.live):
                    return  # taken over (a renamed target): these are another binding's files now
                for field in SUFFIXES:  # every format's link, whichever are configured now
                    public = self._public(name, field)
                    if self._ours(name, public):
                        public.unlink()
                self._unlink_listed(binding.live)  # plain files an earlier release wrote
                if os.path.lexists(self._home(name)):
                    shutil.rmtree(self._home(name))
                with contextlib.suppress(OSError):  # when no other certificate is kept there
                    (self.directory / STORE).rmdir()
                fsync_dir(self.directory)
        except OSError as err:
            raise DeployError(f"files: cannot remove {_where(err, self.directory, name)}") from None

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """A takeover that failed its verify hands the files back to the binding they came from (they hold its
        certificate: that is when a takeover happens); otherwise, the previous bundle deployed again."""
        took_over, name = binding.live.get("took_over"), str(binding.live.get("name") or "")
        if previous is not None and name and _owner_id(binding.live) and self._owned_by_another(binding, name):
            return  # the deploy was refused before it wrote anything: there is nothing to put back
        if previous is not None or not isinstance(took_over, dict) or not name:
            super().rollback(binding, previous)
            return
        try:
            with locked(self.directory / LOCK):
                marker = self._read_marker(name)
                if marker is not None and marker["owner_id"] == _owner_id(binding.live):
                    atomic_write(self._home(name) / MARKER, _marker_bytes(took_over), 0o644)
        except OSError as err:
            raise DeployError(f"files: cannot write {_where(err, self.directory, name)}") from None

    # --- mechanics ------------------------------------------------------------------------------------------

    def _owned_by_another(self, binding: Binding, name: str) -> bool:
        try:
            marker = self._read_marker(name) if safe_file_stem(name, "certificate") else None
        except (InvalidInputError, DeployError):
            return False
        return marker is not None and marker["owner_id"] != _owner_id(binding.live)

    def _public(self, name: str, field: str) -> Path:
        return self.directory / f"{name}{SUFFIXES[field]}"

    def _home(self, name: str) -> Path:
        return self.directory / STORE / name

    def _ours(self, name: str, public: Path) -> bool:
        """Whether `public` is the link a deploy of `name` makes."""
        return _readlink(public) == f"{STORE}/{name}/{CURRENT}/{public.name}"

    def _read_marker(self, name: str) -> dict[str, Any] | None:
        path = self._home(name) / MARKER
        raw = read_or_none(path)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("owner_id"), str) or not data["owner_id"]:
                raise ValueError(path)
        except ValueError:
            raise DeployError(f"files: {path} is not a certplane owner marker; delete it if no other binding writes "
                              f"{self.directory}/{name}.*, and run again") from None
        return data

    def _claim(self, binding: Binding, bundle: Bundle) -> tuple[str, dict[str, Any] | None]:
        """The owner id this deploy writes as, and the marker it takes over (if it does); DeployError when the
        paths belong to another binding. See Ownership in the module docstring."""
        name, ours = bundle.name, _owner_id(binding.live)
        marker = self._read_marker(name)
        if marker is None:
            return ours or secrets.token_hex(8), None
        if marker["owner_id"] == ours:
            return ours, None
        where, other = f"{self.directory}/{name}.*", str(marker.get("binding_id") or "unknown")
        if ours:
            raise DeployError(f"files: {where} were taken over by binding {other} (with the same certificate, "
                              f"{marker.get('deployed_at', 'at an unknown time')}): two bindings write the same "
                              f"files; point one of the targets at another directory. Nothing was changed")
        if marker.get("fingerprint") == bundle.fingerprint_sha256:
            return secrets.token_hex(8), marker  # this very certificate: a renamed target, a replacement
        who = ("another instance of it: another stack, or state that is gone" if other == binding.binding_id
               else "another target of this stack, or another stack")
        raise DeployError(f"files: {where} belong to binding {other} ({who}), which deployed "
                          f"{_short(marker.get('fingerprint'))} there at {marker.get('deployed_at', '?')}; give this "
                          f"target another directory, or, if binding {other} no longer exists or is being replaced "
                          f"by this one, delete {self._home(name) / MARKER} and run again. Nothing was changed")

    def _switch(self, binding: Binding, bundle: Bundle, paths: Mapping[str, Path], contents: Mapping[str, bytes],
                owner_id: str, undo: _Undo) -> None:
        """Write the new set into a version of its own and switch `current` to it; every change is recorded in
        `undo`, so a failure here or in the reload puts back what was there."""
        name, home = bundle.name, self._home(bundle.name)
        current = home / CURRENT
        undo.mkdir(self.directory / STORE, 0o711)
        undo.mkdir(home, 0o700)
        self._own_dir(home)
        keep = {_readlink(current) or ""}
        # Plain files at the public paths (an earlier release's, or your own): copied into a version with every
        # file readable now, switched to, and replaced by links, contents unchanged: the set switches at once.
        foreign = {f: p for f, p in paths.items() if not self._ours(name, p) and p.exists()}
        if foreign:
            adopted = self._new_version(home, "adopted", undo)
            keep.add(adopted.name)
            for field in SUFFIXES:
                public = self._public(name, field)
                if field in paths or self._ours(name, public):
                    _copy_into(public, adopted / public.name)
            fsync_dir(adopted)
            undo.link(current, adopted.name)
            for field, public in foreign.items():
                undo.replace(public, adopted / public.name)
                _symlink(public, f"{STORE}/{name}/{CURRENT}/{public.name}", self.uid, self.gid)
        version = self._new_version(home, bundle.fingerprint_sha256.replace(":", "")[:8].lower(), undo)
        keep.add(version.name)
        for field, data in contents.items():
            mode = self.key_mode if field in KEY_FILES else self.mode
            atomic_write(version / paths[field].name, data, mode, uid=self.uid, gid=self.gid)
        fsync_dir(version)
        undo.rewrite(home / MARKER)
        atomic_write(home / MARKER, _marker_bytes({
            "binding_id": binding.binding_id, "owner_id": owner_id, "certificate": name,
            "fingerprint": bundle.fingerprint_sha256, "deployed_at": clock.rfc3339(clock.now())}), 0o644)
        undo.link(current, version.name)  # the switch
        fsync_dir(home)
        for public in paths.values():  # renamed into place again: a watcher's event comes after the switch
            undo.link(public, f"{STORE}/{name}/{CURRENT}/{public.name}", self.uid, self.gid)
        for field in SUFFIXES.keys() - paths.keys():  # formats no longer written
            public = self._public(name, field)
            if self._ours(name, public):
                undo.link(public, None)
            elif binding.live.get(field) == str(public) and public.is_file() and not public.is_symlink():
                undo.replace(public, home / f".dropped{public.suffix}")  # an earlier release's plain file
        fsync_dir(self.directory)
        undo.after(lambda: _prune(home, keep))

    def _new_version(self, home: Path, tag: str, undo: _Undo) -> Path:
        stamp = clock.real_now().strftime("%Y%m%dT%H%M%S.%fZ")
        version = Path(tempfile.mkdtemp(prefix=f"{stamp}-{tag}-", dir=home))  # 0700, a name of its own
        undo.push(f"delete {version}", lambda: shutil.rmtree(version))
        self._own_dir(version)
        return version

    def _own_dir(self, path: Path) -> None:
        if self.uid != -1 or self.gid != -1:
            os.chown(path, self.uid, self.gid)
        os.chmod(path, self.dir_mode)

    def _unlink_listed(self, live: Mapping[str, Any]) -> None:
        """The files a deploy listed in `live` (an earlier release's plain files), never beyond the directory."""
        for key, path in live.items():
            if key.endswith("_file") and isinstance(path, str) and Path(path).parent == self.directory \
                    and not Path(path).is_dir():
                Path(path).unlink(missing_ok=True)

    def _render(self, bundle: Bundle, paths: Mapping[str, Path]) -> dict[str, bytes]:
        out = {"cert_file": bundle.cert_pem.encode(), "chain_file": bundle.chain_pem.encode(),
               "fullchain_file": bundle.fullchain_pem.encode(), "key_file": bundle.key_pem.encode()}
        if {"pkcs12_file", "jks_file"} & set(paths):
            if not bundle.keystore_password:
                raise DeployError("files: pkcs12/jks need the certificate's keystore_password")
            try:
                key = keys.load_private_key(bundle.key_pem)
            except InvalidInputError:
                raise DeployError("files: the private key is not a PEM key") from None
            leaf, *chain = load_certificates(bundle.fullchain_pem)
            if "pkcs12_file" in paths:
                out["pkcs12_file"] = fmt.pkcs12_bytes(key, leaf, chain, bundle.keystore_password, bundle.name)
            if "jks_file" in paths:
                out["jks_file"] = fmt.jks_bytes(key, leaf, chain, bundle.keystore_password, bundle.name)
        return out

    def _reload(self) -> None:
        if not self.reload_command:
            return
        code, lines = run(self.reload_command, timeout=self.reload_timeout, what="files: reload command")
        if code != 0:
            last = lines[-1] if lines else "no output"
            raise DeployError(f"files: reload command {self.reload_command[0]} failed (exit {code}): {last}; "
                              "previous files restored")


class _Undo:
    """What a deploy changed, put back in reverse order when anything after fails; and what to tidy once it
    succeeded (never failing it: the new set is live)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], None]]] = []
        self.tidy: list[Callable[[], None]] = []

    def push(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def after(self, step: Callable[[], None]) -> None:
        self.tidy.append(step)

    def mkdir(self, path: Path, mode: int) -> None:
        if path.is_dir():
            return
        path.mkdir(mode=0o700)
        self.push(f"delete {path}", lambda: shutil.rmtree(path))
        os.chmod(path, mode)

    def link(self, path: Path, text: str | None, uid: int = -1, gid: int = -1) -> None:
        """Make `path` a symlink to `text` (None: delete it), by rename; undone by putting back the link that was
        there, or none. A plain file there is moved away first with `replace`."""
        before = _readlink(path)
        if before is None and os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "not a link certplane made", str(path))  # replace() moves those
        self.push(f"put back {path}", lambda: _symlink(path, before) if before is not None else
                  path.unlink(missing_ok=True))
        if text is None:
            path.unlink()
        else:
            _symlink(path, text, uid, gid)

    def replace(self, path: Path, keep: Path) -> None:
        """Before `path` (a plain file, or a link of someone else's) changes: put it back from `keep` (a copy
        already made, or, when `keep` does not exist yet, `path` itself moved there now)."""
        before = _readlink(path)
        if before is not None:
            self.push(f"put back {path}", lambda: _symlink(path, before))
            if not keep.exists():
                path.unlink()
            return
        if not keep.exists():
            os.replace(path, keep)
        self.push(f"put back {path}", lambda: os.replace(keep, path))

    def rewrite(self, path: Path) -> None:
        data = read_or_none(path)
        self.push(f"put back {path}", lambda: atomic_write(path, data, 0o644) if data is not None else
                  path.unlink(missing_ok=True))

    def run(self) -> str:
        """Undo every step; the first that failed, or ''."""
        failed = ""
        for what, step in reversed(self.steps):
            try:
                step()
            except OSError as err:
                failed = failed or f"{what}: {err.strerror or err}"
        self.steps.clear()
        return failed

    def commit(self) -> None:
        self.steps.clear()
        for step in self.tidy:
            with contextlib.suppress(OSError):
                step()


def _readlink(path: Path) -> str | None:
    """A symlink's text, or None (absent, or not a symlink)."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def _symlink(path: Path, text: str, uid: int = -1, gid: int = -1) -> None:
    """Point `path` at `text` by renaming a new link over it: readers see the old target or the new one."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.link-tmp"
    os.symlink(text, tmp)
    try:
        if uid != -1 or gid != -1:
            os.lchown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _copy_into(public: Path, copy: Path) -> None:
    """What a reader of `public` gets now (through any links), with its mode and, where permitted, owner."""
    try:
        data, st = public.read_bytes(), public.stat()
    except FileNotFoundError:  # absent, or a link to nothing
        return
    atomic_write(copy, data, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(copy, st.st_uid, st.st_gid)


def _prune(home: Path, keep: set[str]) -> None:
    """Delete versions (and leftovers) but the ones in `keep`: the new set, the one it replaced (a reader may
    be half-way through it) and an adopted copy of plain files."""
    for entry in home.iterdir():
        if entry.name in keep or entry.name in (CURRENT, MARKER):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _owner_id(live: Mapping[str, Any]) -> str:
    return str(live.get("owner_id") or "")


def _marker_bytes(marker: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(marker), indent=2, sort_keys=True) + "\n").encode()


def _short(fingerprint: Any) -> str:
    """The first 8 bytes of a fingerprint: enough to tell certificates apart in a one-line message."""
    text = str(fingerprint or "an unknown certificate")
    return text[:23] + "…" if len(text) > 23 else text


def _where(err: OSError, directory: Path, name: str) -> str:
    return f"{err.filename or f'{directory}/{name}.*'}: {err.strerror or err}"


def _name_from_live(live: Mapping[str, Any]) -> str:
    """The certificate name from a recorded `<name>.fullchain.pem` path."""
    path = str(live.get("fullchain_file") or "")
    return Path(path).name.removesuffix(".fullchain.pem") if path else ""


PLUGIN = TargetPlugin(KIND, FilesSettings, FilesTarget)
