"""`./certplane plan` and the policy pack on the real engine: what a reviewer reads on a pull request (no
changes, a renewal, names added and removed), and policies that warn (advisory) or stop preview and up
(mandatory), naming the certificate and the rule. Nothing secret is ever printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from tests.support.pki import LocalCa

from providers.core.clock import minute, parse_rfc3339

from .harness import ROOT, EngineProject, from_now

pytestmark = pytest.mark.integration
RENEWAL_DUE = from_now(24)  # 30-day certificates renew 10 days before expiry: 6 days left then
POLICY = ROOT / "policy"


def config(tmp_path: Path, **www: Any) -> dict[str, Any]:
    return {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Plan Root"}},
        "certificates": {
            "www": {"domains": ["a.example.test", "www.example.test"], "issuer": "ca", "validity_days": 30,
                    "renew": {"before_days": 10}, "key": {"algorithm": "ecdsa", "curve": "P-256"},
                    "tags": {"owner": "web-team", "env": "test"}, "bindings": [{"target": "disk"}], **www},
            "api": {"domains": ["api.example.test"], "issuer": "ca", "validity_days": 90,
                    "tags": {"owner": "api-team", "env": "test"}},
        },
        "targets": {"disk": {"type": "files", "directory": str(tmp_path / "certs"), "formats": ["pem"]}},
    }


def plan(project: EngineProject, *args: str, now: str | None) -> subprocess.CompletedProcess[str]:
    """`./certplane plan` on the project's stack, at `now` (None: the real time)."""
    env = {k: v for k, v in {**os.environ, **project.env}.items() if k != "CERTPLANE_NOW"}
    if now:
        env["CERTPLANE_NOW"] = now
    return subprocess.run([str(ROOT / "certplane"), "plan", "--stack", project.stack_name, "--cwd", str(project.dir),
                           "--policy-pack", str(POLICY), *args], env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


def policy_config(tmp_path: Path, rules: dict[str, Any]) -> Path:
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(rules))
    return path


def test_a_plan_a_reviewer_reads(tmp_path: Path) -> None:
    project = EngineProject(tmp_path, config(tmp_path))
    try:
        project.up()
        issued = project.outputs()["inventory"]
        www_expires, api_expires = (issued[n]["not_after"] for n in ("www", "api"))

        quiet = plan(project, now=None)
        assert quiet.returncode == 0, quiet.stdout + quiet.stderr
        assert quiet.stdout.splitlines()[-1] == "No changes."

        due = plan(project, "--markdown", now=RENEWAL_DUE)
        assert due.returncode == 2, due.stdout + due.stderr
        md = due.stdout
        assert f"| `www` | renew, re-key, redeploy | {www_expires[:10]} (6.0 d) | disk | ok |" in md
        assert f"| `api` | unchanged | {api_expires[:10]} (66.0 d) | — | ok |" in md
        since = minute(parse_rfc3339(issued["www"]["renewal_time"]))
        assert re.search(rf"- renewal due since {re.escape(since)} \(10 days before expiry, [0-9.]+ (days|hours) "
                         rf"earlier by jitter\); expires {re.escape(minute(parse_rfc3339(www_expires)))}, 6\.0 days "
                         "left", md), md
        assert "- www--disk: deploying www's new certificate to disk (files)" in md
        assert md.index("`www`") < md.index("`api`")  # what changes first, then by name
        assert "PRIVATE KEY" not in md and "[secret]" not in md

        doc = json.loads(plan(project, "--json", now=RENEWAL_DUE).stdout)
        www = next(c for c in doc["certificates"] if c["name"] == "www")
        assert www["plan"] == ["renew", "re-key", "redeploy"] and doc["exit_code"] == 2

        project.set_config(config(tmp_path, domains=["www.example.test", "b.example.test"]))
        renamed = plan(project, now=None)
        assert renamed.returncode == 2
        assert "  www  re-issue, re-key, redeploy" in renamed.stdout
        assert "names + b.example.test; - a.example.test" in renamed.stdout
    finally:
        project.destroy()


def test_policies_warn_or_stop_and_name_the_certificate_and_the_rule(tmp_path: Path, ca: LocalCa) -> None:
    bundle = ca.bundle(["legacy.example.test"])
    cfg = config(tmp_path, key={"algorithm": "rsa", "size": 2048})
    cfg["certificates"]["legacy"] = {"upload": {"certificate_file": "legacy.pem", "chain_file": "chain.pem",
                                                "private_key": bundle.key_pem},
                                     "tags": {"owner": "ops"}}  # no env tag; its key in plain text
    project = EngineProject(tmp_path, cfg, files={"legacy.pem": bundle.cert_pem, "chain.pem": bundle.chain_pem})
    rules = policy_config(tmp_path, {"key-strength": {"enforcementLevel": "mandatory", "min_rsa_bits": 3072},
                                     "required-tags": {"enforcementLevel": "advisory", "tags": ["owner", "env"]}})
    result = plan(project, "--policy-pack-config", str(rules), now=None)  # the upload is valid from today
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "Blocked by a mandatory policy" in out, out
    assert "policy [mandatory] key-strength: www: an RSA key of 2048 bits is under the minimum of 3072" in out
    assert "policy [advisory] required-tags: legacy: missing tag(s) env" in out
    assert ("policy [mandatory] plain-secrets: legacy: certplane:certificates.legacy.upload.private_key is in the "
            "stack file in plain text") in out
    assert "PRIVATE KEY" not in out + result.stderr and bundle.key_pem.splitlines()[1] not in out + result.stderr

    # The same pack, run by the engine itself: preview and up stop before anything is created.
    with pytest.raises(auto.CommandError) as err:
        project.stack.up(policy_packs=[str(POLICY)], policy_pack_configs=[str(rules)], color="never")
    said = str(err.value)
    # The engine stops at the first mandatory violation it meets (www's key or legacy's plain key, whichever
    # resource registers first), naming the rule and the certificate.
    assert ("[mandatory]  key-strength" in said and "www: an RSA key of 2048 bits is under the minimum of 3072"
            in said) or ("[mandatory]  plain-secrets" in said and "legacy: certplane:certificates.legacy.upload."
                         "private_key is in the stack file in plain text" in said), said
    assert "PRIVATE KEY" not in said
    assert not (tmp_path / "certs").exists()  # nothing was deployed

    # Advisory only (the mandatory problems fixed): the plan goes through and lists the warning.
    cfg["certificates"]["www"]["key"] = {"algorithm": "rsa", "size": 3072}
    del cfg["certificates"]["legacy"]
    project.set_config(cfg)
    warned = plan(project, "--policy-pack-config", str(rules), now=None)
    assert warned.returncode == 2, warned.stdout + warned.stderr
    assert "Changes:" in warned.stdout and "Blocked" not in warned.stdout
