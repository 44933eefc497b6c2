"""certplane's small exception tree.

Every message is one line a user can act on, names the thing that is wrong, and never contains key material.
Retryable failures (a CA briefly down, rate limited) are kept apart from permanent ones (bad input).
"""

from __future__ import annotations


class CertplaneError(Exception):
    """Base of every error certplane raises on purpose; its message is shown to the user as is."""


class InvalidInputError(CertplaneError):
    """The user's input is wrong; retrying will not help. `field` names where the mistake is."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


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
