"""When to renew, as a chain of small named checks over a certificate's lifetime and an injected `now`.

Default: at two thirds of the lifetime (certbot 4+, lego, cert-manager, certmagic). `before_days` or
`at_fraction` override it; an ACME Renewal Information window (RFC 9773) wins when the CA offers one. Each check
is `(Lifetime, now) -> reason | None` (cert-manager's policy chain); the first reason is the line `pulumi
preview` shows. Checks on inputs (names, key, issuer changed) live with the resources that own those inputs and
share the same shape (`providers/certificate.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import field_validator, model_validator

from .clock import days_between, minute
from .errors import InvalidInputError
from .validation import Model, first_problem, parse

DEFAULT_FRACTION = 2 / 3


def window_too_long(before_days: float | None, lifetime_days: float | None) -> str | None:
    """Why a `before_days` window is no use for a lifetime (it would renew on every run), or None."""
    if before_days is None or lifetime_days is None or before_days < lifetime_days:
        return None
    return (f"renewal {before_days:g} days before expiry is not shorter than the lifetime of {lifetime_days:g} "
            "days: it would renew on every run")


class RenewalPolicy(Model):
    """`before_days` (renew that many days before expiry) or `at_fraction` (of the lifetime); neither: 2/3."""

    before_days: float | None = None
    at_fraction: float | None = None

    @field_validator("before_days", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise InvalidInputError("", "must be a positive number of days")
        return value

    @field_validator("at_fraction", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 < value < 1):
            raise InvalidInputError("", "must be between 0 and 1 (exclusive), e.g. 0.667")
        return value

    @model_validator(mode="after")
    def _one(self) -> RenewalPolicy:
        if self.before_days is not None and self.at_fraction is not None:
            raise InvalidInputError("", "give either before_days or at_fraction, not both")
        return self

    @classmethod
    def parse(cls, raw: Any, field: str = "renew") -> RenewalPolicy:
        """Validate a `{before_days | at_fraction}` mapping; raises InvalidInputError naming the field."""
        return first_problem(lambda: parse(cls, raw or {}, field=field))

    def label(self) -> str:
        if self.before_days is not None:
            return f"{self.before_days:g} days before expiry"
        if self.at_fraction is not None:
            return f"at {self.at_fraction:.0%} of the lifetime"
        return "at two thirds of the lifetime"


@dataclass(frozen=True)
class AriWindow:
    """RFC 9773 suggested window; certplane renews at its start (deterministic, no jitter in previews)."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Lifetime:
    """What a renewal decision looks at: one issued certificate and the policy it renews by."""

    name: str
    not_before: dt.datetime
    not_after: dt.datetime
    policy: RenewalPolicy
    ari_window: AriWindow | None = None

    @property
    def renew_at(self) -> dt.datetime:
        return renewal_time(self.not_before, self.not_after, self.policy, self.ari_window)

    @property
    def expiry(self) -> str:
        return minute(self.not_after)


def renewal_time(not_before: dt.datetime, not_after: dt.datetime, policy: RenewalPolicy,
                 ari_window: AriWindow | None = None) -> dt.datetime:
    if ari_window is not None:
        return ari_window.start
    lifetime = not_after - not_before
    if policy.before_days is not None:
        # Never earlier than a third of the lifetime: a 6-day certificate with before_days=30 renews at day 2.
        return max(not_after - dt.timedelta(days=policy.before_days), not_before + lifetime / 3)
    fraction = policy.at_fraction if policy.at_fraction is not None else DEFAULT_FRACTION
    return not_before + lifetime * fraction


# --- the chain ----------------------------------------------------------------------------------------------

Check = Callable[[Lifetime, dt.datetime], "str | None"]


def expired(life: Lifetime, now: dt.datetime) -> str | None:
    return f"{life.name}: expired on {life.expiry}; renewing" if now >= life.not_after else None


def ari_window_open(life: Lifetime, now: dt.datetime) -> str | None:
    if life.ari_window is None or now < life.ari_window.start:
        return None
    return _due(life, now, "ACME renewal info window")


def renewal_window_open(life: Lifetime, now: dt.datetime) -> str | None:
    if life.ari_window is not None or now < life.renew_at:
        return None
    return _due(life, now, life.policy.label())


CHECKS: tuple[Check, ...] = (expired, ari_window_open, renewal_window_open)


def first_reason(checks: Sequence[Check], life: Lifetime, now: dt.datetime) -> str | None:
    for check in checks:
        reason = check(life, now)
        if reason:
            return reason
    return None


def _due(life: Lifetime, now: dt.datetime, source: str) -> str:
    return (f"{life.name}: renewal due since {minute(life.renew_at)} ({source}); expires {life.expiry}, "
            f"{days_between(now, life.not_after):.1f} days left")


@dataclass(frozen=True)
class RenewalDecision:
    due: bool
    reason: str
    renew_at: dt.datetime


def renewal_decision(name: str, not_before: dt.datetime, not_after: dt.datetime, policy: RenewalPolicy,
                     at: dt.datetime, ari_window: AriWindow | None = None) -> RenewalDecision:
    """The chain's verdict at `at`; when nothing is due, the reason says until when the certificate is fine."""
    life = Lifetime(name, not_before, not_after, policy, ari_window)
    reason = first_reason(CHECKS, life, at)
    if reason:
        return RenewalDecision(True, reason, life.renew_at)
    return RenewalDecision(False, f"{name}: valid until {life.expiry}; renews at {minute(life.renew_at)}",
                           life.renew_at)


__all__ = ["AriWindow", "CHECKS", "Check", "Lifetime", "RenewalDecision", "RenewalPolicy", "ari_window_open",
           "expired", "first_reason", "renewal_decision", "renewal_time", "renewal_window_open"]
