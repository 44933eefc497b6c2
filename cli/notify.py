"""Alerts: once per threshold crossing, by webhook (Slack-compatible JSON) and e-mail (SMTP, STARTTLS).

State lives in a small JSON file (0600): per stack, per certificate, the serial and, per channel, the alert
levels already sent (`warn-30`, `warn-14`, ..., `critical`). A level is sent once; a new serial (renewed
certificate) resets them; a level that no longer applies is re-armed. A failed send leaves its levels unsent so
the next run retries. Every network call has a timeout; failures are returned, never raised.

Overlapping runs (cron and a person, two CI jobs) share the state safely: a run takes an exclusive lock
(`flock` on `<state>.lock`, 0600, never removed), reads the state, sends what is due, and replaces the state
atomically (a temporary file in the same directory, fsync, rename) before it lets go, so an alert goes out once.

The webhook URL is a secret (Slack and Teams carry their token in the path; `user:password@` is sent as HTTP
Basic authentication): it is only ever shown as scheme://host[:port]/…, and a URL that cannot be used fails its
channel with one line that does not echo it. Only a 2xx answer counts as sent; a redirect is not followed (urllib
would turn the POST into an empty GET and report success) and counts as a failure.

A failed delivery (or an unusable state file) never changes `check`'s exit code: that stays the health verdict.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import socket
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from providers.core.clock import rfc3339

from .expiry import crossed_thresholds, worst
from .model import Certificate, Finding
from .render import fmt_days, fmt_time

SMTP_USER_ENV, SMTP_PASSWORD_ENV = "CERTPLANE_SMTP_USER", "CERTPLANE_SMTP_PASSWORD"
SMTP_CA_FILE_ENV = "CERTPLANE_SMTP_CA_FILE"  # trust for a relay with a private CA (default: system store)
STATE_VERSION = 1
LOCK_TIMEOUT = 30.0  # seconds to wait for an overlapping run to finish with the state file


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
            "chain_not_after": rfc3339(c.expires), "chain_earliest_subject": c.chain_earliest_subject,
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


class StateError(Exception):
    """The alert state cannot be read, locked or written: notifications are skipped this run, health is not."""


class StateFile:
    """The alert state. Read and write it with `locked()` (what `dispatch` does): exclusive across processes and
    threads, read under the lock, replaced atomically before the lock is released."""

    def __init__(self, path: Path, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = path
        self.lock_path = path.with_name(f"{path.name}.lock")
        self.lock_timeout = lock_timeout
        self.data: dict[str, Any] = {"version": STATE_VERSION, "stacks": {}}

    def load(self) -> None:
        self.data = {"version": STATE_VERSION, "stacks": {}}
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as err:
            raise StateError(f"--state-file {self.path}: unreadable ({err.strerror})") from None
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise StateError(f"--state-file {self.path}: unreadable ({err}); remove it to start over") from None
        if isinstance(loaded, dict) and isinstance(loaded.get("stacks"), dict):
            self.data = loaded

    def stack(self, name: str) -> dict[str, Any]:
        return self.data["stacks"].setdefault(name, {})  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def locked(self) -> Iterator[StateFile]:
        """Hold the lock, load the state, and save it when the block ends without an exception."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.lock_path, flags, 0o600)
        except OSError as err:
            raise StateError(f"--state-file {self.path}: cannot create its lock file ({err.strerror})") from None
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise StateError(f"--state-file {self.path}: cannot lock it ({err.strerror})") from None
                    if time.monotonic() >= deadline:
                        raise StateError(f"--state-file {self.path}: another `certplane check` has held its lock "
                                         f"for {self.lock_timeout:g}s; nothing sent this run") from None
                    time.sleep(0.05)
            self.load()
            yield self
            self.save()
        finally:
            os.close(fd)  # releases the lock

    def save(self) -> None:
        """Replace the state file atomically (0600): readers see the old state or the new one, never half."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as err:
            raise StateError(f"--state-file {self.path}: cannot write it ({err.strerror})") from None
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.data, fh, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StateError(f"--state-file {self.path}: cannot write it ({err.strerror})") from None
        with contextlib.suppress(OSError):  # make the rename durable
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


@dataclass
class Channel:
    name: str  # "webhook" | "email"
    describe: str  # never a secret: how the channel is shown
    send: Any  # Callable[[list[Alert], str, str], None]; raises NotifyError
    problem: str | None = None  # a configuration that cannot work: reported every run, nothing sent


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


# RFC 3986 characters; anything else (a space, a control or a non-ASCII character) is refused, not guessed at.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_HOST_SHOWN = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True)
class WebhookTarget:
    url: str  # without user:password
    authorization: str | None  # the Basic header for a URL's user:password
    shown: str  # scheme://host[:port]/…


def _redact(url: str) -> str:
    """Webhook URLs carry their secret in the path or query (Slack, Teams) or as user:password: show
    scheme://host[:port] (and /… when there is more) only, whatever the URL looks like."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return "<the --webhook URL>"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hostport = authority.rsplit("@", 1)[-1]
    host, port = hostport, ""
    found = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::([0-9]{1,5}))?", hostport)
    if found:
        host, port = found.group(1), found.group(2) or ""
    if not _HOST_SHOWN.fullmatch(host):
        host, port = "<invalid host>", ""
    more = "/…" if rest[len(authority):].strip("/") else ""
    return f"{scheme.lower()}://{host}{':' + port if port else ''}{more}"


def parse_webhook_url(url: str) -> tuple[WebhookTarget | None, str]:
    """(the target, "") or (None, why the URL cannot be used: never quoting it)."""
    shown = _redact(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("http", "https"):
        return None, "invalid URL: expected an http:// or https:// URL"
    if not _URL_CHARS.fullmatch(url):
        return None, ("invalid URL: it holds a character a URL cannot (a space, a control or a non-ASCII "
                      "character): percent-encode it")
    if re.search(r"%(?![0-9A-Fa-f]{2})", url):
        return None, "invalid URL: a % not followed by two hex digits"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as err:
        what = "IPv6 address" if "IPv6" in str(err) else "port (a number from 1 to 65535)"
        return None, f"invalid URL: a malformed {what}"
    if not host or port == 0:
        return None, "invalid URL: no host" if not host else "invalid URL: a malformed port (a number from 1 to 65535)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    authorization = None
    if "@" in parts.netloc:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return WebhookTarget(clean, authorization, shown), ""


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _scrubber(url: str, target: WebhookTarget | None) -> Callable[[str], str]:
    """Removes every secret part of the URL from a message (whatever a library put into it)."""
    secrets = {url}
    parts = None
    with contextlib.suppress(ValueError):
        parts = urllib.parse.urlsplit(url)
    if parts is not None:
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        secrets |= {parts.netloc, tail, parts.path, parts.query, parts.username or "", parts.password or ""}
        secrets -= {parts.hostname or "", parts.netloc.rsplit("@", 1)[-1]}  # the host is shown anyway
    if target:
        secrets |= {target.url, target.authorization or ""}
        secrets |= {target.authorization.split(" ", 1)[1]} if target.authorization else set()
    ordered = sorted((s for s in secrets if len(s) >= 6), key=len, reverse=True)  # not a word of the message

    def scrub(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "…")
        return text

    return scrub


def webhook_sender(url: str, timeout: float) -> Channel:
    import http.client  # only a run that sends imports the HTTP stack (`check` starts faster without it)
    import urllib.error
    import urllib.request

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        """A webhook is POSTed to exactly its URL: urllib would follow a 301/302/303 as a GET without the body."""

        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx surfaces as an HTTPError

    target, problem = parse_webhook_url(url)
    scrub = _scrubber(url, target)
    opener = urllib.request.build_opener(RefuseRedirects)

    def send(alerts: list[Alert], stack: str, now: str) -> None:
        if target is None:
            raise NotifyError(problem)
        headline, body = summary_text(alerts, stack)
        payload = {
            "text": f"*{headline}*\n{body}",
            "stack": stack, "status": worst([a.level for a in alerts]), "generated_at": now,
            "alerts": [a.as_dict() for a in alerts],
        }
        headers = {"Content-Type": "application/json", "User-Agent": "certplane-check"}
        if target.authorization:
            headers["Authorization"] = target.authorization
        request = urllib.request.Request(target.url, data=json.dumps(payload).encode(), method="POST",
                                         headers=headers)
        try:
            with opener.open(request, timeout=timeout) as response:  # noqa: S310 - the operator's URL
                response.read(65536)
                status = response.status
                if not 200 <= status < 300:
                    raise NotifyError(f"HTTP {status} {_one_line(scrub(str(response.reason)))}: only a 2xx "
                                      f"answer counts as delivered")
        except NotifyError:
            raise
        except urllib.error.HTTPError as err:
            reason = _one_line(scrub(str(err.reason)))
            if 300 <= err.code < 400:
                raise NotifyError(f"HTTP {err.code} {reason} (a webhook redirect is not followed; "
                                  f"point --webhook at the final URL)") from None
            raise NotifyError(f"HTTP {err.code} {reason}") from None
        except (TimeoutError, socket.timeout):
            raise NotifyError(f"timed out after {timeout:g}s") from None
        except urllib.error.URLError as err:
            if isinstance(err.reason, (TimeoutError, socket.timeout)):
                raise NotifyError(f"timed out after {timeout:g}s") from None
            raise NotifyError(_one_line(scrub(str(err.reason)))) from None
        except (http.client.HTTPException, OSError) as err:
            raise NotifyError(_one_line(scrub(f"{type(err).__name__}: {err}"))) from None
        except (ValueError, UnicodeError) as err:  # what urllib / http.client raise for a URL they reject
            raise NotifyError(f"invalid URL ({type(err).__name__})") from None

    return Channel("webhook", target.shown if target else _redact(url), send, problem=problem or None)


def smtp_sender(host: str, port: int, mail_from: str, mail_to: Sequence[str], timeout: float) -> Channel:
    user, password = os.environ.get(SMTP_USER_ENV), os.environ.get(SMTP_PASSWORD_ENV)
    import smtplib  # only for a check that mails (the email package costs every other run its start-up)
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

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
            f"  level: {a.level}\n  expires: {fmt_time(a.certificate.expires)} ({fmt_days(a.days_left)} days)\n"
            + (f"  served chain: {a.certificate.chain_earliest_subject or 'a certificate'} expires first; the leaf "
               f"expires {fmt_time(a.certificate.not_after)}\n" if a.certificate.chain_expires_first else "")
            + f"  renewal time: {fmt_time(a.certificate.renewal_time)}\n  serial: {a.certificate.serial}\n"
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
    """Send what was not sent yet on each channel, update the state, and report per channel. The whole
    read-modify-write holds the state's lock, so overlapping runs send each alert once. Raises StateError
    (nothing sent) when the state cannot be read, locked or written."""
    with state.locked():
        return _dispatch_locked(alerts, certs, channels, state, stack, now)


def _dispatch_locked(alerts: Sequence[Alert], certs: Sequence[Certificate], channels: Sequence[Channel],
                     state: StateFile, stack: str, now: dt.datetime) -> list[Outcome]:
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
        if channel.problem:  # a channel that cannot work says so every run, alerts due or not
            outcome.error = channel.problem
        elif due:
            try:
                channel.send(due, stack, stamp)
                outcome.alerts = [f"{a.certificate.name}:{a.level}" for a in due]
            except NotifyError as err:
                outcome.error = _one_line(err) or "failed"
            except Exception as err:  # noqa: BLE001 - a bug must not cost the health verdict; no text: it may hold a secret
                outcome.error = f"unexpected {type(err).__name__}"
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
    return outcomes
