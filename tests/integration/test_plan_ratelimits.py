"""`./certplane plan`'s rate-limit forecast on the real engine against a real Pebble: an ACME issuer with low
limits (3 certificates per registered domain), 5 certificates under one registered domain. The plan flags the
orders over the limit before any `up` (nothing is issued), `--fail-on-rate-limit` makes it an error, and what
is already issued counts inside the window only."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from providers.core.clock import parse_rfc3339, rfc3339
from tools.servers.pebble import PebbleServer

from .harness import ROOT, EngineProject, changed_steps, from_now

pytestmark = pytest.mark.integration
NAMES = [f"e{i}" for i in range(1, 6)]


def config(server: PebbleServer, names: list[str]) -> dict[str, Any]:
    # a.rl.example.co.uk and b.rl.example.co.uk: one registered domain (example.co.uk) by the Public Suffix List.
    return {
        "issuers": {"pebble": {"type": "acme", "directory_url": server.directory_url, "email": "ops@example.test",
                               "ca_bundle": str(server.ca_bundle_path), "profile": "default",  # 90 days
                               "dns": {"provider": "challtestsrv", "url": server.challtestsrv_url,
                                       "propagation_check": False},
                               "rate_limits": {"per_registered_domain": {"limit": 3},
                                               "per_account": {"limit": 10, "window_hours": 1}}}},
        "certificates": {n: {"domains": [f"{n}.rl.example.co.uk"], "issuer": "pebble"} for n in names},
    }


def plan(project: EngineProject, *args: str, now: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in {**os.environ, **project.env}.items() if k != "CERTPLANE_NOW"}
    if now:
        env["CERTPLANE_NOW"] = now
    return subprocess.run([str(ROOT / "certplane"), "plan", "--stack", project.stack_name, "--cwd", str(project.dir),
                           "--no-policy", *args], env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_the_plan_forecasts_rate_limits_before_any_up(tmp_path: Path, pebble: PebbleServer) -> None:
    project = EngineProject(tmp_path, config(pebble, NAMES))
    try:
        text = plan(project)
        assert text.returncode == 2, text.stdout + text.stderr  # a warning: the changes' exit code
        out = text.stdout
        assert "Rate limits" in out, out
        assert ("OVER  registered domain example.co.uk: 5 of 3 certificates per registered domain per 7 days "
                "(0 issued in the window; 5 to order); over the limit: e4, e5") in out, out
        assert "ok    account of issuer pebble: 5 of 10 new orders per account per 1 hour" in out, out
        assert "would go over the CA's limits (e4, e5)" in out.splitlines()[-1]

        doc = json.loads(plan(project, "--json").stdout)
        domain = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "registered_domain")
        assert (domain["scope"], domain["count"], domain["max"], domain["over"]) == ("example.co.uk", 5, 3,
                                                                                    ["e4", "e5"])
        assert domain["directory_url"] == pebble.directory_url and domain["window_hours"] == 168
        assert doc["rate_limits"]["exceeded"] is True and doc["exit_code"] == 2

        md = plan(project, "--markdown").stdout
        assert "#### Rate limits" in md
        assert "| certificates per registered domain | `example.co.uk` |" in md and "**5 / 3**" in md

        failing = plan(project, "--fail-on-rate-limit")
        assert failing.returncode == 1, failing.stdout + failing.stderr
        assert "--fail-on-rate-limit" in failing.stdout

        # Nothing was issued: the stack is still empty.
        assert project.outputs() == {} or not project.outputs().get("inventory")

        # Two certificates issued: they count inside the window, so three more go over by two.
        project.set_config(config(pebble, NAMES[:2]))
        project.up()
        project.set_config(config(pebble, NAMES))
        later = plan(project, "--json")
        doc = json.loads(later.stdout)
        domain = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "registered_domain")
        assert domain["issued"] == ["e1", "e2"] and domain["planned"] == ["e3", "e4", "e5"], domain
        assert domain["over"] == ["e4", "e5"] and doc["exit_code"] == 2
        account = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "account")
        assert account["count"] == 5 and not account["exceeded"]

        # Eight days on, the two issued ones are out of the 7-day window: three orders fit the limit of three
        # (and out of the account's 1-hour window too).
        quiet = plan(project, "--fail-on-rate-limit", "--json", now=from_now(8))
        doc = json.loads(quiet.stdout)
        assert quiet.returncode == 2, quiet.stdout + quiet.stderr
        domain = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "registered_domain")
        assert domain["issued"] == [] and domain["count"] == 3 and not doc["rate_limits"]["exceeded"]

        # A day before they expire, Pebble's ARI window is open and the two renew: ARI-guided renewals count
        # against no limit.
        inventory = project.outputs()["inventory"]
        due = min(parse_rfc3339(inventory[n]["not_after"]) for n in NAMES[:2]) - dt.timedelta(days=1)
        renewals = plan(project, "--json", now=rfc3339(due))
        doc = json.loads(renewals.stdout)
        plans = {c["name"]: c["plan"] for c in doc["certificates"]}
        assert plans["e1"][0] == "renew" and plans["e3"] == ["issue"], plans
        domain = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "registered_domain")
        assert domain["exempt"] == [{"certificate": "e1", "why": "ari"}, {"certificate": "e2", "why": "ari"}]
        assert domain["planned"] == ["e3", "e4", "e5"] and not doc["rate_limits"]["exceeded"], domain
    finally:
        project.destroy()


def test_lets_encrypts_own_limits_apply_when_an_issuer_sets_none(tmp_path: Path, pebble: PebbleServer) -> None:
    """Pebble as the CA, the forecast with Let's Encrypt's defaults built in: 51 new certificates under one
    registered domain in one plan are one over its 50 per 7 days. Only a preview runs: nothing is ordered."""
    names = [f"n{i:02d}" for i in range(51)]
    cfg = config(pebble, names)
    del cfg["issuers"]["pebble"]["rate_limits"]
    project = EngineProject(tmp_path, cfg)
    try:
        doc = json.loads(plan(project, "--json").stdout)
        domain = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "registered_domain")
        assert (domain["scope"], domain["count"], domain["max"], domain["window_hours"]) == \
            ("example.co.uk", 51, 50, 168)
        assert domain["over"] == ["n50"] and doc["rate_limits"]["exceeded"] is True
        account = next(c for c in doc["rate_limits"]["checks"] if c["limit"] == "account")
        assert (account["count"], account["max"], account["window_hours"], account["over"]) == (51, 300, 3, [])
    finally:
        project.destroy()



WARNING = "certplane rate limits: registered domain example.co.uk: "


def warnings_in(out: str) -> set[str]:
    return set(re.findall(r"warning: (certplane rate limits: [^\n]*)", out))


def test_a_plain_preview_warns_of_the_certificates_over_a_limit(tmp_path: Path, pebble: PebbleServer) -> None:
    """`pulumi preview` itself (no ./certplane plan): the Certificate provider tallies the orders of the run, with
    what is already issued, and the engine prints its warning naming the certificates over the issuer's limit;
    under the limit, none. The limits reach the provider in policy_facts, and only when the issuer sets them:
    setting them on a stack that has none changes nothing in it."""
    project = EngineProject(tmp_path, config(pebble, NAMES))
    try:
        said = warnings_in(project.preview().stdout)
        expected = (f"{WARNING}5 of 3 certificates per registered domain per 7 days (0 issued in the window; 5 to "
                    "order); over the limit: e4, e5; the CA would refuse these orders (see ./certplane plan)")
        assert expected in said, said
        # In the order the engine checks them: 4 of 3 (the one over by then), then 5 of 3 (both).
        assert len(said) == 2 and any(f"{WARNING}4 of 3 " in m for m in said), said

        project.set_config(config(pebble, NAMES[:3]))  # 3 of 3: at the limit, not over
        quiet = project.preview()
        assert "rate limits" not in quiet.stdout and "warning" not in quiet.stdout.lower(), quiet.stdout

        # Two issued by a stack whose issuer sets no rate_limits; setting them is no change at all.
        plain = config(pebble, NAMES[:2])
        del plain["issuers"]["pebble"]["rate_limits"]
        project.set_config(plain)
        project.up()
        project.set_config(config(pebble, NAMES[:2]))
        same = project.preview()
        assert changed_steps(same) == {} and "warning" not in same.stdout.lower(), same.stdout

        # Three more: the two issued count inside the window (the provider reads them in its diffs).
        project.set_config(config(pebble, NAMES))
        said = warnings_in(project.preview().stdout)
        assert (f"{WARNING}5 of 3 certificates per registered domain per 7 days (2 issued in the window; 3 to "
                "order); over the limit: e4, e5; the CA would refuse these orders (see ./certplane plan)") in said, said
    finally:
        project.destroy()
