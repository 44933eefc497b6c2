"""When to renew, as a chain of small named checks over a certificate's lifetime and an injected `now`.

Default: at two thirds of the lifetime (certbot 4+, lego, cert-manager, certmagic). `before_days` or
`at_fraction` override it; an ACME Renewal Information window (RFC 9773) wins when the CA offers one. Each check
is `(Lifetime, now) -> reason | None` (cert-manager's policy chain); the first reason is the line `pulumi
preview` shows. Checks on inputs (names, key, issuer changed) live with the resources that own those inputs and
share the same shape (`providers/certificate.py`).

Jitter (`jitter`, default 0.1): a certificate renews up to that fraction of its lifetime *earlier* than the
policy says, at a point fixed by a hash of its name, so a fleet issued in one `up` renews over several days
instead of all in one later `up`. Never later than the policy time, never earlier than halfway from issuance to
it; an ARI window is the CA's own spread and is used as it is. `reissue_before` re-issues what was issued before
an instant (a drill, a CA incident). docs/RENEWAL.md has the rules and an example.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, field_validator, model_validator

from .clock import days_between, minute, parse_rfc3339, rfc3339
from .errors import InvalidInputError
from .validation import Model, first_problem, parse

DEFAULT_FRACTION = 2 / 3
DEFAULT_JITTER = 0.1  # of the lifetime: a 90-day certificate renews between day 51 and day 60
MAX_JITTER = 0.5


def window_too_long(before_days: float | None, lifetime_days: float | None) -> str | None:
    """Why a `before_days` window is no use for a lifetime (it would renew on every run), or None."""
    if before_days is None or lifetime_days is None or before_days < lifetime_days:
        return None
    return (f"renewal {before_days:g} days before expiry is not shorter than the lifetime of {lifetime_days:g} "
            "days: it would renew on every run")


class RenewalPolicy(Model):
    """`before_days` (renew that many days before expiry) or `at_fraction` (of the lifetime); neither: 2/3.
    `jitter` (0 to 0.5 of the lifetime, default 0.1; 0 turns it off): how much earlier, at most, a certificate
    may renew so a fleet spreads out (see `jitter_offset`)."""

    before_days: float | None = None
    at_fraction: float | None = None
    jitter: float = DEFAULT_JITTER

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

    @field_validator("jitter", mode="before")
    @classmethod
    def _jitter(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_JITTER:
            raise InvalidInputError("", f"must be a fraction of the lifetime from 0 (off) to {MAX_JITTER:g}, "
                                        f"e.g. {DEFAULT_JITTER:g}")
        return float(value)

    @model_validator(mode="after")
    def _one(self) -> RenewalPolicy:
        if self.before_days is not None and self.at_fraction is not None:
            raise InvalidInputError("", "give either before_days or at_fraction, not both")
        return self

    @classmethod
    def parse(cls, raw: Any, field: str = "renew") -> RenewalPolicy:
        """Validate a `{before_days | at_fraction, jitter}` mapping; raises InvalidInputError naming the field."""
        return first_problem(lambda: parse(cls, raw or {}, field=field))

    def label(self) -> str:
        if self.before_days is not None:
            return f"{self.before_days:g} days before expiry"
        if self.at_fraction is not None:
            return f"at {self.at_fraction:.0%} of the lifetime"
        return "at two thirds of the lifetime"


@dataclass(frozen=True)
class AriWindow:
    """RFC 9773 suggested window; certplane renews at its start (deterministic, no jitter of its own: the CA
    already spreads its windows)."""

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
    reissue_before: dt.datetime | None = None  # re-issue if issued before this instant
    issued_at: dt.datetime | None = None  # when certplane issued it (None for older state: not_before stands in)

    @property
    def renew_at(self) -> dt.datetime:
        return renewal_time(self.not_before, self.not_after, self.policy, self.ari_window, name=self.name)

    @property
    def jitter(self) -> dt.timedelta:
        """How much earlier than the policy time it renews (zero under an ARI window)."""
        if self.ari_window is not None:
            return dt.timedelta(0)
        return jitter_offset(self.name, self.not_before, self.not_after, self.policy)

    @property
    def expiry(self) -> str:
        return minute(self.not_after)


def renewal_time(not_before: dt.datetime, not_after: dt.datetime, policy: RenewalPolicy,
                 ari_window: AriWindow | None = None, *, name: str | None = None) -> dt.datetime:
    """When a certificate renews: the start of the CA's ARI window when it offers one; else the policy time,
    moved earlier by the jitter of the certificate `name` (no name: the policy time itself)."""
    if ari_window is not None:
        return ari_window.start
    at = policy_time(not_before, not_after, policy)
    if name is None:
        return at
    return at - jitter_offset(name, not_before, not_after, policy)


def policy_time(not_before: dt.datetime, not_after: dt.datetime, policy: RenewalPolicy) -> dt.datetime:
    """The configured renewal time, before jitter."""
    lifetime = not_after - not_before
    if policy.before_days is not None:
        # Never earlier than a third of the lifetime: a 6-day certificate with before_days=30 renews at day 2.
        return max(not_after - dt.timedelta(days=policy.before_days), not_before + lifetime / 3)
    fraction = policy.at_fraction if policy.at_fraction is not None else DEFAULT_FRACTION
    return not_before + lifetime * fraction


def jitter_unit(name: str) -> float:
    """A fixed point in [0, 1) for a certificate name (SHA-256 of it): the same on every run and every renewal,
    spread evenly over a fleet's names."""
    digest = hashlib.sha256(f"certplane-renewal-jitter:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def jitter_offset(name: str, not_before: dt.datetime, not_after: dt.datetime,
                  policy: RenewalPolicy) -> dt.timedelta:
    """How much earlier than `policy_time` the certificate `name` renews: `jitter_unit(name)` of the jitter span
    (`policy.jitter` of the lifetime), in whole seconds, and never more than half the time from `not_before` to
    the policy time (a renewal never comes right after issuance)."""
    if policy.jitter <= 0:
        return dt.timedelta(0)
    at = policy_time(not_before, not_after, policy)
    span = min((not_after - not_before) * policy.jitter, (at - not_before) / 2)
    return dt.timedelta(seconds=int(jitter_unit(name) * max(span.total_seconds(), 0)))


def check_instant(text: str) -> str:
    """An RFC 3339 instant, kept as given; raises InvalidInputError on no field (the caller names it)."""
    try:
        parse_rfc3339(text)
    except ValueError:
        raise InvalidInputError("", f"{text!r} is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z") from None
    return text


Instant = Annotated[str, AfterValidator(check_instant)]
"""A `reissue_before` field: an RFC 3339 instant (whether it has passed is `parse_reissue_before`'s check, made
where the clock is read: at preview, never when stored inputs are decoded)."""


def parse_reissue_before(text: str, now: dt.datetime) -> dt.datetime:
    """A `reissue_before` setting: an RFC 3339 instant that has passed (a future one would re-issue on every
    `pulumi up` until then). Raises InvalidInputError on no field (the caller names it)."""
    at = parse_rfc3339(check_instant(text))
    if at > now:
        raise InvalidInputError("", f"{rfc3339(at)} is in the future: every `pulumi up` until then would re-issue "
                                    "again; give a time that has passed")
    return at


# --- the chain ----------------------------------------------------------------------------------------------

Check = Callable[[Lifetime, dt.datetime], "str | None"]


def expired(life: Lifetime, now: dt.datetime) -> str | None:
    return f"{life.name}: expired on {life.expiry}; renewing" if now >= life.not_after else None


def reissue_requested(life: Lifetime, now: dt.datetime) -> str | None:
    """`reissue_before`: issued (by certplane's record, else by its not_before) before that instant."""
    before = life.reissue_before
    if before is None or now < before:
        return None
    issued = life.issued_at or life.not_before
    if issued >= before:
        return None
    return (f"{life.name}: reissue_before {rfc3339(before)}: issued {minute(issued)} before it; re-issuing with a "
            "new key")


def ari_window_open(life: Lifetime, now: dt.datetime) -> str | None:
    if life.ari_window is None or now < life.ari_window.start:
        return None
    return _due(life, now, "ACME renewal info window")


def renewal_window_open(life: Lifetime, now: dt.datetime) -> str | None:
    if life.ari_window is not None or now < life.renew_at:
        return None
    early = life.jitter
    source = life.policy.label() + (f", {_span(early)} earlier by jitter" if early else "")
    return _due(life, now, source)


CHECKS: tuple[Check, ...] = (expired, reissue_requested, ari_window_open, renewal_window_open)


def first_reason(checks: Sequence[Check], life: Lifetime, now: dt.datetime) -> str | None:
    for check in checks:
        reason = check(life, now)
        if reason:
            return reason
    return None


def _due(life: Lifetime, now: dt.datetime, source: str) -> str:
    return (f"{life.name}: renewal due since {minute(life.renew_at)} ({source}); expires {life.expiry}, "
            f"{days_between(now, life.not_after):.1f} days left")


def _span(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours"


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


__all__ = ["AriWindow", "CHECKS", "Check", "DEFAULT_JITTER", "Instant", "Lifetime", "RenewalDecision",
           "RenewalPolicy", "ari_window_open", "check_instant", "expired", "first_reason", "jitter_offset",
           "jitter_unit", "parse_reissue_before", "policy_time", "reissue_requested", "renewal_decision",
           "renewal_time", "renewal_window_open"]
