"""The inventory model (a stack's `inventory` output, typed) and the expiry rules every command shares.

`days_remaining` in the stack output was computed at `pulumi up` time; everything here recomputes it from
`not_after` and `now()` (which honours $CERTPLANE_NOW), so a stack that was not updated for weeks reads right.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from . import CliError, render

DEFAULT_WARN_DAYS = (30, 14, 7, 1)
DEFAULT_GRACE_DAYS = 1.0
LEVELS = ("ok", "warning", "critical")  # in increasing severity


@dataclass(frozen=True)
class Endpoint:
    """A live TLS endpoint that should serve a certificate: connect to host:port, send server_name as SNI."""

    host: str
    port: int
    server_name: str | None = None
    target: str | None = None

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        sni = f" ({self.server_name})" if self.server_name and self.server_name != self.host else ""
        return f"{host}:{self.port}{sni}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "port": self.port, "server_name": self.server_name}
        if self.target:
            out["target"] = self.target
        return out


@dataclass(frozen=True)
class Certificate:
    name: str
    domains: tuple[str, ...]
    issuer: str
    issuer_dn: str
    serial: str
    not_before: dt.datetime | None
    not_after: dt.datetime
    renewal_time: dt.datetime | None
    fingerprint_sha256: str
    key_algorithm: str
    targets: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def owner(self) -> str:
        return self.tags.get("owner") or self.tags.get("team") or ""

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class Finding:
    """One thing worth telling about a certificate. `message` is a complete line without the name."""

    certificate: str
    level: str  # ok | warning | critical
    code: str
    message: str
    endpoint: str | None = None
    threshold_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "code": self.code, "message": self.message}
        if self.endpoint:
            out["endpoint"] = self.endpoint
        if self.threshold_days is not None:
            out["threshold_days"] = self.threshold_days
        return out


def worst(levels: list[str] | tuple[str, ...]) -> str:
    return max(levels, key=LEVELS.index, default="ok")


def parse_time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise CliError(f"{where}: missing or not an RFC 3339 time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{where}: {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def parse_endpoint_spec(spec: str) -> tuple[str, Endpoint]:
    """`NAME=HOST:PORT[/SNI]` (HOST may be `[v6]`) -> (certificate name, endpoint)."""
    usage = f"--endpoint {spec!r}: expected NAME=HOST:PORT[/SNI], e.g. www=127.0.0.1:8443/www.example.test"
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise CliError(usage)
    address, _, sni = rest.partition("/")
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise CliError(usage)
    return name, Endpoint(host=host, port=int(port_text), server_name=sni or None, target="--endpoint")


def _endpoints(raw: Any, where: str) -> tuple[Endpoint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CliError(f"{where}: must be a list of {{host, port, server_name}}")
    out = []
    for i, item in enumerate(raw):
        port = item.get("port") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not item.get("host") or not isinstance(port, int) or isinstance(port, bool):
            raise CliError(f"{where}[{i}]: needs a host and an integer port")
        out.append(Endpoint(host=str(item["host"]), port=port, server_name=item.get("server_name") or None,
                            target=item.get("target") or None))
    return tuple(out)


def parse_inventory(raw: Any) -> list[Certificate]:
    """The stack output (name -> entry) as typed certificates; a malformed entry fails naming the field."""
    if not isinstance(raw, dict):
        raise CliError("inventory: expected an object of certificate name -> entry")
    certs = []
    for name, entry in raw.items():
        where = f"inventory.{name}"
        if not isinstance(entry, dict):
            raise CliError(f"{where}: expected an object")
        renewal = entry.get("renewal_time")
        certs.append(Certificate(
            name=name,
            domains=tuple(str(d) for d in entry.get("domains") or ()),
            issuer=str(entry.get("issuer") or ""),
            issuer_dn=str(entry.get("issuer_dn") or ""),
            serial=str(entry.get("serial") or ""),
            not_before=parse_time(entry["not_before"], f"{where}.not_before") if entry.get("not_before") else None,
            not_after=parse_time(entry.get("not_after"), f"{where}.not_after"),
            renewal_time=parse_time(renewal, f"{where}.renewal_time") if renewal else None,
            fingerprint_sha256=str(entry.get("fingerprint_sha256") or ""),
            key_algorithm=str(entry.get("key_algorithm") or ""),
            targets=tuple(str(t) for t in entry.get("targets") or ()),
            tags={str(k): str(v) for k, v in (entry.get("tags") or {}).items()},
            endpoints=_endpoints(entry.get("endpoints"), f"{where}.endpoints"),
        ))
    return certs


def parse_warn_days(text: str) -> tuple[int, ...]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise CliError(f"--warn-days {text!r}: expected positive whole days, e.g. 30,14,7,1")
    return tuple(values)


def fmt_time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt_days(days: float) -> str:
    return f"{days:.1f}"


def expiry_findings(cert: Certificate, now: dt.datetime, warn_days: tuple[int, ...] = DEFAULT_WARN_DAYS,
                    grace_days: float = DEFAULT_GRACE_DAYS) -> list[Finding]:
    """Named checks on dates alone (no network), most severe first; an empty list means healthy."""
    out: list[Finding] = []
    days = cert.days_left(now)
    expiry = fmt_time(cert.not_after)
    if days <= 0:
        out.append(Finding(cert.name, "critical", "expired",
                           f"EXPIRED {fmt_days(abs(days))} days ago (not after {expiry})"))
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
        out.append(Finding(cert.name, "warning", "expiring",
                           f"expires in {fmt_days(days)} days ({expiry}), under the {threshold}-day threshold",
                           threshold_days=threshold))
    out.sort(key=lambda f: -LEVELS.index(f.level))
    return out


def crossed_thresholds(cert: Certificate, now: dt.datetime, warn_days: tuple[int, ...]) -> list[int]:
    """The warn-days thresholds this certificate is under now. A threshold of half the certificate's lifetime
    or more does not apply to it: a 30-day certificate is not "expiring" on the day it was issued (its renewal
    time and the overdue check cover it)."""
    days = cert.days_left(now)
    lifetime = (cert.not_after - cert.not_before).total_seconds() / 86400 if cert.not_before else None
    return [t for t in warn_days if days <= t and (lifetime is None or t < lifetime / 2)]


def urgency_key(cert: Certificate, now: dt.datetime) -> tuple[float, str]:
    return (cert.days_left(now), cert.name)


# --- the `inventory` command ---------------------------------------------------------------------------------

CSV_FIELDS = ("name", "domains", "issuer", "issuer_dn", "serial", "not_before", "not_after", "days_remaining",
              "renewal_time", "status", "fingerprint_sha256", "key_algorithm", "targets", "owner", "tags")


def as_record(cert: Certificate, now: dt.datetime, level: str) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

    record: dict[str, Any] = {
        "name": cert.name, "domains": list(cert.domains), "issuer": cert.issuer, "issuer_dn": cert.issuer_dn,
        "serial": cert.serial, "not_before": iso(cert.not_before), "not_after": iso(cert.not_after),
        "days_remaining": round(cert.days_left(now), 1), "renewal_time": iso(cert.renewal_time),
        "status": level, "fingerprint_sha256": cert.fingerprint_sha256, "key_algorithm": cert.key_algorithm,
        "targets": list(cert.targets), "owner": cert.owner, "tags": dict(cert.tags),
    }
    if cert.endpoints:
        record["endpoints"] = [e.as_dict() for e in cert.endpoints]
    return record


def run(args: argparse.Namespace, source: Any) -> int:
    from .stack import load

    loaded = load(source)
    now = loaded.now
    certs = sorted(loaded.certificates, key=lambda c: urgency_key(c, now))
    levels = {c.name: worst([f.level for f in expiry_findings(c, now)]) for c in certs}
    out = sys.stdout
    if args.json:
        doc = {"stack": loaded.stack, "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "certificates": [as_record(c, now, levels[c.name]) for c in certs]}
        out.write(json.dumps(doc, indent=2) + "\n")
        return 0
    if args.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for cert in certs:
            record = as_record(cert, now, levels[cert.name])
            record["domains"] = " ".join(record["domains"])
            record["targets"] = " ".join(record["targets"])
            record["tags"] = " ".join(f"{k}={v}" for k, v in sorted(cert.tags.items()))
            writer.writerow(record)
        out.write(buf.getvalue())
        return 0
    style = render.Style(render.colour_enabled(out))
    if not certs:
        out.write(f"stack {loaded.stack}: no certificates in the inventory\n")
        return 0
    rows = []
    for cert in certs:
        level = levels[cert.name]
        days = cert.days_left(now)
        renew = cert.renewal_time.strftime("%Y-%m-%d") if cert.renewal_time else "-"
        if cert.renewal_time and now >= cert.renewal_time:
            renew += " (due)"
        rows.append([
            style(cert.name, "bold"), render.shorten(cert.domains), cert.issuer or "-",
            cert.not_after.strftime("%Y-%m-%d"), style.level(fmt_days(days), level),
            style.level(renew, level) if "(due)" in renew else renew,
            render.shorten(cert.targets), cert.owner or "-",
        ])
    headers = ["CERTIFICATE", "DOMAINS", "ISSUER", "EXPIRES", "DAYS LEFT", "RENEWS", "TARGETS", "OWNER"]
    out.write(render.table(headers, rows, style, right=(4,)) + "\n")
    counts = {lvl: sum(1 for v in levels.values() if v == lvl) for lvl in LEVELS}
    summary = f"{plural(len(certs), 'certificate')} on stack {loaded.stack}, as of {fmt_time(now)}"
    flagged = [f"{counts[lvl]} {lvl}" for lvl in ("critical", "warning") if counts[lvl]]
    out.write(style(summary + (f" ({', '.join(flagged)}; see `certplane check`)" if flagged else ""), "dim") + "\n")
    return 0
