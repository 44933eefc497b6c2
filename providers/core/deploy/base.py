"""The deploy-target contract: what to deploy (Bundle), where (Binding), and the verbs every target has.

Targets are plain objects built from validated settings; they hold no clients (those are created per call) and
never log, echo or return the private key. A target module declares its settings model and a `PLUGIN`;
optional capabilities (`ServesTls`) are small protocols a target class may also implement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..certificates import fingerprint_sha256, load_certificates
from ..errors import InvalidInputError
from ..plugins import Factory
from ..validation import Model

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
        """What is live, for drift and `certplane check --probe`: where (a server name, "default", or a place
        the target names, e.g. `resource 123`) -> leaf fingerprint, None when nothing is served there."""

    def remove(self, binding: Binding) -> None:
        """Stop serving the binding's certificate without leaving the endpoint with no certificate at all."""


# --- plug-in entry and optional capabilities ------------------------------------------------------------------

class TargetSettings(Model):
    """Base of every target's settings model. Mark with LOCATION the settings that say *where* a binding lives
    (changing one moves it: create the new, then remove the old) and type paths as ProjectPath."""


TargetPlugin = Factory[Any, DeployTarget]
"""One deploy target: its `type` in `certplane:targets`, its settings model, and how to build it."""


@dataclass(frozen=True)
class Endpoint:
    """A TLS endpoint a client can check: connect to host:port, send server_name as SNI."""

    host: str
    port: int
    server_name: str | None = None


@runtime_checkable
class ServesTls(Protocol):
    """A target that terminates TLS itself (nginx, HAProxy): its endpoints can be probed with a handshake."""

    def endpoints(self, server_names: Sequence[str]) -> list[Endpoint]:
        """Where each of `server_names` is served (wildcards as a name they match)."""


@runtime_checkable
class RetiresReplaced(Protocol):
    """A target whose deploy keeps the certificate it replaced, so a rollback can point back at it (a cloud
    certificate store that cannot re-import into the same id): `retire` deletes that one once the new one is
    verified, and returns the live facts to keep (what it could not delete yet stays listed, for next time).
    It never fails the deploy: the new certificate is live and verified."""

    def retire(self, binding: Binding) -> dict[str, Any]:
        """`binding.live` as deploy returned it -> the live facts to keep."""


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
