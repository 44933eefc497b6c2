"""Rate-limit forecast: the ACME orders the next `pulumi up` places, counted against the CA's limits before it
places them (docs/RATE-LIMITS.md).

Three limits, each over a sliding window, with Let's Encrypt's published defaults built in and overridable per
issuer (`rate_limits:` in an ACME issuer's settings):

- certificates per registered domain (50 per 7 days): a certificate counts once for each registered domain
  (the name one label under its public suffix, from the Public Suffix List bundled with `publicsuffixlist`,
  read offline) among its names. Counted per CA directory: the CA counts every account's certificates;
- new orders per account (300 per 3 hours): one order per certificate, per issuer (each issuer registers its
  own account);
- duplicate certificates (5 per 7 days): certificates for the exact same set of names (case and order aside).

History counts: each certificate in state whose not_before is inside a window is an issuance the CA already
counted. Renewals are exempt as Let's Encrypt documents: an ARI-guided renewal (the certificate renews by its
CA's ACME Renewal Information window, and the window has opened) counts against no limit; any other renewal
(an order for the exact set of names of a certificate the CA already issued) is exempt from the first two and
counts as a duplicate. Pure: no clock, no network, no engine; the caller gives `now` and what it read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

from publicsuffixlist import PublicSuffixList

from ..validation import Model, whole_number

LimitKind = Literal["registered_domain", "account", "duplicate"]
KINDS: tuple[LimitKind, ...] = ("registered_domain", "account", "duplicate")
# Let's Encrypt's defaults (https://letsencrypt.org/docs/rate-limits/): (how many, per how many hours).
DEFAULTS: Mapping[LimitKind, tuple[int, int]] = {"registered_domain": (50, 7 * 24), "account": (300, 3),
                                                 "duplicate": (5, 7 * 24)}
Exemption = Literal["ari", "renewal"]


class Limit(Model):
    """At most `limit` in any `window_hours`; either left out takes the CA default, `limit: 0` turns it off."""

    limit: Annotated[int, whole_number(0, 1_000_000)] | None = None
    window_hours: Annotated[int, whole_number(1, 24 * 366, "hours")] | None = None


class RateLimits(Model):
    """An ACME issuer's `rate_limits:` block: the CA's limits the plan forecasts against (Let's Encrypt's by
    default); `check: false` forecasts nothing for the issuer; `renewals_exempt: false` counts a non-ARI
    renewal like a new certificate (a CA without Let's Encrypt's renewal exemption)."""

    check: bool = True
    per_registered_domain: Limit = Limit()
    per_account: Limit = Limit()
    duplicate_certificates: Limit = Limit()
    renewals_exempt: bool = True

    def limit(self, kind: LimitKind) -> tuple[int, dt.timedelta]:
        """(how many, per what window) of one limit; 0 when it is off."""
        given = {"registered_domain": self.per_registered_domain, "account": self.per_account,
                 "duplicate": self.duplicate_certificates}[kind]
        count, hours = DEFAULTS[kind]
        if not self.check:
            return 0, dt.timedelta(hours=hours)
        return (count if given.limit is None else given.limit), dt.timedelta(hours=given.window_hours or hours)


LETS_ENCRYPT = RateLimits()


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package, read from disk: never downloaded


@lru_cache(maxsize=4096)
def registered_domain(name: str) -> str:
    """`a.b.example.co.uk` -> `example.co.uk` (a wildcard's `*.` aside); a name that is itself a public suffix,
    or one label, stands for itself."""
    bare = name.strip().lower().rstrip(".").removeprefix("*.")
    return _psl().privatesuffix(bare) or bare


def name_set(names: Iterable[str]) -> tuple[str, ...]:
    """The exact set of names a duplicate is judged by: case and order aside."""
    return tuple(sorted({n.strip().lower().rstrip(".") for n in names if n.strip()}))


@dataclass(frozen=True)
class Issuance:
    """A certificate the CA already issued (read from state): when, to which issuer's account, for what."""

    certificate: str
    issuer: str
    directory_url: str
    names: tuple[str, ...]
    not_before: dt.datetime


@dataclass(frozen=True)
class Order:
    """An order the next `up` places: a new certificate, or a renewal / re-issue of `current` (the one in state).
    `renewal_source` and `ari_window_start` are the current certificate's (how it renews; when its CA's ARI
    window opens)."""

    certificate: str
    issuer: str
    directory_url: str
    names: tuple[str, ...]
    current: Issuance | None = None
    renewal_source: str | None = None
    ari_window_start: dt.datetime | None = None


@dataclass(frozen=True)
class Check:
    """One limit for one registered domain, account or set of names: what counts, and what goes over."""

    kind: LimitKind
    scope: str  # the registered domain, the issuer (its account), or the names joined with ", "
    directory_url: str
    limit: int
    window: dt.timedelta
    history: tuple[str, ...]  # certificates issued inside the window (in state), by name
    planned: tuple[str, ...]  # orders that count, by name
    exempt: tuple[tuple[str, Exemption], ...] = ()  # orders that do not count, and why
    over: tuple[str, ...] = ()  # orders past the limit: the last ones by name (up places them in parallel)

    @property
    def count(self) -> int:
        return len(self.history) + len(self.planned)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def window_text(self) -> str:
        hours = int(self.window.total_seconds() // 3600)
        count, unit = (hours // 24, "day") if hours % 24 == 0 else (hours, "hour")
        return f"{count} {unit}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Forecast:
    checks: tuple[Check, ...] = ()
    orders: tuple[Order, ...] = ()

    @property
    def exceeded(self) -> bool:
        return any(c.exceeded for c in self.checks)

    @property
    def over(self) -> tuple[str, ...]:
        """Every certificate that would go over some limit, by name."""
        return tuple(sorted({n for c in self.checks for n in c.over}))


def exemption(order: Order, history: Sequence[Issuance], now: dt.datetime, limits: RateLimits) -> Exemption | None:
    """Why an order counts against no limit ("ari") or only as a duplicate ("renewal"), else None."""
    wanted = name_set(order.names)
    current = order.current
    if (current is not None and name_set(current.names) == wanted and order.renewal_source == "ari"
            and order.ari_window_start is not None and order.ari_window_start <= now):
        return "ari"
    if limits.renewals_exempt and any(h.directory_url == order.directory_url and name_set(h.names) == wanted
                                      for h in history):
        return "renewal"
    return None


def forecast(orders: Sequence[Order], history: Sequence[Issuance], now: dt.datetime,
             limits: Mapping[str, RateLimits] | None = None) -> Forecast:
    """Every limit the orders touch, with what already counts in its window. `limits` by issuer name; an issuer
    not in it has Let's Encrypt's. Where issuers share a CA directory, the strictest issuer's limit applies to
    what they share (registered domains, sets of names)."""
    by_issuer = dict(limits or {})

    def of(issuer: str) -> RateLimits:
        return by_issuer.get(issuer, LETS_ENCRYPT)

    orders = [o for o in orders if of(o.issuer).check]
    exempt = {o.certificate: exemption(o, history, now, of(o.issuer)) for o in orders}
    checks: list[Check] = []

    def add(kind: LimitKind, scope: str, directory: str, members: list[Order], issuers: Iterable[str],
            inside: Iterable[Issuance], counts_unless: tuple[Exemption, ...]) -> None:
        chosen = [of(i).limit(kind) for i in sorted(set(issuers))]
        active = [c for c in chosen if c[0] > 0]
        if not active:
            return
        limit, window = min(active, key=lambda c: c[0])
        since = now - window
        history_names = tuple(sorted(h.certificate for h in inside if since < h.not_before <= now))
        counted = sorted(o.certificate for o in members if exempt[o.certificate] not in counts_unless)
        skipped = tuple(sorted((o.certificate, e) for o in members
                               if (e := exempt[o.certificate]) is not None and e in counts_unless))
        room = max(0, limit - len(history_names))
        checks.append(Check(kind, scope, directory, limit, window, history_names, tuple(counted), skipped,
                            tuple(counted[room:])))

    both: tuple[Exemption, ...] = ("ari", "renewal")
    ari_only: tuple[Exemption, ...] = ("ari",)
    domains: dict[tuple[str, str], list[Order]] = {}
    for o in orders:
        for domain in sorted({registered_domain(n) for n in o.names}):
            domains.setdefault((o.directory_url, domain), []).append(o)
    for (directory, domain), members in sorted(domains.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        add("registered_domain", domain, directory, members, (o.issuer for o in members),
            (h for h in history if h.directory_url == directory
             and domain in {registered_domain(n) for n in h.names}), both)

    accounts: dict[tuple[str, str], list[Order]] = {}
    for o in orders:
        accounts.setdefault((o.issuer, o.directory_url), []).append(o)
    for (issuer, directory), members in sorted(accounts.items()):
        add("account", issuer, directory, members, (issuer,),
            (h for h in history if h.issuer == issuer and h.directory_url == directory), both)

    sets: dict[tuple[str, tuple[str, ...]], list[Order]] = {}
    for o in orders:
        sets.setdefault((o.directory_url, name_set(o.names)), []).append(o)
    for (directory, names), members in sorted(sets.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        add("duplicate", ", ".join(names), directory, members, (o.issuer for o in members),
            (h for h in history if h.directory_url == directory and name_set(h.names) == names), ari_only)
    return Forecast(tuple(checks), tuple(orders))
