"""certplane's small exception tree.

Every message is one line a user can act on, names the thing that is wrong, and never contains key material.
Retryable failures (a CA briefly down, rate limited) are kept apart from permanent ones (bad input).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class CertplaneError(Exception):
    """Base of every error certplane raises on purpose; its message is shown to the user as is."""


class InvalidInputError(CertplaneError, ValueError):
    """The user's input is wrong; retrying will not help. `field` names where the mistake is, as a dotted path
    relative to whatever the caller validated (`key.size`); `within("certificates.www")` places it.

    It is a ValueError so a rule raised inside a pydantic validator reaches the user with its own field and
    wording (see providers.core.validation)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def within(self, prefix: str) -> InvalidInputError:
        """The same problem, its field seen from `prefix` (`key.size` within `certificates.www`)."""
        return InvalidInputError(join_field(prefix, self.field), self.reason)


class InputProblems(CertplaneError):
    """Several input problems found at once (config and `check` report all of them, one line each)."""

    def __init__(self, problems: Iterable[InvalidInputError]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def within(self, prefix: str) -> InputProblems:
        return InputProblems(p.within(prefix) for p in self.problems)

    @property
    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class BundleError(CertplaneError):
    """An uploaded certificate bundle (leaf, chain, key) is unusable."""


class RetryableError(CertplaneError):
    """A transient failure: the next `pulumi up` may succeed. `retry_after` is in seconds when known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeployError(CertplaneError):
    """Deploying, verifying or removing a certificate at a target (nginx, a load balancer) failed; the message
    starts with the target kind and never contains key material."""


class DeployFailed(DeployError):
    """A deploy that failed, saying what it left for the binding provider (providers/binding.py _deploy_verified) (which reads these two attributes):
    `nothing_changed` (it failed before changing anything, or undid what it did: there is nothing to roll back),
    or `live` (the live facts of what it did change, as a successful deploy returns them, so rollback can undo
    it all, the certificate it imported included)."""

    def __init__(self, message: str, *, nothing_changed: bool = False, live: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.nothing_changed = nothing_changed
        self.live = dict(live) if live is not None else None


class KeyStoreError(CertplaneError):
    """A private key kept outside state (a key file, a secret) cannot be written, read or removed. The message
    names where (the path, the secret ARN) and what is wrong, never key material: the certificate it belongs to
    cannot be issued or deployed until the store is fixed, so the operator must be able to act on the line."""


class KeyStoreUnavailable(KeyStoreError, RetryableError):
    """The key store could not be reached (AWS throttled, timed out, down): nothing is known to be wrong with
    the key, so the next `pulumi up` may succeed."""


def join_field(*parts: str) -> str:
    """`join_field("certificates.www", "", "key.size")` -> `certificates.www.key.size`."""
    return ".".join(p for p in parts if p)
