"""The expiry rules every command shares: named checks on a certificate's dates alone (no network), the
warn-day thresholds, and how findings rank."""

from __future__ import annotations

import datetime as dt

from . import CliError
from .model import Certificate, Finding
from .render import fmt_days, fmt_time

DEFAULT_WARN_DAYS = (30, 14, 7, 1)
DEFAULT_GRACE_DAYS = 1.0
LEVELS = ("ok", "warning", "critical")  # in increasing severity


def worst(levels: list[str] | tuple[str, ...]) -> str:
    return max(levels, key=LEVELS.index, default="ok")


def parse_warn_days(text: str) -> tuple[int, ...]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise CliError(f"--warn-days {text!r}: expected positive whole days, e.g. 30,14,7,1")
    return tuple(values)


def expiry_findings(cert: Certificate, now: dt.datetime, warn_days: tuple[int, ...] = DEFAULT_WARN_DAYS,
                    grace_days: float = DEFAULT_GRACE_DAYS) -> list[Finding]:
    """Named checks on dates alone (no network), most severe first; an empty list means healthy. The expiry is
    the served chain's (an intermediate that expires before the leaf ends the certificate's useful life), and a
    finding names that intermediate."""
    out: list[Finding] = []
    days = cert.days_left(now)
    expiry = fmt_time(cert.expires)
    chain = cert.chain_expires_first
    which = f"{cert.chain_earliest_subject or 'a certificate'} in the served chain"
    leaf = fmt_time(cert.not_after)
    if days <= 0:
        message = f"EXPIRED {fmt_days(abs(days))} days ago (not after {expiry})"
        if chain:
            leaf_state = (f"the leaf is valid until {leaf}" if cert.not_after > now
                          else f"the leaf expired too (not after {leaf})")
            message += f": {which}; {leaf_state}"
        out.append(Finding(cert.name, "critical", "expired", message))
        return out
    if cert.not_before and now < cert.not_before:
        out.append(Finding(cert.name, "warning", "not-yet-valid", f"not valid before {fmt_time(cert.not_before)}"))
    if cert.renewal_time and now >= cert.renewal_time:
        late = (now - cert.renewal_time).total_seconds() / 86400
        if late > grace_days:
            out.append(Finding(cert.name, "critical", "renewal-overdue",
                               f"renewal overdue by {fmt_days(late)} days (renewal time "
                               f"{fmt_time(cert.renewal_time)}): `pulumi up` should have renewed it; "
                               f"expires {expiry}, {fmt_days(days)} days left"))
        else:
            out.append(Finding(cert.name, "warning", "renewal-due",
                               f"renewal due since {fmt_time(cert.renewal_time)}: the next `pulumi up` renews it"))
    crossed = crossed_thresholds(cert, now, warn_days)
    if crossed:
        threshold = min(crossed)
        reason = f": {which} expires before the leaf ({leaf})" if chain else ""
        out.append(Finding(cert.name, "warning", "expiring",
                           f"expires in {fmt_days(days)} days ({expiry}), under the {threshold}-day threshold"
                           f"{reason}", threshold_days=threshold))
    if chain:
        gap = (cert.not_after - cert.expires).total_seconds() / 86400
        out.append(Finding(cert.name, "warning", "chain-expires-first",
                           f"chain expires first: {which} is not valid after {expiry}, {fmt_days(gap)} days "
                           f"before the leaf ({leaf})"))
    out.sort(key=lambda f: -LEVELS.index(f.level))
    return out


def crossed_thresholds(cert: Certificate, now: dt.datetime, warn_days: tuple[int, ...]) -> list[int]:
    """The warn-days thresholds this certificate (its served chain's expiry) is under now. A threshold of half
    the leaf's lifetime or more does not apply to it: a 30-day certificate is not "expiring" on the day it was
    issued (its renewal time and the overdue check cover it)."""
    days = cert.days_left(now)
    lifetime = (cert.not_after - cert.not_before).total_seconds() / 86400 if cert.not_before else None
    return [t for t in warn_days if days <= t and (lifetime is None or t < lifetime / 2)]


def urgency_key(cert: Certificate, now: dt.datetime) -> tuple[float, str]:
    return (cert.days_left(now), cert.name)
