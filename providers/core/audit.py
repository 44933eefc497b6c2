"""The audit trail: one JSON line per issue, renewal, upload, deploy, removal and revocation (and per failure of
one), appended to a hash-chained log so an edited, deleted, inserted or reordered line is found.

Each record carries `seq` (its line number), `prev` (the previous record's hash; 64 zeros for the first) and
`hash` (SHA-256 of the record's canonical JSON without `hash`). A head file beside the log (`<log>.head`)
records the last line's number and hash, so a line cut from the end is found too. This is tamper-evident, not
tamper-proof: someone who can rewrite the whole file and its head can forge a consistent log; keep a copy
elsewhere (a log shipper, an append-only bucket) where that matters.

Writers are the provider processes of every `pulumi up`, several threads each: an append takes an exclusive
`flock` on `<log>.lock`, reads the head, writes one line with O_APPEND, fsyncs, then replaces the head. Records
never carry key material: details pass through `scrub`, which cuts any PEM block.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import clock
from .validation import Model

GENESIS = "0" * 64
ENV_LOG = "CERTPLANE_AUDIT_LOG"  # a log path for every stack run from this environment
ENV_ACTOR = "CERTPLANE_ACTOR"
_PEM = re.compile(r"-----BEGIN [^-]+-----.*?(-----END [^-]+-----|$)", re.S)
_threads = threading.Lock()


class AuditContext(Model):
    """Where a resource's events go, set by the program on every audited resource (never a change)."""

    log: str
    stack: str


@dataclass(frozen=True)
class Event:
    """What happened to one resource. `action`: issue, renew, reissue, rerender, upload, deploy, remove,
    revoke, delete; `outcome`: ok or failed (then `detail` is the one-line error)."""

    resource: str
    action: str
    outcome: str = "ok"
    serial: str | None = None
    fingerprint: str | None = None
    target: str | None = None  # where a binding deploys
    issuer: str | None = None  # who signed a certificate (the config's issuer name)
    detail: str | None = None


def scrub(text: str) -> str:
    """One line, no PEM block: what may go into a record's detail."""
    return " ".join(_PEM.sub("[PEM removed]", text).split())[:1000]


def default_log(stack: str, project: str, *, backend_url: str | None, project_dir: Path) -> Path:
    """Where a stack's log lives when nothing is configured: beside the state for the file backend (whoever
    shares the state directory shares its audit), else in the project's `.certplane/audit/`."""
    if backend_url and backend_url.startswith("file://"):
        base = Path(backend_url[len("file://"):].split("?", 1)[0]).expanduser()
        return base / "certplane-audit" / project / f"{stack}.jsonl"
    return project_dir / ".certplane" / "audit" / f"{stack}.jsonl"


def resolve_log(configured: str | None, *, stack: str, project: str, project_dir: Path,
                env: Mapping[str, str] | None = None) -> Path:
    """The one rule for where a stack's log is, shared by the program and `./certplane audit`: the stack's
    `certplane:audit.path` (relative to the project; `{stack}` and `{project}` are filled in), else
    $CERTPLANE_AUDIT_LOG (the same), else `default_log`."""
    env = os.environ if env is None else env
    chosen = configured or env.get(ENV_LOG)
    if chosen:
        path = Path(chosen.replace("{stack}", stack).replace("{project}", project)).expanduser()
        return path if path.is_absolute() else project_dir / path
    return default_log(stack, project, backend_url=env.get("PULUMI_BACKEND_URL"), project_dir=project_dir)


def actor(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """Who runs this: $CERTPLANE_ACTOR, a CI system's user, the git user's email, else user@host."""
    env = os.environ if env is None else env
    if env.get(ENV_ACTOR):
        return env[ENV_ACTOR]
    if env.get("GITHUB_ACTOR"):
        return f"github:{env['GITHUB_ACTOR']}"
    if env.get("GITLAB_USER_LOGIN"):
        return f"gitlab:{env['GITLAB_USER_LOGIN']}"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        email = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True, text=True,
                               timeout=5, stdin=subprocess.DEVNULL).stdout.strip()
        if email:
            return email
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _digest(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class Verdict:
    lines: int
    problem: str | None = None  # "line N: ..." naming the first bad line

    @property
    def intact(self) -> bool:
        return self.problem is None


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.head = self.path.with_name(self.path.name + ".head")
        self.lock = self.path.with_name(self.path.name + ".lock")

    def append(self, stack: str, who: str, event: Event) -> dict[str, Any]:
        """Append one record; returns it. Raises OSError when the log cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _threads, self._locked():
            seq, prev = self._tail()
            record: dict[str, Any] = {
                "seq": seq + 1, "time": clock.rfc3339(clock.real_now()), "stack": stack, "actor": who,
                "resource": event.resource, "action": event.action, "outcome": event.outcome,
                "serial": event.serial, "fingerprint": event.fingerprint, "issuer": event.issuer, "target": event.target,
                "detail": scrub(event.detail) if event.detail else None, "prev": prev,
            }
            record["hash"] = _digest(record)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, _line(record).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_head(record["seq"], record["hash"], self.path.stat().st_size)
        return record

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record as written (unparseable lines raise ValueError naming the line)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for number, text in enumerate(lines, 1):
                try:
                    record = json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError(f"line {number}: not JSON") from None
                if not isinstance(record, dict):
                    raise ValueError(f"line {number}: not a record")
                yield record

    def verify(self) -> Verdict:
        """The chain from the first line to the head: the first line that does not hold, named."""
        prev, count = GENESIS, 0
        try:
            for count, record in enumerate(self.records(), 1):
                if record.get("hash") != _digest(record):
                    return Verdict(count, f"line {count}: edited (its content does not match its hash)")
                if record.get("seq") != count or record.get("prev") != prev:
                    return Verdict(count, f"line {count}: out of place (it was line {record.get('seq')}; a line "
                                          "before it was deleted, inserted or moved)")
                prev = str(record["hash"])
        except ValueError as err:
            return Verdict(count, f"{err} (edited)")
        head = self._read_head()
        if head is None:
            return Verdict(count, None if count == 0 else f"line {count}: the head file {self.head} is missing")
        if head["seq"] > count:
            return Verdict(count, f"line {count + 1}: missing (the log ends at line {count}; its head says "
                                  f"{head['seq']} lines were written)")
        if head["seq"] < count or head["hash"] != prev:
            return Verdict(count, f"line {head['seq']}: does not match the head file (the log was rewritten)")
        return Verdict(count)

    # --- mechanics ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _tail(self) -> tuple[int, str]:
        """The last record's (seq, hash): from the head when it matches the file's size, else read."""
        head = self._read_head()
        size = self.path.stat().st_size if self.path.exists() else 0
        if head is not None and head.get("size") == size:
            return int(head["seq"]), str(head["hash"])
        seq, prev = 0, GENESIS
        with contextlib.suppress(ValueError):
            for record in self.records():
                seq, prev = int(record.get("seq", seq + 1)), str(record.get("hash", prev))
        return seq, prev

    def _read_head(self) -> dict[str, Any] | None:
        try:
            head = json.loads(self.head.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return head if isinstance(head, dict) and isinstance(head.get("seq"), int) else None

    def _write_head(self, seq: int, digest: str, size: int) -> None:
        tmp = self.head.with_name(self.head.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps({"seq": seq, "hash": digest, "size": size}))
        os.replace(tmp, self.head)


__all__ = ["AuditContext", "AuditLog", "ENV_LOG", "Event", "Verdict", "actor", "default_log", "resolve_log",
           "scrub"]
