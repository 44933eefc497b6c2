"""files: write the bundle into a directory for software certplane does not drive itself (HAProxy, Java, a
sidecar), then run its optional reload command. observe() reads the certificate file back."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import formats as fmt
from .. import keys
from ..certificates import load_certificates
from ..errors import DeployError, InvalidInputError
from . import base
from ._support import FileSet, atomic_write, fingerprint_of_pem, locked, read_or_none, run
from .base import DEFAULT, Binding, Bundle

KIND = "files"
SETTINGS = ("directory", "mode", "key_mode", "owner", "group", "formats", "reload_command", "reload_timeout")
FILE_FORMATS = ("pem", "pkcs12", "jks")


def _mode(settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key)
    if value is None:
        return default
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise InvalidInputError(key, f"{value!r} is not an octal file mode like \"0640\"") from None
    if not 0 <= mode <= 0o777:
        raise InvalidInputError(key, f"{value!r} is not an octal file mode like \"0640\"")
    return mode


class FilesTarget(base.RedeployRollback):
    """Settings: directory; optional mode ("0640"), key_mode ("0600"), owner, group, formats ([pem]),
    reload_command (argv list), reload_timeout (30 s). Files are named after the certificate."""

    kind = KIND

    def __init__(self, settings: Mapping[str, Any]) -> None:
        base.reject_unknown(settings, SETTINGS)
        self.directory = Path(base.required_text(settings, "directory")).expanduser().resolve()
        self.mode = _mode(settings, "mode", 0o640)
        self.key_mode = _mode(settings, "key_mode", 0o600)
        if self.key_mode & 0o007:
            raise InvalidInputError("key_mode", "a private key must not be readable or writable by others")
        self.uid = self._lookup(settings, "owner", lambda n: pwd.getpwnam(n).pw_uid)
        self.gid = self._lookup(settings, "group", lambda n: grp.getgrnam(n).gr_gid)
        raw = settings.get("formats") or ["pem"]
        if not isinstance(raw, (list, tuple)) or not all(f in FILE_FORMATS for f in raw):
            raise InvalidInputError("formats", f"must be a list of {', '.join(FILE_FORMATS)}")
        self.formats = tuple(raw)
        self.reload_command = base.argv(settings, "reload_command")
        self.reload_timeout = base.number(settings, "reload_timeout", 30.0, minimum=1.0)

    @staticmethod
    def _lookup(settings: Mapping[str, Any], key: str, resolve: Any) -> int:
        name = base.text(settings, key)
        if name is None:
            return -1
        try:
            return int(resolve(name))
        except KeyError:
            raise InvalidInputError(key, f"no such {'user' if key == 'owner' else 'group'} {name!r}") from None

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
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = self.paths(bundle.name)
        contents = self._render(bundle, paths)
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
        return fingerprint_of_pem(read_or_none(self.paths(bundle_name)["fullchain_file"]))

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
