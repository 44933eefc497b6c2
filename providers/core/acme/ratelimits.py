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

Two callers: `./certplane plan` (cli/plan.py), from a preview's events, and the Certificate provider, which
tallies what one engine run shows it (`Tally`) and warns in `pulumi preview`/`up` when a limit goes over; both
say it in the words of `describe`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
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
    issued = {(h.directory_url, name_set(h.names)) for h in history}
    return _exemption(order, name_set(order.names), issued, now, limits)


def _exemption(order: Order, wanted: tuple[str, ...], issued: Collection[tuple[str, tuple[str, ...]]],
               now: dt.datetime, limits: RateLimits) -> Exemption | None:
    """`exemption`, given the order's set of names and the (CA, set of names) of every issuance."""
    current = order.current
    if (current is not None and name_set(current.names) == wanted and order.renewal_source == "ari"
            and order.ari_window_start is not None and order.ari_window_start <= now):
        return "ari"
    if limits.renewals_exempt and (order.directory_url, wanted) in issued:
        return "renewal"
    return None


def forecast(orders: Sequence[Order], history: Sequence[Issuance], now: dt.datetime,
             limits: Mapping[str, RateLimits] | None = None) -> Forecast:
    """Every limit the orders touch, with what already counts in its window. `limits` by issuer name; an issuer
    not in it has Let's Encrypt's. Where issuers share a CA directory, the strictest issuer's limit applies to
    what they share (registered domains, sets of names). History is indexed once by what it counts toward, so
    the forecast grows with orders + history, not their product (the provider forecasts again as each
    certificate comes)."""
    by_issuer = dict(limits or {})

    def of(issuer: str) -> RateLimits:
        return by_issuer.get(issuer, LETS_ENCRYPT)

    orders = [o for o in orders if of(o.issuer).check]
    wanted = {o.certificate: name_set(o.names) for o in orders}
    by_set: dict[tuple[str, tuple[str, ...]], list[Issuance]] = {}
    by_domain: dict[tuple[str, str], list[Issuance]] = {}
    by_account: dict[tuple[str, str], list[Issuance]] = {}
    for h in history:
        by_set.setdefault((h.directory_url, name_set(h.names)), []).append(h)
        for domain in {registered_domain(n) for n in h.names}:
            by_domain.setdefault((h.directory_url, domain), []).append(h)
        by_account.setdefault((h.issuer, h.directory_url), []).append(h)
    exempt = {o.certificate: _exemption(o, wanted[o.certificate], by_set, now, of(o.issuer)) for o in orders}
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
            by_domain.get((directory, domain), ()), both)

    accounts: dict[tuple[str, str], list[Order]] = {}
    for o in orders:
        accounts.setdefault((o.issuer, o.directory_url), []).append(o)
    for (issuer, directory), members in sorted(accounts.items()):
        add("account", issuer, directory, members, (issuer,), by_account.get((issuer, directory), ()), both)

    sets: dict[tuple[str, tuple[str, ...]], list[Order]] = {}
    for o in orders:
        sets.setdefault((o.directory_url, wanted[o.certificate]), []).append(o)
    for (directory, names), members in sorted(sets.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        add("duplicate", ", ".join(names), directory, members, (o.issuer for o in members),
            by_set.get((directory, names), ()), ari_only)
    return Forecast(tuple(checks), tuple(orders))


# --- in words: the plan's rate-limit lines and the preview's warnings say it the same way ----------------------

LIMIT_NAMES: Mapping[LimitKind, str] = {"registered_domain": "certificates per registered domain",
                                        "account": "new orders per account",
                                        "duplicate": "duplicate certificates (same names)"}
EXEMPT_NAMES: Mapping[Exemption, str] = {"ari": "ARI renewal", "renewal": "renewal"}


def shown_checks(checks: Iterable[Check]) -> list[Check]:
    """Every registered domain and account an order touches; a set of names only when it repeats."""
    return [c for c in checks if c.kind != "duplicate" or c.count > 1 or c.exceeded]


def several_cas(checks: Iterable[Check]) -> bool:
    """Whether the checks span more than one CA directory (each line then names its CA)."""
    return len({c.directory_url for c in checks}) > 1


def scope_text(check: Check) -> str:
    return {"registered_domain": f"registered domain {check.scope}", "account": f"account of issuer {check.scope}",
            "duplicate": f"names {check.scope}"}[check.kind]


def counts_text(check: Check) -> str:
    parts = [f"{len(check.history)} issued in the window", f"{len(check.planned)} to order"]
    if check.exempt:
        exempt = ", ".join(f"{n} ({EXEMPT_NAMES[why]})" for n, why in check.exempt)
        parts.append(f"{len(check.exempt)} exempt: {exempt}")
    return "; ".join(parts)


def describe(check: Check, with_ca: bool = False) -> str:
    """One limit in words: `registered domain example.co.uk: 52 of 50 certificates per registered domain per 7
    days (4 issued in the window; 48 to order); over the limit: shop-46, shop-47`."""
    ca = f" at {check.directory_url}" if with_ca else ""
    line = (f"{scope_text(check)}{ca}: {check.count} of {check.limit} {LIMIT_NAMES[check.kind]} per "
            f"{check.window_text} ({counts_text(check)})")
    return line + (f"; over the limit: {', '.join(check.over)}" if check.over else "")


def limit_line(check: Check, with_ca: bool = False) -> str:
    """A line of the plan's rate-limit section: `OVER  ...` or `ok    ...`, then `describe`."""
    return f"{'OVER' if check.exceeded else 'ok  '}  {describe(check, with_ca)}"


WARNING_PREFIX = "certplane rate limits: "  # not the plan's note prefix ("certplane: "): the plan says it itself
WARNING_SUFFIX = "; the CA would refuse these orders (see ./certplane plan)"
WARNINGS_PER_LIMIT = 5  # then one last line: `./certplane plan` names them all


def warning(check: Check, with_ca: bool = False) -> str:
    """The preview's warning about one limit the orders go over, in the plan's words."""
    return f"{WARNING_PREFIX}{describe(check, with_ca)}{WARNING_SUFFIX}"


def last_warning(check: Check, with_ca: bool = False) -> str:
    """What the preview says of a limit once it has said WARNINGS_PER_LIMIT times that more go over it."""
    ca = f" at {check.directory_url}" if with_ca else ""
    return (f"{WARNING_PREFIX}{scope_text(check)}{ca}: {check.count} of {check.limit} {LIMIT_NAMES[check.kind]} "
            f"per {check.window_text} so far, and more of this run's orders go over it than these warnings name "
            f"(see ./certplane plan)")


def warnings(result: Forecast) -> list[str]:
    """One warning per limit the orders go over (an order over it: history alone over a limit, with only
    exempt orders, is no order refused)."""
    with_ca = several_cas(shown_checks(result.checks))
    return [warning(c, with_ca) for c in result.checks if c.over]


# --- one engine run's tally, as the Certificate provider sees it ------------------------------------------------

Scope = tuple[LimitKind, str, str]  # (limit, CA directory, registered domain | issuer | names joined)


def _scopes(directory: str, issuer: str, names: Iterable[str]) -> list[Scope]:
    """Every scope an order or issuance counts in (the keys `forecast` groups by)."""
    names = tuple(names)
    out: list[Scope] = [("registered_domain", directory, d) for d in sorted({registered_domain(n) for n in names})]
    return [*out, ("account", directory, issuer), ("duplicate", directory, ", ".join(name_set(names)))]


class Tally:
    """What one engine run (one provider process) has shown so far: the orders it will place and what the CA
    already issued, by certificate (a certificate seen twice is counted once: the last word wins), and each
    issuer's limits when it sets them. Grows as the engine checks and diffs certificates; thread-safe.

    `warnings` forecasts only when what was added since it last ran might go over a limit: when a scope it
    touched holds more orders and in-window issuances than the lowest limit of its kind (or an issuer's limits
    changed). So a run whose certificates stay far from every limit never forecasts, and a big stack's preview
    does not forecast once per certificate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orders: dict[str, Order] = {}
        self._history: dict[str, Issuance] = {}
        self._limits: dict[str, RateLimits] = {}
        self._scope_orders: dict[Scope, set[str]] = {}
        self._scope_history: dict[Scope, set[str]] = {}
        self._touched: set[Scope] = set()
        self._limits_changed = False
        self._said: dict[Scope, list[str]] = {}  # the warnings given, by limit
        self._done: set[Scope] = set()  # limits past WARNINGS_PER_LIMIT: said for the last time

    def add(self, *, order: Order | None = None, issued: Issuance | None = None,
            limits: tuple[str, RateLimits | None] | None = None, unordered: str | None = None) -> None:
        """An order this run places, a certificate already issued, an issuer's limits (None: Let's Encrypt's);
        `unordered`: a certificate this run places no order for after all (a later diff says so: a preview's,
        after its refresh's)."""
        with self._lock:
            dropped = self._orders.pop(unordered, None) if unordered is not None else None
            if dropped is not None:  # fewer orders: nothing more can go over
                for scope in _scopes(dropped.directory_url, dropped.issuer, dropped.names):
                    self._scope_orders.get(scope, set()).discard(dropped.certificate)
            if order is not None:
                self._orders[order.certificate] = order
                for scope in _scopes(order.directory_url, order.issuer, order.names):
                    self._scope_orders.setdefault(scope, set()).add(order.certificate)
                    self._touched.add(scope)
            if issued is not None:
                self._history[issued.certificate] = issued
                for scope in _scopes(issued.directory_url, issued.issuer, issued.names):
                    self._scope_history.setdefault(scope, set()).add(issued.certificate)
                    self._touched.add(scope)
            if limits is not None:
                issuer, given = limits
                if self._limits.get(issuer) != given:
                    self._limits_changed = True
                    if given is None:
                        self._limits.pop(issuer, None)
                    else:
                        self._limits[issuer] = given

    def forecast(self, now: dt.datetime) -> Forecast:
        with self._lock:
            return self._forecast(now)

    def warnings(self, now: dt.datetime) -> list[str]:
        """What to warn of now, given what was added since the last call: for each limit the run goes over, its
        line, each time more certificates go over it (the engine never says which certificate is its run's
        last, so the last line names them all), at most WARNINGS_PER_LIMIT times, then once that there are
        more. Forecasts only when an addition may have gone over a limit not yet said for the last time."""
        with self._lock:
            touched, changed = self._touched, self._limits_changed
            self._touched, self._limits_changed = set(), False
            if not changed and not any(scope not in self._done and self._bound(scope, now) > self._floor(scope[0])
                                       for scope in touched):
                return []
            result = self._forecast(now)
            with_ca = several_cas(shown_checks(result.checks))
            out: list[str] = []
            for check in result.checks:
                scope: Scope = (check.kind, check.directory_url, check.scope)
                said = self._said.setdefault(scope, [])
                if not check.over or scope in self._done:
                    continue
                line = warning(check, with_ca)
                if line in said:
                    continue
                if len(said) >= WARNINGS_PER_LIMIT:
                    line = last_warning(check, with_ca)
                    self._done.add(scope)
                said.append(line)
                out.append(line)
            return out

    def _forecast(self, now: dt.datetime) -> Forecast:
        orders = sorted(self._orders.values(), key=lambda o: o.certificate)
        history = sorted(self._history.values(), key=lambda h: h.certificate)
        return forecast(orders, history, now, self._limits)

    def _all(self, kind: LimitKind) -> list[tuple[int, dt.timedelta]]:
        return [LETS_ENCRYPT.limit(kind), *(given.limit(kind) for given in self._limits.values())]

    def _floor(self, kind: LimitKind) -> float:
        """The lowest limit of a kind that any issuer has (Let's Encrypt's included): below it, none goes over."""
        return min((count for count, _ in self._all(kind) if count > 0), default=float("inf"))

    def _bound(self, scope: Scope, now: dt.datetime) -> int:
        """At least what `forecast` counts in the scope: its orders, and its issuances inside the longest
        window of the kind (exemptions aside)."""
        since = now - max(window for _, window in self._all(scope[0]))
        inside = sum(1 for name in self._scope_history.get(scope, ())
                     if (h := self._history.get(name)) is not None and since < h.not_before <= now)
        return len(self._scope_orders.get(scope, ())) + inside
