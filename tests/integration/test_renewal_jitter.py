"""Renewal jitter and a `reissue_before` drill on the real engine: a fleet issued in one `up` renews spread over
the jitter window, and a drill re-issues (new keys, redeployed) exactly what was issued before its instant."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from providers.core.clock import minute, parse_rfc3339, real_now, rfc3339

from .harness import EngineProject, changed_steps

pytestmark = pytest.mark.integration

FLEET = [f"svc{i:02d}" for i in range(50)]  # issued in the first `up`
BOUND = FLEET[:4]                            # ... deployed to disk
LATE = [f"late{i:02d}" for i in range(4)]    # issued in a later `up`, after the drill's instant
LATE_BOUND = LATE[:2]
KEY = {"algorithm": "ecdsa", "curve": "P-256"}


def config(directory: Path, names: list[str], **extra: Any) -> dict[str, Any]:
    certs = {name: {"domains": [f"{name}.example.test"], "issuer": "internal", "validity_days": 90, "key": KEY,
                    **({"bindings": [{"target": "disk"}]} if name in BOUND + LATE_BOUND else {})} for name in names}
    return {"issuers": {"internal": {"type": "private_ca", "common_name": "Jitter Root"}},
            "certificates": certs,
            "targets": {"disk": {"type": "files", "directory": str(directory), "formats": ["pem"]}}, **extra}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("jitter")
    disk = base / "certs"
    project = EngineProject(base, config(disk, FLEET))
    assert project.up().summary.result == "succeeded"
    yield project, disk
    project.destroy()


def test_a_fleet_issued_together_renews_spread_over_the_jitter_window(fleet):
    project, _disk = fleet
    inventory = project.outputs()["inventory"]
    lifetime = {n: (parse_rfc3339(inventory[n]["not_before"]), parse_rfc3339(inventory[n]["not_after"]))
                for n in FLEET}
    renew = {n: parse_rfc3339(inventory[n]["renewal_time"]) for n in FLEET}
    for name, (nb, na) in lifetime.items():  # two thirds of the lifetime, up to 10% of it earlier, never later
        configured = nb + (na - nb) * 2 / 3
        assert configured - (na - nb) * 0.1 <= renew[name] <= configured, name
    assert len({t.replace(minute=0, second=0) for t in renew.values()}) >= 40  # 50 names over 9 days

    ordered = sorted(FLEET, key=renew.__getitem__)
    middle = len(ordered) // 2
    when = renew[ordered[middle - 1]] + (renew[ordered[middle]] - renew[ordered[middle - 1]]) / 2
    preview = project.preview(env={"CERTPLANE_NOW": rfc3339(when)})
    due = [n for n in FLEET if renew[n] <= when]
    assert 0 < len(due) < len(FLEET)
    # Only the due ones, and their bindings (a renewal redeploys).
    assert changed_steps(preview) == {"update": len(due) + len([n for n in due if n in BOUND])}
    for name in FLEET:
        if name in due:  # the preview line gives the jittered time, the one in the renewal_time output
            assert f"certplane: {name}: renewal due since {minute(renew[name])} (at two thirds of the lifetime, " \
                   in preview.stdout, name
            assert "earlier by jitter); expires" in preview.stdout
        else:
            assert f"certplane: {name}:" not in preview.stdout, name
    assert changed_steps(project.preview()) == {}  # today: nothing is due


def test_a_reissue_before_drill_reissues_exactly_what_was_issued_before_it(fleet):
    project, disk = fleet
    drill = rfc3339(real_now() + dt.timedelta(seconds=1))  # after every FLEET certificate was issued
    time.sleep(2)
    project.set_config(config(disk, FLEET + LATE))
    assert project.up().summary.resource_changes.get("create")  # LATE: issued after the drill's instant
    before = project.outputs()["inventory"]
    keys_before = {n: (disk / f"{n}.key").read_text() for n in BOUND + LATE_BOUND}

    project.set_config(config(disk, FLEET + LATE, reissue_before=drill))
    preview = project.preview()
    assert changed_steps(preview) == {"update": len(FLEET) + len(BOUND)}
    for name in FLEET:
        issued = minute(parse_rfc3339(before[name]["not_before"]) + dt.timedelta(minutes=5))
        assert f"certplane: {name}: reissue_before {drill}: issued {issued} before it; re-issuing with a new key" \
               in preview.stdout, name
    for name in LATE:
        assert f"certplane: {name}:" not in preview.stdout, name

    up = project.up()
    assert up.summary.resource_changes.get("update") == len(FLEET) + len(BOUND)
    after = project.outputs()["inventory"]
    for name in FLEET:
        assert after[name]["serial"] != before[name]["serial"], name
        assert after[name]["not_before"] > before[name]["not_before"], name
    for name in LATE:
        assert after[name]["serial"] == before[name]["serial"], name
    for name in BOUND:  # redeployed with a new key
        assert (disk / f"{name}.key").read_text() != keys_before[name], name
        assert _serial_of(disk / f"{name}.crt") == after[name]["serial"], name
    for name in LATE_BOUND:
        assert (disk / f"{name}.key").read_text() == keys_before[name], name
    assert changed_steps(project.preview()) == {}  # the drill is done: nothing issued before it is left


def _serial_of(path: Path) -> str:
    from providers.core import certificates as x509util

    return x509util.serial_hex(x509util.load_certificates(path.read_text())[0])
