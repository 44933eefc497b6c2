"""The audit trail's hash chain: what it records, and that an edited, deleted, inserted or reordered line (or one
cut from the end) fails verification naming the first bad line. Writers in several threads and processes
never break the chain."""

from __future__ import annotations

import json
import multiprocessing
import stat
import threading
from pathlib import Path

import pytest

from providers.core import keys
from providers.core.audit import AuditLog, Event, actor, resolve_log, scrub


def filled(tmp_path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(tmp_path / "audit" / "dev.jsonl")
    for i in range(n):
        log.append("dev", "alice@example.test", Event(f"certificate c{i}", "issue", serial=f"{i:02x}",
                                                      fingerprint="ab:cd", issuer="ca"))
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_records_chain_and_verify(tmp_path: Path) -> None:
    log = filled(tmp_path)
    records = list(log.records())
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == "0" * 64 and records[1]["prev"] == records[0]["hash"]
    assert records[2] | {"time": "", "hash": "", "prev": ""} == {
        "seq": 3, "time": "", "stack": "dev", "actor": "alice@example.test", "resource": "certificate c2",
        "action": "issue", "outcome": "ok", "serial": "02", "fingerprint": "ab:cd", "issuer": "ca", "target": None,
        "detail": None, "prev": "", "hash": ""}
    assert log.verify().intact and log.verify().lines == 5
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700


def test_an_edited_line_is_named(tmp_path: Path) -> None:
    log = filled(tmp_path)
    text = lines(log)
    text[2] = text[2].replace('"serial":"02"', '"serial":"ff"')
    log.path.write_text("".join(text))
    assert log.verify().problem == "line 3: edited (its content does not match its hash)"


def test_a_line_rewritten_with_a_fresh_hash_breaks_the_next_link(tmp_path: Path) -> None:
    import hashlib

    log = filled(tmp_path)
    text = lines(log)
    record = json.loads(text[1])
    record["actor"] = "mallory"
    body = {k: v for k, v in record.items() if k != "hash"}
    record["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    text[1] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    log.path.write_text("".join(text))
    assert log.verify().problem.startswith("line 3: out of place")


@pytest.mark.parametrize(("change", "first_bad"), [
    (lambda t: t[:1] + t[2:], "line 2: out of place (it was line 3"),  # deleted
    (lambda t: t[:2] + [t[0]] + t[2:], "line 3: out of place (it was line 1"),  # inserted (a copy of line 1)
    (lambda t: [t[0], t[2], t[1], *t[3:]], "line 2: out of place (it was line 3"),  # reordered
    (lambda t: t[:4], "line 5: missing (the log ends at line 4; its head says 5 lines were written)"),  # cut
    (lambda t: t[:2] + ["not json\n"] + t[3:], "line 3: not JSON (edited)"),
])
def test_deleted_inserted_reordered_or_cut_lines_are_named(tmp_path: Path, change, first_bad: str) -> None:
    log = filled(tmp_path)
    log.path.write_text("".join(change(lines(log))))
    problem = log.verify().problem
    assert problem is not None and problem.startswith(first_bad), problem


def test_appending_after_tampering_does_not_hide_it(tmp_path: Path) -> None:
    log = filled(tmp_path)
    text = lines(log)
    log.path.write_text("".join(text[:2] + text[3:]))
    log.append("dev", "bob", Event("binding c1--edge", "deploy"))
    assert log.verify().problem.startswith("line 3: out of place")


def test_details_never_carry_key_material() -> None:
    body = keys.private_key_to_pem(keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256")))
    assert scrub(f"deploy failed:\n{body}\nafter") == "deploy failed: [PEM removed] after"
    line = body.splitlines()[1]
    cut = "-----BEGIN EC " + "PRIVATE KEY-----"  # a block cut before its END line
    assert line[:8] not in scrub(f"truncated {cut}\n{line}")


def _append_many(path: str, who: str, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.append("dev", who, Event(f"certificate {who}-{i}", "renew"))


def test_threads_and_processes_append_without_breaking_the_chain(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.jsonl")
    threads = [threading.Thread(target=_append_many, args=(path, f"t{i}", 25)) for i in range(4)]
    procs = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(path, f"p{i}", 25))
             for i in range(2)]
    for worker in [*threads, *procs]:
        worker.start()
    for thread in threads:
        thread.join(timeout=60)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    verdict = AuditLog(path).verify()
    assert verdict.intact and verdict.lines == 150, verdict


def test_where_the_log_is(tmp_path: Path) -> None:
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}/state"}
    assert resolve_log(None, stack="dev", project="certplane", project_dir=tmp_path, env=env) == \
        tmp_path / "state" / "certplane-audit" / "certplane" / "dev.jsonl"
    assert resolve_log(None, stack="dev", project="certplane", project_dir=tmp_path,
                       env={"PULUMI_BACKEND_URL": "s3://bucket"}) == tmp_path / ".certplane" / "audit" / "dev.jsonl"
    assert resolve_log("audit/{project}-{stack}.jsonl", stack="dev", project="p", project_dir=tmp_path, env=env) \
        == tmp_path / "audit" / "p-dev.jsonl"
    assert resolve_log(None, stack="dev", project="p", project_dir=tmp_path,
                       env={**env, "CERTPLANE_AUDIT_LOG": "/var/log/certplane/{stack}.jsonl"}) == \
        Path("/var/log/certplane/dev.jsonl")


def test_the_actor_comes_from_the_environment(tmp_path: Path) -> None:
    assert actor({"CERTPLANE_ACTOR": "deploy-bot"}) == "deploy-bot"
    assert actor({"GITHUB_ACTOR": "octocat"}) == "github:octocat"
    assert "@" in actor({}, cwd=tmp_path)
