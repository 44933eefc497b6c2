"""`certplane plan`: what the next `pulumi up` would do, per certificate, in words a reviewer reads on a pull
request: issue / renew (why, expiry, days left) / re-key / re-issue (names added, removed) / redeploy (where) /
remove / drift repaired, then the policy pack's results.

It runs the real engine (`pulumi preview`, streaming its events as JSON, with the project's policy pack) and
reads three things from the events: each resource's step (operation, which properties change), certplane's
own notes (`certplane: <resource>: <why>`, the lines `pulumi preview` prints) and the policy violations.
Nothing secret is read or printed: the engine masks secrets in its events, and the plan shows names, dates and
targets only. Exit 0 when nothing would change, 2 when something would, 1 when the plan cannot be made (the
program or a mandatory policy stops the preview).

It also forecasts the CA's rate limits (docs/RATE-LIMITS.md): the ACME orders the `up` would place, with the
certificates already issued inside each window, per registered domain, per account and per exact set of names,
against each issuer's `rate_limits:` (Let's Encrypt's by default). Going over is a warning (the exit code stays
2) unless `--fail-on-rate-limit` makes it 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from providers.core import clock
from providers.core.acme import ratelimits
from providers.core.acme.ratelimits import Forecast, RateLimits
from providers.core.errors import InputProblems
from providers.core.validation import parse

from . import CliError
from .stack import DEFAULT_STACK, ROOT, STACK_ENV, project_dir, stack_file_config

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
KIND_PREFIX = "pulumi-python:dynamic/certplane:"
NOTE_PREFIX = "certplane: "
ORDER = ("blocked", "issue", "upload", "re-issue", "renew", "re-key", "re-render", "redeploy", "drift repaired",
         "deploy", "move", "remove", "delete", "unchanged")


@dataclass(frozen=True)
class Step:
    op: str  # create, update, replace, delete, same, ...
    kind: str  # Certificate, UploadedCertificate, CertificateBinding, PrivateKey, AcmeAccount
    name: str  # the resource's name (the URN's last part)
    diffs: tuple[str, ...] = ()
    old: Mapping[str, Any] = field(default_factory=dict)  # inputs and outputs in state (secrets masked)
    new: Mapping[str, Any] = field(default_factory=dict)  # the program's inputs

    def value(self, key: str) -> Any:
        return self.new.get(key, self.old.get(key))


@dataclass(frozen=True)
class Violation:
    level: str  # mandatory | advisory
    rule: str
    resource: str
    message: str
    kind: str = ""  # the resource's kind (Certificate, ...), from its URN


@dataclass
class Entry:
    """One certificate (or the issuers), what happens to it and why."""

    name: str
    actions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # about the certificate, in the order they were given
    placements: list[str] = field(default_factory=list)  # about its bindings: sorted when shown
    violations: list[Violation] = field(default_factory=list)
    expires: str = ""  # the current certificate's expiry and days left ("" for a new one)
    targets: list[str] = field(default_factory=list)

    @property
    def details(self) -> list[str]:
        return [*self.reasons, *sorted(set(self.placements))]

    @property
    def headline(self) -> str:
        return next((a for a in ORDER if a in self.actions), "unchanged")


@dataclass
class Plan:
    stack: str
    entries: dict[str, Entry]
    general: list[str]  # notes about no certificate in particular (ACME accounts, CAs)
    errors: list[str]
    changes: dict[str, int]
    rate_limits: Forecast = field(default_factory=Forecast)
    fail_on_rate_limit: bool = False

    @property
    def changed(self) -> bool:
        return any(n for op, n in self.changes.items() if op != "same")

    @property
    def blocked(self) -> bool:
        return bool(self.errors) or any(v.level == "mandatory" for e in self.entries.values() for v in e.violations)

    @property
    def over_rate_limit(self) -> bool:
        return self.rate_limits.exceeded

    @property
    def exit_code(self) -> int:
        if self.blocked or (self.fail_on_rate_limit and self.over_rate_limit):
            return EXIT_ERROR
        return EXIT_CHANGES if self.changed else EXIT_NO_CHANGES


# --- running the preview ----------------------------------------------------------------------------------------

def preview_events(stack: str, work_dir: Path, *, refresh: bool, policy_pack: Path | None,
                   policy_config: Path | None, timeout: float) -> list[dict[str, Any]]:
    engine = ROOT / "tools" / "pulumi"
    command = [str(engine if engine.exists() else "pulumi"), "preview", "--cwd", str(work_dir), "--stack", stack,
               "--json", "--non-interactive", "--color", "never"]
    if refresh:
        command.append("--refresh")
    if policy_pack is not None:
        command += ["--policy-pack", str(policy_pack)]
        if policy_config is not None:
            command += ["--policy-pack-config", str(policy_config)]
    env = {**os.environ, "PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"}
    try:
        done = subprocess.run(command, cwd=work_dir, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CliError(f"pulumi preview did not finish within {timeout:g} s") from None
    except OSError as err:
        raise CliError(f"cannot run pulumi preview: {err}") from None
    events = []
    for line in done.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if not events:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise CliError(f"pulumi preview failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return events


# --- reading the events -----------------------------------------------------------------------------------------

def read_events(stack: str, events: Iterable[Mapping[str, Any]],
                limits: Mapping[str, RateLimits] | None = None) -> Plan:
    steps: list[Step] = []
    notes: list[str] = []
    violations: list[Violation] = []
    errors: list[str] = []
    changes: dict[str, int] = {}
    for event in events:
        if "resourcePreEvent" in event:
            meta = event["resourcePreEvent"].get("metadata") or {}
            kind = str(meta.get("type") or "")
            if kind.startswith(KIND_PREFIX):
                old, new = meta.get("old") or {}, meta.get("new") or {}
                steps.append(Step(op=str(meta.get("op")), kind=kind[len(KIND_PREFIX):],
                                  name=str(meta.get("urn", "")).rsplit("::", 1)[-1],
                                  diffs=tuple(meta.get("diffs") or ()),
                                  old={**(old.get("inputs") or {}), **(old.get("outputs") or {})},
                                  new=dict(new.get("inputs") or {})))
        elif "diagnosticEvent" in event:
            diag = event["diagnosticEvent"]
            message = str(diag.get("message") or "").strip()
            if message.startswith(NOTE_PREFIX):
                notes.append(message[len(NOTE_PREFIX):])
            elif diag.get("severity") == "error" and message and message != "preview failed":
                errors.extend(ln.strip() for ln in message.splitlines() if ln.strip())
        elif "policyEvent" in event:
            policy = event["policyEvent"]
            lines = [ln for ln in str(policy.get("message") or "").splitlines() if ln.strip()]
            urn = str(policy.get("resourceUrn") or "")
            type_token = urn.rsplit("::", 2)[-2].rsplit("$", 1)[-1] if urn.count("::") >= 2 else ""
            violations.append(Violation(level=str(policy.get("enforcementLevel") or "advisory"),
                                        rule=str(policy.get("policyName") or ""),
                                        resource=urn.rsplit("::", 1)[-1], message=lines[-1] if lines else "",
                                        kind=type_token.removeprefix(KIND_PREFIX)))
        elif "summaryEvent" in event:
            changes = {str(k): int(v) for k, v in (event["summaryEvent"].get("resourceChanges") or {}).items()}
    return explain(stack, steps, notes, violations, errors, changes, limits)


def explain(stack: str, steps: list[Step], notes: list[str], violations: list[Violation], errors: list[str],
            changes: dict[str, int], limits: Mapping[str, RateLimits] | None = None) -> Plan:
    certificates = {s.name for s in steps if s.kind in ("Certificate", "UploadedCertificate")
                    and (s.value("policy_facts") or s.kind == "UploadedCertificate")}
    entries = {name: Entry(name) for name in sorted(certificates)}
    by_binding = {s.name: str(s.value("certificate") or "") for s in steps if s.kind == "CertificateBinding"}
    general: list[str] = []
    for note in notes:
        subject, _, text = note.partition(": ")
        if subject.startswith("binding ") and by_binding.get(subject[len("binding "):]) in entries:
            entries[by_binding[subject[len("binding "):]]].placements.append(f"{subject[len('binding '):]}: {text}")
        elif subject in entries:
            entries[subject].reasons.append(text)
        else:
            general.append(note)
    now = clock.now()
    for step in steps:
        if step.kind in ("Certificate", "UploadedCertificate") and step.name in entries:
            _certificate(entries[step.name], step, now)
        elif step.kind == "CertificateBinding" and by_binding.get(step.name) in entries:
            _binding(entries[by_binding[step.name]], step)
    for violation in violations:
        if violation.kind in ("Certificate", "UploadedCertificate") and violation.resource not in entries:
            entries[violation.resource] = Entry(violation.resource)  # one whose step never came (it failed check)
        owner = entries.get(violation.resource) or entries.get(by_binding.get(violation.resource, ""))
        if owner is None:
            general.append(f"[{violation.level}] {violation.rule}: {violation.message}")
        else:
            owner.violations.append(violation)
            if violation.level == "mandatory":
                owner.actions.insert(0, "blocked")
    return Plan(stack, entries, general, errors, changes, rate_forecast(steps, entries, now, limits))


# --- the rate-limit forecast ------------------------------------------------------------------------------------

ORDERS = ("issue", "renew", "re-issue")  # what places an ACME order (re-key comes with one of them)


def _time(value: Any) -> dt.datetime | None:
    try:
        return clock.parse_rfc3339(str(value)) if value else None
    except ValueError:
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _issuance(step: Step) -> ratelimits.Issuance | None:
    """The certificate in state (what the CA already issued), if it is an ACME one."""
    old = step.old
    not_before = _time(old.get("not_before"))
    settings = _mapping(old.get("issuer_settings"))
    if old.get("issuer_type") != "acme" or not_before is None or not settings.get("directory_url"):
        return None
    facts = _mapping(old.get("policy_facts"))
    names = old.get("domains") or old.get("dns_names") or ()
    return ratelimits.Issuance(step.name, str(facts.get("issuer") or ""), str(settings["directory_url"]),
                               tuple(str(n) for n in names), not_before)


def rate_forecast(steps: Iterable[Step], entries: Mapping[str, Entry], now: dt.datetime,
                  limits: Mapping[str, RateLimits] | None) -> Forecast:
    """The ACME orders the plan places (new, renewed and re-issued certificates), and the ACME certificates in
    state (issued at their not_before), against each issuer's limits."""
    history: list[ratelimits.Issuance] = []
    orders: list[ratelimits.Order] = []
    for step in steps:
        if step.kind != "Certificate":
            continue
        current = _issuance(step)
        if current is not None and current not in history:  # a replacement's two steps share the old state
            history.append(current)
        entry = entries.get(step.name)
        settings = _mapping(step.value("issuer_settings"))
        if (entry is None or step.value("issuer_type") != "acme" or not settings.get("directory_url")
                or not any(a in entry.actions for a in ORDERS)):
            continue
        facts = _mapping(step.value("policy_facts"))
        orders.append(ratelimits.Order(
            step.name, str(facts.get("issuer") or ""), str(settings["directory_url"]),
            tuple(str(n) for n in step.value("domains") or ()), current=current,
            renewal_source=str(step.old.get("renewal_source") or "") or None,
            ari_window_start=_time(step.old.get("ari_window_start"))))
    return ratelimits.forecast(orders, history, now, limits)


def stack_rate_limits(work_dir: Path, stack: str) -> tuple[dict[str, RateLimits], list[str]]:
    """Each issuer's `rate_limits:` block from the stack file (`certplane:issuers.<name>.rate_limits`), and the
    problems found in them (the issuer keeps Let's Encrypt's limits then; the preview reports the same
    problem)."""
    try:
        issuers = stack_file_config(work_dir, stack).get("certplane:issuers")
    except CliError as err:
        return {}, [f"rate limits: {err}"]
    out: dict[str, RateLimits] = {}
    problems: list[str] = []
    for issuer, block in (issuers or {}).items() if isinstance(issuers, Mapping) else ():
        raw = block.get("rate_limits") if isinstance(block, Mapping) else None
        if raw is None:
            continue
        at = f"certplane:issuers.{issuer}.rate_limits"
        try:
            out[str(issuer)] = parse(RateLimits, raw, field=at)
        except InputProblems as err:
            problems.append(f"rate limits: {err}; using Let's Encrypt's limits for {issuer}")
    return out, problems


def _certificate(entry: Entry, step: Step, now: Any) -> None:
    not_after = step.old.get("not_after")
    if not_after:
        when = clock.parse_rfc3339(str(not_after))
        left = clock.days_between(now, when)
        entry.expires = f"{when:%Y-%m-%d} ({left:.1f} d)" if left >= 0 else f"{when:%Y-%m-%d} (expired {-left:.1f} d ago)"
    if step.op == "create":
        entry.actions.append("upload" if step.kind == "UploadedCertificate" else "issue")
        names = ", ".join(step.value("domains") or ()) or "the names in its upload"
        entry.reasons.insert(0, f"new certificate for {names}")
        return
    if step.op in ("delete", "delete-replaced"):
        entry.actions.append("delete")
        return
    if step.op not in ("update", "replace"):
        return
    old_names, new_names = list(step.old.get("domains") or ()), list(step.new.get("domains") or ())
    if step.kind == "UploadedCertificate" and "serial" in step.diffs:
        entry.actions.append("upload")
        entry.reasons.insert(0, "a new bundle replaces the uploaded certificate")
    elif old_names != new_names and step.kind == "Certificate":
        entry.actions.append("re-issue")
        added, removed = [n for n in new_names if n not in old_names], [n for n in old_names if n not in new_names]
        entry.reasons.insert(0, "names " + "; ".join([*(["+ " + ", ".join(added)] if added else []),
                                                   *(["- " + ", ".join(removed)] if removed else [])]))
    elif any("renew" in d or "expired" in d for d in entry.reasons):
        entry.actions.append("renew")
    elif "serial" in step.diffs:
        entry.actions.append("re-issue")
    else:
        entry.actions.append("re-render")
    if "private_key_pem" in step.diffs:
        entry.actions.append("re-key")
    not_after = step.old.get("not_after")
    if not_after and "serial" in step.diffs and not any("expire" in r for r in entry.reasons):
        left = clock.days_between(now, clock.parse_rfc3339(str(not_after)))
        entry.reasons.append(f"the current one expires {clock.minute(clock.parse_rfc3339(str(not_after)))}, "
                             f"{left:.1f} days from now")


def _binding(entry: Entry, step: Step) -> None:
    target = f"{step.value('target')} ({step.value('target_type')})"
    if step.op not in ("delete", "delete-replaced"):
        entry.targets.append(str(step.value("target")))
    if step.op == "create":
        entry.actions.append("deploy")
        entry.placements.append(f"{step.name}: deploy to {target}")
    elif step.op in ("delete", "delete-replaced"):
        entry.actions.append("remove")
        entry.placements.append(f"{step.name}: remove from {target}")
    elif step.op == "replace":
        entry.actions.append("move")
    elif step.op == "update":
        entry.actions.append("drift repaired" if "live_fingerprints" in step.diffs else "redeploy")


# --- rendering --------------------------------------------------------------------------------------------------

def _summary(entry: Entry) -> str:
    actions = [a for a in ORDER if a in entry.actions]
    return ", ".join(dict.fromkeys(actions)) if actions else "unchanged"


def _sorted(plan: Plan) -> list[Entry]:
    return sorted(plan.entries.values(), key=lambda e: (ORDER.index(e.headline), e.name))


def _shown_checks(plan: Plan) -> list[ratelimits.Check]:
    return ratelimits.shown_checks(plan.rate_limits.checks)


def _rate_warning(plan: Plan) -> str:
    over = plan.rate_limits.over
    if not plan.over_rate_limit:
        return ""
    return (f" Rate limits: {len(over)} certificate(s) would go over the CA's limits ({', '.join(over)})"
            + (": the plan fails (--fail-on-rate-limit)." if plan.fail_on_rate_limit else "."))


def render_text(plan: Plan) -> str:
    out = [f"certplane plan for stack {plan.stack}"]
    for line in plan.errors:
        out.append(f"  error: {line}")
    width = max((len(e.name) for e in plan.entries.values()), default=0)
    for entry in _sorted(plan):
        out.append(f"  {entry.name:{width}}  {_summary(entry)}")
        for detail in entry.details:
            out.append(f"  {'':{width}}    {detail}")
        for v in entry.violations:
            out.append(f"  {'':{width}}    policy [{v.level}] {v.rule}: {v.message}")
    for note in plan.general:
        out.append(f"  note: {note}")
    checks = _shown_checks(plan)
    if checks:
        with_ca = ratelimits.several_cas(checks)
        out.append("  Rate limits (the ACME orders this up places, with what the CA already counts):")
        out += [f"    {ratelimits.limit_line(c, with_ca)}" for c in checks]
    out.append(_verdict(plan))
    return "\n".join(out) + "\n"


def render_markdown(plan: Plan) -> str:
    out = [f"### certplane plan: `{plan.stack}`", "", _verdict(plan), ""]
    if plan.errors:
        out += ["**The preview stopped:**", "", *[f"- {_md(line)}" for line in plan.errors], ""]
    out += ["| certificate | plan | expires (days left) | served at | policy |", "|---|---|---|---|---|"]
    for entry in _sorted(plan):
        policy = ", ".join(f"{v.level} `{v.rule}`" for v in entry.violations) or "ok"
        where = ", ".join(sorted(set(entry.targets))) or "—"
        out.append(f"| `{entry.name}` | {_summary(entry)} | {entry.expires or '—'} | {where} | {policy} |")
    out.append("")
    for entry in _sorted(plan):
        if not entry.details and not entry.violations:
            continue
        out += [f"<details><summary><code>{entry.name}</code>: {_summary(entry)}</summary>", ""]
        out += [f"- {_md(d)}" for d in entry.details]
        out += [f"- policy **{v.level}** `{v.rule}`: {_md(v.message)}" for v in entry.violations]
        out += ["", "</details>", ""]
    checks = _shown_checks(plan)
    if checks:
        out += ["#### Rate limits", "", "| limit | for | CA | count / limit | window | counted | over the limit |",
                "|---|---|---|---|---|---|---|"]
        for c in checks:
            over = ", ".join(f"`{n}`" for n in c.over) or "—"
            count = f"**{c.count} / {c.limit}**" if c.exceeded else f"{c.count} / {c.limit}"
            out.append(f"| {ratelimits.LIMIT_NAMES[c.kind]} | `{_md(c.scope)}` | {_md(c.directory_url)} | {count} | "
                       f"{c.window_text} | {_md(ratelimits.counts_text(c))} | {over} |")
        out.append("")
    if plan.general:
        out += ["<details><summary>other notes</summary>", "", *[f"- {_md(n)}" for n in plan.general], "",
                "</details>", ""]
    return "\n".join(out)


def render_json(plan: Plan) -> str:
    doc = {"stack": plan.stack, "changes": plan.changes, "exit_code": plan.exit_code, "errors": plan.errors,
           "certificates": [{"name": e.name, "plan": [a for a in ORDER if a in e.actions] or ["unchanged"],
                             "expires": e.expires or None, "targets": sorted(set(e.targets)), "details": e.details,
                             "policy": [{"level": v.level, "rule": v.rule, "message": v.message}
                                        for v in e.violations]} for e in _sorted(plan)],
           "notes": plan.general,
           "rate_limits": {"exceeded": plan.over_rate_limit, "over": list(plan.rate_limits.over),
                           "checks": [{"limit": c.kind, "scope": c.scope, "directory_url": c.directory_url,
                                       "count": c.count, "max": c.limit,
                                       "window_hours": int(c.window.total_seconds() // 3600),
                                       "issued": list(c.history), "planned": list(c.planned),
                                       "exempt": [{"certificate": n, "why": why} for n, why in c.exempt],
                                       "over": list(c.over), "exceeded": c.exceeded}
                                      for c in _shown_checks(plan)]}}
    return json.dumps(doc, indent=2) + "\n"


def _verdict(plan: Plan) -> str:
    counts = ", ".join(f"{n} to {op}" for op, n in sorted(plan.changes.items()) if op != "same" and n)
    if plan.blocked:
        why = "a mandatory policy" if not plan.errors else "an error"
        return f"Blocked by {why}: `pulumi up` would not run." + (f" ({counts})" if counts else "") + \
            _rate_warning(plan)
    if plan.changed:
        return f"Changes: {counts}." + _rate_warning(plan)
    return "No changes." + _rate_warning(plan)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


# --- the command ------------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="Markdown for a pull-request comment")
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    parser.add_argument("--refresh", action="store_true", help="read what is live first (drift shows as repaired)")
    parser.add_argument("--policy-pack", metavar="DIR",
                        help="policy pack to run (default: the project's policy/, if it has one)")
    parser.add_argument("--policy-pack-config", metavar="FILE", help="its config (default: the pack's config.json)")
    parser.add_argument("--no-policy", action="store_true", help="run no policy pack")
    parser.add_argument("--fail-on-rate-limit", action="store_true",
                        help="exit 1 when the ACME orders would go over a CA rate limit (default: a warning)")
    parser.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="how long the preview may take (default: 1800)")


def run(args: argparse.Namespace, stack: str | None, cwd: str | None) -> int:
    work_dir = project_dir(cwd)
    stack = stack or os.environ.get(STACK_ENV) or DEFAULT_STACK
    pack = None if args.no_policy else Path(args.policy_pack).resolve() if args.policy_pack else \
        (work_dir / "policy" if (work_dir / "policy" / "PulumiPolicy.yaml").exists() else None)
    config = Path(args.policy_pack_config).resolve() if args.policy_pack_config else None
    events = preview_events(stack, work_dir, refresh=args.refresh, policy_pack=pack, policy_config=config,
                            timeout=args.timeout)
    limits, problems = stack_rate_limits(work_dir, stack)
    plan = read_events(stack, events, limits)
    plan.general.extend(problems)
    plan.fail_on_rate_limit = args.fail_on_rate_limit
    render = render_markdown if args.markdown else render_json if args.json else render_text
    sys.stdout.write(render(plan))
    return plan.exit_code
