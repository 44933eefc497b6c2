"""The audit trail on the real engine: `up`, a renewal, a failed deploy and `destroy` each append what they did
(or that it failed, and why); `./certplane audit --verify` proves the log intact and names a tampered line.
No key material is ever recorded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from .harness import ROOT, EngineProject, from_now

pytestmark = pytest.mark.integration
RENEWAL_DUE = from_now(24)


def config(tmp_path: Path, *targets: str) -> dict[str, Any]:
    return {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Audit Root"}},
        "certificates": {"www": {"domains": ["www.example.test"], "issuer": "ca", "validity_days": 30,
                                 "renew": {"before_days": 10}, "key": {"algorithm": "ecdsa", "curve": "P-256"},
                                 "bindings": [{"target": t} for t in targets]}},
        "targets": {"disk": {"type": "files", "directory": str(tmp_path / "certs"), "formats": ["pem"]},
                    "blocked": {"type": "files", "directory": str(tmp_path / "not-a-directory")}},
    }


def audit(project: EngineProject, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **project.env, "CERTPLANE_ACTOR": "ci-bot"}
    return subprocess.run([str(ROOT / "certplane"), "audit", "--stack", project.stack_name, "--cwd", str(project.dir),
                           *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_every_change_is_recorded_and_tampering_is_found(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("a file where the target wants a directory\n")
    project = EngineProject(tmp_path, config(tmp_path, "disk"))
    project.env["CERTPLANE_ACTOR"] = "ci-bot"
    project.stack.workspace.env_vars["CERTPLANE_ACTOR"] = "ci-bot"
    project.up()
    project.up(env={"CERTPLANE_NOW": RENEWAL_DUE})  # www renews and is redeployed
    project.set_config(config(tmp_path, "disk", "blocked"))
    with pytest.raises(auto.CommandError):
        project.up()
    project.set_config(config(tmp_path, "disk"))
    project.destroy()

    listed = json.loads(audit(project, "--json").stdout)
    events = [(r["resource"], r["action"], r["outcome"]) for r in listed]
    assert events[:3] == [("certificate ca-root", "issue", "ok"), ("certificate www", "issue", "ok"),
                          ("binding www--disk", "deploy", "ok")], events
    assert events[3:5] == [("certificate www", "renew", "ok"), ("binding www--disk", "deploy", "ok")]
    assert events[5] == ("binding www--blocked", "deploy", "failed")
    assert "not-a-directory" in listed[5]["detail"]
    assert sorted(events[6:]) == [("binding www--disk", "remove", "ok"), ("certificate ca-root", "delete", "ok"),
                                  ("certificate www", "delete", "ok")]
    assert {r["stack"] for r in listed} == {project.stack_name} and {r["actor"] for r in listed} == {"ci-bot"}
    issued, renewed = listed[1], listed[3]
    assert issued["serial"] != renewed["serial"] and renewed["serial"] == listed[4]["serial"]
    assert listed[2]["target"] == "disk (files)" and issued["issuer"] == "ca"

    table = audit(project)
    assert table.returncode == 0 and "renew" in table.stdout and "binding www--blocked" in table.stdout

    log = Path(project.backend) / "certplane-audit" / "certplane" / f"{project.stack_name}.jsonl"
    text = log.read_text()
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text

    intact = audit(project, "--verify")
    assert intact.returncode == 0 and f"{len(listed)} line(s), intact" in intact.stdout, intact.stdout + intact.stderr

    lines = text.splitlines(keepends=True)
    lines[3] = lines[3].replace('"action":"renew"', '"action":"issue"')
    log.write_text("".join(lines))
    tampered = audit(project, "--verify")
    assert tampered.returncode == 1 and "line 4: edited" in tampered.stdout, tampered.stdout
