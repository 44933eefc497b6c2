"""`certplane inventory`: every certificate of the stack, most urgent first, as a table, JSON or CSV.

EXPIRES and DAYS LEFT go by the earliest expiry in the served chain (`(chain)` when an intermediate expires before
the leaf); JSON and CSV keep the leaf's `not_after` and add `chain_not_after` and `chain_earliest_subject`. Each
level of a private CA is a row of its own (`kind` ca, DOMAINS shows `CA <subject>`)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from typing import Any

from providers.core.clock import rfc3339

from . import render
from .expiry import LEVELS, expiry_findings, urgency_key, worst
from .model import CA_KIND, Certificate
from .render import count_certificates, fmt_days, fmt_time, plural
from .stack import Source, load

CSV_FIELDS = ("name", "domains", "issuer", "issuer_dn", "serial", "not_before", "not_after", "days_remaining",
              "renewal_time", "status", "fingerprint_sha256", "key_algorithm", "targets", "owner", "tags",
              "chain_not_after", "chain_earliest_subject", "kind")


def as_record(cert: Certificate, now: dt.datetime, level: str) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return rfc3339(value) if value else None

    record: dict[str, Any] = {
        "name": cert.name, "domains": list(cert.domains), "issuer": cert.issuer, "issuer_dn": cert.issuer_dn,
        "serial": cert.serial, "not_before": iso(cert.not_before), "not_after": iso(cert.not_after),
        "days_remaining": round(cert.days_left(now), 1), "renewal_time": iso(cert.renewal_time),
        "status": level, "fingerprint_sha256": cert.fingerprint_sha256, "key_algorithm": cert.key_algorithm,
        "targets": list(cert.targets), "owner": cert.owner, "tags": dict(cert.tags),
        # the earliest expiry of the served chain (days_remaining counts to it); the leaf's for older inventories
        "chain_not_after": iso(cert.expires), "chain_earliest_subject": cert.chain_earliest_subject,
        "kind": cert.kind,
    }
    if cert.endpoints:
        record["endpoints"] = [e.as_dict() for e in cert.endpoints]
    return record


def run(args: argparse.Namespace, source: Source) -> int:
    loaded = load(source)
    now = loaded.now
    certs = sorted(loaded.certificates, key=lambda c: urgency_key(c, now))
    levels = {c.name: worst([f.level for f in expiry_findings(c, now)]) for c in certs}
    out = sys.stdout
    if args.json:
        doc = {"stack": loaded.stack, "generated_at": rfc3339(now),
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
            style(cert.name, "bold"),
            f"CA {cert.chain_earliest_subject}" if cert.kind == CA_KIND else render.shorten(cert.domains),
            cert.issuer or "-",
            cert.expires.strftime("%Y-%m-%d") + (" (chain)" if cert.chain_expires_first else ""),
            style.level(fmt_days(days), level),
            style.level(renew, level) if "(due)" in renew else renew,
            render.shorten(cert.targets), cert.owner or "-",
        ])
    headers = ["CERTIFICATE", "DOMAINS", "ISSUER", "EXPIRES", "DAYS LEFT", "RENEWS", "TARGETS", "OWNER"]
    out.write(render.table(headers, rows, style, right=(4,)) + "\n")
    counts = {lvl: sum(1 for v in levels.values() if v == lvl) for lvl in LEVELS}
    summary = f"{count_certificates(certs)} on stack {loaded.stack}, as of {fmt_time(now)}"
    flagged = [f"{counts[lvl]} {lvl}" for lvl in ("critical", "warning") if counts[lvl]]
    out.write(style(summary + (f" ({', '.join(flagged)}; see `certplane check`)" if flagged else ""), "dim") + "\n")
    return 0
