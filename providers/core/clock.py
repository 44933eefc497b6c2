"""Time: the one place certplane reads the clock, and the one RFC 3339 format it writes and reads.

Everything else takes `now` as an argument, so renewal decisions are pure functions that tests and operators can
run at any instant. `$CERTPLANE_NOW` (an RFC 3339 instant) time-travels every decision: previews show what would
renew on that day.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from .errors import InvalidInputError

NOW_ENV = "CERTPLANE_NOW"


def now(environ: Mapping[str, str] = os.environ) -> dt.datetime:
    """The current instant (timezone-aware UTC), or the one in $CERTPLANE_NOW."""
    fixed = environ.get(NOW_ENV)
    if not fixed:
        return real_now()
    try:
        return parse_rfc3339(fixed)
    except ValueError:
        raise InvalidInputError(NOW_ENV, f"{fixed!r} is not an RFC 3339 time, e.g. 2027-01-31T00:00:00Z") from None


def real_now() -> dt.datetime:
    """The wall clock, whatever $CERTPLANE_NOW says: for what the outside world decides (a CA refuses to
    revoke an expired certificate; a Retry-After is in real seconds)."""
    return dt.datetime.now(dt.timezone.utc)


def minute(t: dt.datetime) -> str:
    """`2027-01-31 12:00 UTC`: how a preview line or the CLI shows an instant to a person."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def rfc3339(t: dt.datetime) -> str:
    """`2027-01-31T12:00:00Z`: UTC, whole seconds (what the stack outputs and the CLI print)."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> dt.datetime:
    """An RFC 3339 instant as aware UTC; a time without an offset is taken as UTC. Raises ValueError."""
    parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def days_between(start: dt.datetime, end: dt.datetime) -> float:
    return (end - start).total_seconds() / 86400


__all__ = ["NOW_ENV", "days_between", "minute", "now", "parse_rfc3339", "real_now", "rfc3339"]
