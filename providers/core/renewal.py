"""When to renew: a pure function of the certificate's lifetime, the policy and an injectable clock.

Default: at two thirds of the lifetime (certbot 4+, lego, cert-manager, certmagic). `before_days` or
`at_fraction` override it; an ACME Renewal Information window (RFC 9773) wins when the CA offers one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from .errors import InvalidInputError

NOW_ENV = "CERTPLANE_NOW"  # RFC 3339 instant; lets tests and operators time-travel
DEFAULT_FRACTION = 2 / 3


def now() -> dt.datetime:
    """The current time, or the instant in $CERTPLANE_NOW (timezone-aware UTC either way)."""
    fixed = os.environ.get(NOW_ENV)
    if fixed:
        try:
            return dt.datetime.fromisoformat(fixed.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
        except ValueError:
            raise InvalidInputError(NOW_ENV, f"{fixed!r} is not an RFC 3339 time") from None
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class RenewalPolicy:
    before_days: float | None = None
    at_fraction: float | None = None

    @classmethod
    def parse(cls, raw: dict[str, object] | None, field: str = "renew") -> RenewalPolicy:
        raw = dict(raw or {})
        before, fraction = raw.get("before_days"), raw.get("at_fraction")
        if before is not None and fraction is not None:
            raise InvalidInputError(field, "give either before_days or at_fraction, not both")
        if before is not None and (isinstance(before, bool) or not isinstance(before, (int, float)) or before <= 0):
            raise InvalidInputError(f"{field}.before_days", "must be a positive number of days")
        if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1):
            raise InvalidInputError(f"{field}.at_fraction", "must be between 0 and 1 (exclusive), e.g. 0.667")
        return cls(before_days=before, at_fraction=fraction)

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.before_days is not None:
            out["before_days"] = self.before_days
        if self.at_fraction is not None:
            out["at_fraction"] = self.at_fraction
        return out


@dataclass(frozen=True)
class AriWindow:
    """RFC 9773 suggested window; certplane renews at its start (deterministic, no jitter in previews)."""

    start: dt.datetime
    end: dt.datetime


def renewal_time(
    not_before: dt.datetime, not_after: dt.datetime, policy: RenewalPolicy, ari_window: AriWindow | None = None
) -> dt.datetime:
    if ari_window is not None:
        return ari_window.start
    lifetime = not_after - not_before
    if policy.before_days is not None:
        # Never earlier than the issue time: a 6-day certificate with before_days=30 renews at issue + 1/3.
        candidate = not_after - dt.timedelta(days=policy.before_days)
        return max(candidate, not_before + lifetime / 3)
    fraction = policy.at_fraction if policy.at_fraction is not None else DEFAULT_FRACTION
    return not_before + lifetime * fraction


@dataclass(frozen=True)
class RenewalDecision:
    due: bool
    reason: str
    renew_at: dt.datetime


def renewal_decision(
    name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    policy: RenewalPolicy,
    at: dt.datetime,
    ari_window: AriWindow | None = None,
) -> RenewalDecision:
    """Decide with a chain of small named checks; the reason is the line `pulumi preview` shows."""
    renew_at = renewal_time(not_before, not_after, policy, ari_window)
    days_left = (not_after - at).total_seconds() / 86400
    expiry = not_after.strftime("%Y-%m-%d %H:%M UTC")
    source = "ACME renewal info window" if ari_window else _policy_label(policy)
    if at >= not_after:
        return RenewalDecision(True, f"{name}: expired on {expiry}; renewing", renew_at)
    if at >= renew_at:
        return RenewalDecision(
            True,
            f"{name}: renewal due since {renew_at:%Y-%m-%d %H:%M} UTC ({source}); expires {expiry}, "
            f"{days_left:.1f} days left",
            renew_at,
        )
    return RenewalDecision(False, f"{name}: valid until {expiry}; renews at {renew_at:%Y-%m-%d %H:%M} UTC", renew_at)


def _policy_label(policy: RenewalPolicy) -> str:
    if policy.before_days is not None:
        return f"{policy.before_days:g} days before expiry"
    if policy.at_fraction is not None:
        return f"at {policy.at_fraction:.0%} of the lifetime"
    return "at two thirds of the lifetime"
