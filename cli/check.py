"""`certplane check`: is every certificate healthy? Exit 0 healthy, 1 warning, 2 critical, 3 could not check.

Critical: expired; renewal overdue (past renewal_time by more than the grace: `pulumi up` should have renewed
it); with --probe: an endpoint serving another certificate, an incomplete chain, a hostname mismatch, or an
endpoint that does not answer; a target (load balancer, CDN, directory) that holds another certificate, none,
or cannot be read. Warning: under a --warn-days threshold, renewal due, not yet valid, a certificate of the served
chain (an intermediate) that expires before the leaf. Days left count to the earliest expiry in the served chain.

Alerts (--webhook, --smtp-host) go once per threshold crossing, remembered in --state-file (locked, so overlapping
runs send once). A failed alert is one line on stderr (the webhook URL shown as scheme://host/… only) and is
retried by the next run; it never changes the exit code, which is always the health verdict above.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from providers.core.clock import rfc3339

from . import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING, CliError, probe, render
from .expiry import LEVELS, expiry_findings, parse_warn_days, urgency_key, worst
from .model import Certificate, Endpoint, Finding, parse_endpoint_spec
from .render import count_certificates, fmt_days, fmt_time, plural
from .stack import Source, load

EXIT_BY_LEVEL = {"ok": EXIT_OK, "warning": EXIT_WARNING, "critical": EXIT_CRITICAL}
DEFAULT_STATE_FILE = Path(".certplane") / "check-state.json"
NOTIFY_TIMEOUT = 10.0  # seconds, each notification call

if TYPE_CHECKING:
    from . import notify  # imported by a run that has a channel to send to (the HTTP and mail stacks are not light)


def probe_jobs(certs: list[Certificate], extra: list[str]) -> list[tuple[str, Endpoint]]:
    by_name = {c.name: c for c in certs}
    jobs: list[tuple[str, Endpoint]] = []
    for cert in certs:
        for endpoint in cert.endpoints:
            if not endpoint.server_name:
                endpoint = Endpoint(endpoint.host, endpoint.port, probe.default_server_name(cert), endpoint.target)
            jobs.append((cert.name, endpoint))
    for spec in extra:
        name, endpoint = parse_endpoint_spec(spec)
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise CliError(f"--endpoint {spec!r}: no certificate {name!r} in the inventory (known: {known})")
        if not endpoint.server_name:
            endpoint = Endpoint(endpoint.host, endpoint.port, probe.default_server_name(by_name[name]),
                                endpoint.target)
        jobs.append((name, endpoint))
    return list(dict.fromkeys(jobs))  # the same endpoint from the inventory and the command line: once


def build_channels(args: argparse.Namespace) -> list[notify.Channel]:
    smtp_fields = {"--smtp-host": args.smtp_host, "--mail-from": args.mail_from, "--mail-to": args.mail_to}
    if not args.webhook and not any(smtp_fields.values()):
        return []
    from . import notify

    channels = []
    if args.webhook:
        channels.append(notify.webhook_sender(args.webhook, args.notify_timeout))
    if any(smtp_fields.values()):
        missing = [flag for flag, value in smtp_fields.items() if not value]
        if missing:
            raise CliError(f"e-mail alerts need {', '.join(missing)} as well")
        recipients = [a.strip() for value in args.mail_to for a in value.split(",") if a.strip()]
        channels.append(notify.smtp_sender(args.smtp_host, args.smtp_port, args.mail_from, recipients,
                                           args.notify_timeout))
    return channels


def run(args: argparse.Namespace, source: Source) -> int:
    warn_days = parse_warn_days(args.warn_days)
    if args.grace_days < 0:
        raise CliError("--grace-days must not be negative")
    if args.probe_timeout <= 0 or args.notify_timeout <= 0:
        raise CliError("timeouts must be positive numbers of seconds")
    channels = build_channels(args)  # validate before any network work
    loaded = load(source)
    now, certs = loaded.now, sorted(loaded.certificates, key=lambda c: urgency_key(c, loaded.now))
    findings: dict[str, list[Finding]] = {c.name: expiry_findings(c, now, warn_days, args.grace_days) for c in certs}
    notes: list[str] = []

    probed: list[probe.ProbeResult] = []
    observed: list[Any] = []  # observe.Observation: imported (every deploy target) only when there is one to ask
    probe_seconds = 0.0
    if args.probe or args.endpoint:
        jobs = probe_jobs(certs, args.endpoint or [])
        asks = [(c.name, p) for c in certs for p in c.placements] if args.probe else []
        if not jobs and not asks:
            notes.append("no endpoints to probe: the inventory lists none; add --endpoint NAME=HOST:PORT[/SNI]")
        start = time.monotonic()
        if jobs:
            progress = render.Progress("probing", len(jobs))
            try:
                probed = probe.probe_all(jobs, timeout=args.probe_timeout, workers=args.probe_workers,
                                         on_done=lambda r: progress.step(f"{r.certificate} {r.endpoint.label}"))
            finally:
                progress.close()
        if asks:  # the targets that do not terminate TLS themselves: ask their API what they hold
            from . import observe

            progress = render.Progress("asking targets", len(asks))
            try:
                observed = observe.observe_all(asks, workers=args.probe_workers,
                                               on_done=lambda r: progress.step(f"{r.certificate} {r.placement.label}"))
            finally:
                progress.close()
        probe_seconds = time.monotonic() - start
        by_name = {c.name: c for c in certs}
        for result in probed:
            findings[result.certificate].extend(probe.assess(by_name[result.certificate], result))
        for answer in observed:
            findings[answer.certificate].extend(observe.assess(by_name[answer.certificate], answer))
    for name in findings:
        findings[name].sort(key=lambda f: -LEVELS.index(f.level))

    levels = {c.name: worst([f.level for f in findings[c.name]]) for c in certs}
    status = worst(list(levels.values()))
    outcomes: list[notify.Outcome] = []
    if channels:  # whatever happens here, the exit code stays the health verdict
        from . import notify

        state_path = Path(args.state_file) if args.state_file else loaded.project_dir / DEFAULT_STATE_FILE
        # long enough for an overlapping run to finish sending (every channel's timeout, with room to spare)
        state = notify.StateFile(state_path, lock_timeout=max(notify.LOCK_TIMEOUT,
                                                              3 * args.notify_timeout * len(channels)))
        alerts = notify.current_alerts(certs, findings, now, warn_days)
        try:
            outcomes = notify.dispatch(alerts, certs, channels, state, loaded.stack, now)
        except notify.StateError as err:
            outcomes = [notify.Outcome(c.name, c.describe, error=str(err)) for c in channels]
    for outcome in outcomes:
        if outcome.error:
            print(f"certplane: {outcome.channel} notification to {outcome.target} failed: {outcome.error}",
                  file=sys.stderr)

    if args.json:
        doc: dict[str, Any] = {
            "stack": loaded.stack, "checked_at": rfc3339(now), "status": status,
            "exit_code": EXIT_BY_LEVEL[status], "warn_days": list(warn_days), "grace_days": args.grace_days,
            "certificates": [{
                "name": c.name, "status": levels[c.name], "days_remaining": round(c.days_left(now), 1),
                "not_after": rfc3339(c.not_after),
                "chain_not_after": rfc3339(c.expires), "chain_earliest_subject": c.chain_earliest_subject,
                "renewal_time": rfc3339(c.renewal_time) if c.renewal_time else None,
                "serial": c.serial, "owner": c.owner, "targets": list(c.targets),
                "findings": [f.as_dict() for f in findings[c.name]],
            } for c in certs],
            "probes": [{"certificate": r.certificate, **r.endpoint.as_dict(), "ok": not r.error,
                        "error": r.error, "seconds": round(r.seconds, 3),
                        "served_fingerprint_sha256": r.served_fingerprint,
                        "served_chain_length": len(r.served)} for r in probed],
            "targets": [{"certificate": o.certificate, "binding": o.placement.binding_id, "target": o.placement.target,
                         "type": o.placement.type, "ok": not o.error, "error": o.error, "held": o.seen,
                         "seconds": round(o.seconds, 3)} for o in observed],
            "notes": notes,
            "notifications": [o.as_dict() for o in outcomes],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_BY_LEVEL[status]

    style = render.Style(render.colour_enabled(sys.stdout))
    out = sys.stdout
    for note in notes:
        out.write(style(f"note: {note}", "dim") + "\n")
    width = max((len(c.name) for c in certs), default=0)
    for cert in certs:
        level = levels[cert.name]
        label = style.level(f"{level.upper():8}", level)
        flagged = [f for f in findings[cert.name] if f.level != "ok"]
        if not flagged:
            renew = f"renews {fmt_time(cert.renewal_time)}" if cert.renewal_time else "no renewal time"
            served = sum(1 for r in probed if r.certificate == cert.name)
            held = sum(1 for o in observed if o.certificate == cert.name)
            live = f"; {plural(served, 'endpoint')} {'serves' if served == 1 else 'serve'} it" if served else ""
            live += f"; {plural(held, 'target')} {'holds' if held == 1 else 'hold'} it" if held else ""
            out.write(f"{label} {cert.name:{width}}  {fmt_days(cert.days_left(now))} days left, {renew}{live}\n")
            continue
        for i, finding in enumerate(flagged):
            lead = label if i == 0 else style.level(f"{finding.level.upper():8}", finding.level)
            out.write(f"{lead} {cert.name:{width}}  {finding.message}\n")
    counts = {lvl: sum(1 for v in levels.values() if v == lvl) for lvl in LEVELS}
    parts = [f"{counts['critical']} critical", f"{counts['warning']} warning", f"{counts['ok']} ok"]
    asked = f", asked {plural(len(observed), 'target')}" if observed else ""
    probe_note = f"; probed {plural(len(probed), 'endpoint')}{asked} in {probe_seconds:.1f}s" \
        if probed or observed else ""
    out.write(style(f"{status.upper()}: {count_certificates(certs)} on stack {loaded.stack} ({', '.join(parts)}) "
                    f"as of {fmt_time(now)}{probe_note}", render.LEVEL_STYLE[status]) + "\n")
    for outcome in outcomes:
        if not outcome.error:
            sent = ", ".join(outcome.alerts) if outcome.alerts else "nothing new"
            out.write(style(f"{outcome.channel} ({outcome.target}): {sent}", "dim") + "\n")
    return EXIT_BY_LEVEL[status]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warn-days", default="30,14,7,1", metavar="LIST",
                        help="days-left thresholds that warn, each alerting once (default: 30,14,7,1)")
    parser.add_argument("--grace-days", type=float, default=1.0, metavar="DAYS",
                        help="how long past its renewal time a certificate may go before it is critical "
                             "(default: 1)")
    probe.add_probe_arguments(
        parser, probe_help="TLS-handshake every endpoint in the inventory (served certificate, chain, hostname), "
                           "and ask every other target (load balancer, CDN, directory) what it holds",
        endpoint_help="also probe this endpoint for certificate NAME (repeatable; implies --probe)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    group = parser.add_argument_group("notifications (each alert once per threshold crossing)")
    group.add_argument("--state-file", metavar="PATH",
                       help="what was already sent (default: <project>/.certplane/check-state.json, mode 0600)")
    group.add_argument("--webhook", metavar="URL",
                       help="POST a Slack-compatible JSON message here (a secret: shown as scheme://host/… only; "
                            "user:password@ is sent as Basic auth; only a 2xx answer counts, redirects are not "
                            "followed)")
    group.add_argument("--smtp-host", metavar="HOST", help="send e-mail through this SMTP server "
                       "(STARTTLS when offered; login from $CERTPLANE_SMTP_USER / $CERTPLANE_SMTP_PASSWORD)")
    group.add_argument("--smtp-port", type=int, default=25, metavar="PORT", help="SMTP port (default: 25)")
    group.add_argument("--mail-from", metavar="ADDRESS", help="sender address")
    group.add_argument("--mail-to", action="append", metavar="ADDRESS",
                       help="recipient (repeatable or comma-separated)")
    group.add_argument("--notify-timeout", type=float, default=NOTIFY_TIMEOUT, metavar="SECONDS",
                       help=f"timeout of each notification call (default: {NOTIFY_TIMEOUT:g})")
