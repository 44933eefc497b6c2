"""The deploy-target contract: what to deploy (Bundle), where (Binding), and the five verbs every target has.

Targets are plain objects built from settings; they hold no clients (those are created per call) and never log,
echo or return the private key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..certificates import fingerprint_sha256, load_certificates
from ..errors import InvalidInputError

DEFAULT = "default"  # observe() key for targets that serve one certificate regardless of the name asked for
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Bundle:
    """One certificate as deployed: leaf, chain (issuer first), key. `key_pem` is secret: kept out of repr."""

    name: str
    cert_pem: str
    chain_pem: str
    key_pem: str = field(repr=False)
    fingerprint_sha256: str
    keystore_password: str | None = field(default=None, repr=False)  # for pkcs12/jks outputs

    @classmethod
    def from_pems(cls, name: str, cert_pem: str, chain_pem: str, key_pem: str,
                  keystore_password: str | None = None) -> Bundle:
        """Build a bundle and compute the leaf fingerprint, so callers cannot pass a stale one."""
        certs = load_certificates(cert_pem)
        if not certs:
            raise InvalidInputError("cert_pem", "is not a PEM certificate")
        return cls(name, cert_pem, chain_pem or "", key_pem, fingerprint_sha256(certs[0]), keystore_password)

    @property
    def fullchain_pem(self) -> str:
        """Leaf first, then the chain: what TLS servers send."""
        leaf = self.cert_pem if self.cert_pem.endswith("\n") else self.cert_pem + "\n"
        return leaf + self.chain_pem


@dataclass(frozen=True)
class Binding:
    """Where one certificate is served on one target.

    `live` carries the facts the previous deploy returned (paths, ARNs, cloud ids) so the next deploy can
    re-import into the same ARN and remove() can find what to detach; it is empty on the first deploy.
    """

    binding_id: str
    server_names: tuple[str, ...] = ()
    sni: bool = False
    live: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not _SAFE_ID.match(self.binding_id):
            raise InvalidInputError("binding_id", f"{self.binding_id!r} must be letters, digits, '.', '_' or '-'")

    def with_live(self, live: Mapping[str, Any]) -> Binding:
        return Binding(self.binding_id, self.server_names, self.sni, dict(live))


@runtime_checkable
class DeployTarget(Protocol):
    """A place where TLS terminates. Every method is idempotent and raises DeployError (one line) on failure."""

    kind: str

    def check_binding(self, binding: Binding) -> None:
        """Raise InvalidInputError if this target cannot serve `binding` (e.g. nginx needs server names)."""

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        """Make `bundle` live for `binding`; return plain live facts (paths, ARNs) to keep in state.
        A deploy the endpoint rejects (bad key, failed config test) leaves what was served before in place;
        after any other failure the caller rolls back."""

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        """Prove, from the outside where possible, that `bundle` is what is served now."""

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """Put `previous` back (or remove the binding when there was none) after a failed verify."""

    def observe(self, binding: Binding) -> dict[str, str | None]:
        """What is live: server name (or "default") -> leaf fingerprint, None when nothing is served. For drift."""

    def remove(self, binding: Binding) -> None:
        """Stop serving the binding's certificate without leaving the endpoint with no certificate at all."""


# --- settings readers: each raises InvalidInputError naming the field --------------------------------------

def text(settings: Mapping[str, Any], key: str, *, default: str | None = None, required: bool = False) -> str | None:
    value = settings.get(key)
    if value is None or value == "":
        if required:
            raise InvalidInputError(key, "is required")
        return default
    if not isinstance(value, str):
        raise InvalidInputError(key, "must be a string")
    return value


def required_text(settings: Mapping[str, Any], key: str) -> str:
    value = text(settings, key, required=True)
    assert value is not None
    return value


def argv(settings: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """A command as a list of arguments (no shell): a string would be ambiguous to split."""
    value = settings.get(key)
    if value is None or value == []:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(a, str) and a for a in value):
        raise InvalidInputError(key, "must be a command as a list of arguments, e.g. [systemctl, reload, haproxy]")
    return tuple(value)


def number(settings: Mapping[str, Any], key: str, default: float, *, minimum: float = 0.0) -> float:
    value = settings.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise InvalidInputError(key, f"must be a number >= {minimum:g}")
    return float(value)


def whole(settings: Mapping[str, Any], key: str, default: int, *, minimum: int = 1, maximum: int = 1 << 31) -> int:
    value = settings.get(key, default)
    if isinstance(value, float) and value.is_integer():  # numbers cross the Pulumi wire as doubles
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInputError(key, f"must be a whole number between {minimum} and {maximum}")
    return value


def reject_unknown(settings: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """Typos in settings fail loudly instead of being ignored."""
    for key in settings:
        if key not in known and key != "type":
            raise InvalidInputError(key, f"unknown setting (known: {', '.join(known)})")


class RedeployRollback:
    """The rollback every target here uses: put the previous bundle back by deploying it again, or remove the
    binding when there was none. Targets that can restore more cheaply override it."""

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        raise NotImplementedError

    def remove(self, binding: Binding) -> None:
        raise NotImplementedError

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        if previous is None:
            self.remove(binding)
        else:
            self.deploy(binding, previous)
