"""files: write the bundle into a directory for software certplane does not drive itself (HAProxy, Java, a
sidecar), then run its optional reload command. observe() reads the certificate file back."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import field_validator

from .. import formats as fmt
from .. import keys
from ..certificates import fingerprint_of_pem, load_certificates
from ..errors import DeployError, InvalidInputError
from ..validation import LOCATION, Argv, ProjectPath, number
from . import base
from ._support import FileSet, atomic_write, locked, read_or_none, run
from .base import DEFAULT, Binding, Bundle, TargetPlugin, TargetSettings

KIND = "files"
FILE_FORMATS = ("pem", "pkcs12", "jks")


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

    def check_binding(self, binding: Binding) -> None:
        return None

    def paths(self, bundle_name: str) -> dict[str, Path]:
        d = self.directory
        out = {"cert_file": d / f"{bundle_name}.crt", "chain_file": d / f"{bundle_name}.chain.pem",
               "fullchain_file": d / f"{bundle_name}.fullchain.pem", "key_file": d / f"{bundle_name}.key"}
        if "pkcs12" in self.formats:
            out["pkcs12_file"] = d / f"{bundle_name}.p12"
        if "jks" in self.formats:
            out["jks_file"] = d / f"{bundle_name}.jks"
        return out

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        paths = self.paths(bundle.name)
        contents = self._render(bundle, paths)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with locked(self.directory / ".certplane.lock"):
                snapshot = FileSet(list(paths.values()))
                try:
                    for field, data in contents.items():
                        mode = self.key_mode if field in ("key_file", "pkcs12_file", "jks_file") else self.mode
                        atomic_write(paths[field], data, mode, uid=self.uid, gid=self.gid)
                    self._reload()
                except BaseException:
                    snapshot.restore()
                    raise
        except OSError as err:  # disk full, EPERM from `owner:`, a file where the directory should be
            where = err.filename or self.directory
            raise DeployError(f"files: cannot write {where}: {err.strerror or err}; previous files restored") \
                from None
        return {"name": bundle.name, "directory": str(self.directory), **{k: str(v) for k, v in paths.items()}}

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        got = self.observe_name(bundle.name)
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"files: {self.paths(bundle.name)['fullchain_file']} holds {got or 'no certificate'}, "
                              f"expected {bundle.fingerprint_sha256}")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        name = str(binding.live.get("name") or "") or _name_from_live(binding.live)
        return {DEFAULT: self.observe_name(name) if name else None}

    def observe_name(self, bundle_name: str) -> str | None:
        path = self.paths(bundle_name)["fullchain_file"]
        try:
            return fingerprint_of_pem(read_or_none(path))
        except OSError as err:
            raise DeployError(f"files: cannot read {path}: {err.strerror or err}") from None

    def remove(self, binding: Binding) -> None:
        """Deletes the files; runs no reload, since the consumer's config may still point at them."""
        for key, path in binding.live.items():
            if key.endswith("_file") and isinstance(path, str) and Path(path).parent == self.directory:
                Path(path).unlink(missing_ok=True)

    # --- mechanics ------------------------------------------------------------------------------------------

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


def _name_from_live(live: Mapping[str, Any]) -> str:
    """The certificate name from a recorded `<name>.fullchain.pem` path."""
    path = str(live.get("fullchain_file") or "")
    return Path(path).name.removesuffix(".fullchain.pem") if path else ""


PLUGIN = TargetPlugin(KIND, FilesSettings, FilesTarget)
