"""Alerts: once per threshold crossing, by webhook (Slack-compatible JSON) and e-mail (SMTP, STARTTLS).

State lives in a small JSON file (0600): per stack, per certificate, the serial and, per channel, the alert
levels already sent (`warn-30`, `warn-14`, ..., `critical`). A level is sent once; a new serial (renewed
certificate) resets them; a level that no longer applies is re-armed. A failed send leaves its levels unsent so
the next run retries. Every network call has a timeout; failures are returned, never raised.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from providers.core.clock import rfc3339

from . import CliError
from .expiry import crossed_thresholds, worst
from .model import Certificate, Finding
from .render import fmt_days, fmt_time

DEFAULT_TIMEOUT = 10.0
SMTP_USER_ENV, SMTP_PASSWORD_ENV = "CERTPLANE_SMTP_USER", "CERTPLANE_SMTP_PASSWORD"
SMTP_CA_FILE_ENV = "CERTPLANE_SMTP_CA_FILE"  # trust for a relay with a private CA (default: system store)
STATE_VERSION = 1


@dataclass(frozen=True)
class Alert:
    certificate: Certificate
    level: str  # warning | critical
    keys: tuple[str, ...]  # every level key that applies now, e.g. ("warn-30", "warn-14", "critical")
    findings: tuple[Finding, ...]
    days_left: float
    threshold_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        c = self.certificate
        return {
            "certificate": c.name, "level": self.level, "threshold_days": self.threshold_days,
            "days_remaining": round(self.days_left, 1), "not_after": rfc3339(c.not_after),
            "renewal_time": rfc3339(c.renewal_time) if c.renewal_time else None,
            "serial": c.serial, "domains": list(c.domains), "issuer": c.issuer, "targets": list(c.targets),
            "owner": c.owner, "tags": dict(c.tags), "messages": [f.message for f in self.findings],
        }

    def line(self) -> str:
        label = "CRITICAL" if self.level == "critical" else "WARNING"
        first = self.findings[0].message if self.findings else f"{fmt_days(self.days_left)} days left"
        owner = f" [owner: {self.certificate.owner}]" if self.certificate.owner else ""
        return f"{label} {self.certificate.name}: {first}{owner}"


def current_alerts(certs: Sequence[Certificate], findings: dict[str, list[Finding]], now: dt.datetime,
                   warn_days: tuple[int, ...]) -> list[Alert]:
    """The alert each unhealthy certificate stands at now (not yet filtered by what was already sent)."""
    out = []
    for cert in certs:
        flagged = [f for f in findings.get(cert.name, []) if f.level != "ok"]
        if not flagged:
            continue
        days = cert.days_left(now)
        crossed = crossed_thresholds(cert, now, warn_days)
        keys = [f"warn-{t}" for t in crossed]
        level = worst([f.level for f in flagged])
        if level == "critical":
            keys.append("critical")
        elif not keys:  # a warning that is not about days left (renewal due, not yet valid)
            keys.append("warning")
        out.append(Alert(cert, level, tuple(keys), tuple(flagged), days, min(crossed) if crossed else None))
    return out


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"version": STATE_VERSION, "stacks": {}}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise CliError(f"--state-file {path}: unreadable ({err}); remove it to start over") from None
            if isinstance(loaded, dict) and isinstance(loaded.get("stacks"), dict):
                self.data = loaded

    def stack(self, name: str) -> dict[str, Any]:
        return self.data["stacks"].setdefault(name, {})  # type: ignore[no-any-return]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


@dataclass
class Channel:
    name: str  # "webhook" | "email"
    describe: str
    send: Any  # Callable[[list[Alert], str, str], None]; raises NotifyError


class NotifyError(Exception):
    pass


@dataclass
class Outcome:
    channel: str
    target: str
    alerts: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "target": self.target, "sent": self.alerts if not self.error else [],
                "error": self.error}


def summary_text(alerts: Sequence[Alert], stack: str) -> tuple[str, str]:
    """(subject/headline, body) for a batch of alerts."""
    level = worst([a.level for a in alerts])
    n = len(alerts)
    noun = "certificate needs" if n == 1 else "certificates need"
    headline = f"certplane {level.upper()}: {n} {noun} attention on stack {stack}"
    return headline, "\n".join(f"• {a.line()}" for a in alerts)


def webhook_sender(url: str, timeout: float) -> Channel:
    if not url.startswith(("http://", "https://")):
        raise CliError("--webhook: expected an http:// or https:// URL (the value is not shown: it may hold a secret)")

    def send(alerts: list[Alert], stack: str, now: str) -> None:
        headline, body = summary_text(alerts, stack)
        payload = {
            "text": f"*{headline}*\n{body}",
            "stack": stack, "status": worst([a.level for a in alerts]), "generated_at": now,
            "alerts": [a.as_dict() for a in alerts],
        }
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "certplane-check"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator's URL
                response.read(65536)
        except urllib.error.HTTPError as err:
            raise NotifyError(f"HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise NotifyError(f"{reason}") from None

    return Channel("webhook", _redact(url), send)


def _redact(url: str) -> str:
    """Webhook URLs carry their secret in the path (Slack, Teams): show scheme://host/… only."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…" if "/" in rest.strip("/") else f"{scheme}://{host}"


def smtp_sender(host: str, port: int, mail_from: str, mail_to: Sequence[str], timeout: float) -> Channel:
    user, password = os.environ.get(SMTP_USER_ENV), os.environ.get(SMTP_PASSWORD_ENV)

    def send(alerts: list[Alert], stack: str, now: str) -> None:
        headline, body = summary_text(alerts, stack)
        msg = EmailMessage()
        msg["Subject"] = headline
        msg["From"] = mail_from
        msg["To"] = ", ".join(mail_to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
        details = "\n\n".join(
            f"{a.certificate.name} ({', '.join(a.certificate.domains) or '-'})\n"
            f"  level: {a.level}\n  expires: {fmt_time(a.certificate.not_after)} ({fmt_days(a.days_left)} days)\n"
            f"  renewal time: {fmt_time(a.certificate.renewal_time)}\n  serial: {a.certificate.serial}\n"
            f"  owner: {a.certificate.owner or '-'}; targets: {', '.join(a.certificate.targets) or '-'}\n"
            + "\n".join(f"  - {f.message}" for f in a.findings)
            for a in alerts)
        msg.set_content(f"{headline} (checked {now})\n\n{body}\n\n{details}\n\n-- \ncertplane check\n")
        try:
            with smtplib.SMTP(host, port, timeout=timeout) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context(cafile=os.environ.get(SMTP_CA_FILE_ENV) or None))
                    smtp.ehlo()
                    tls = True
                else:
                    tls = False
                if user:
                    if not tls and host not in ("127.0.0.1", "::1", "localhost"):
                        raise NotifyError(f"refusing to send {SMTP_USER_ENV} credentials: "
                                          f"{host}:{port} does not offer STARTTLS")
                    smtp.login(user, password or "")
                smtp.send_message(msg)
        except NotifyError:
            raise
        except smtplib.SMTPResponseException as err:
            text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else err.smtp_error
            raise NotifyError(f"SMTP {err.smtp_code} {text}") from None
        except (smtplib.SMTPException, ssl.SSLError, socket.timeout, OSError) as err:
            raise NotifyError(f"{type(err).__name__}: {err}") from None

    return Channel("email", f"smtp://{host}:{port} -> {', '.join(mail_to)}", send)


def dispatch(alerts: Sequence[Alert], certs: Sequence[Certificate], channels: Sequence[Channel],
             state: StateFile, stack: str, now: dt.datetime) -> list[Outcome]:
    """Send what was not sent yet on each channel, update the state, and report per channel."""
    memory = state.stack(stack)
    for name in [n for n in memory if n not in {c.name for c in certs}]:
        del memory[name]  # certificate gone from the inventory
    for cert in certs:
        entry = memory.setdefault(cert.name, {"serial": cert.serial, "sent": {}})
        if entry.get("serial") != cert.serial:  # renewed: every alert is armed again
            entry.update(serial=cert.serial, sent={})
    by_name = {a.certificate.name: a for a in alerts}
    stamp = rfc3339(now)
    outcomes = []
    for channel in channels:
        due = []
        for cert in certs:
            sent = set(memory[cert.name]["sent"].get(channel.name, []))
            alert = by_name.get(cert.name)
            if alert and set(alert.keys) - sent:
                due.append(alert)
        outcome = Outcome(channel.name, channel.describe)
        if due:
            try:
                channel.send(due, stack, stamp)
                outcome.alerts = [f"{a.certificate.name}:{a.level}" for a in due]
            except NotifyError as err:
                outcome.error = str(err)
        failed = {a.certificate.name for a in due} if outcome.error else set()
        for cert in certs:
            sent_map = memory[cert.name]["sent"]
            alert = by_name.get(cert.name)
            current = set(alert.keys) if alert else set()
            previous = set(sent_map.get(channel.name, []))
            new = previous & current if cert.name in failed else current
            if new:
                sent_map[channel.name] = sorted(new)
            else:
                sent_map.pop(channel.name, None)
        outcomes.append(outcome)
    state.save()
    return outcomes
