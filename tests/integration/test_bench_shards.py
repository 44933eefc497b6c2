"""bench/bench_shards.py as `make bench-shards` runs it, at a tiny size: both fleets on their shared backends, every
step on every stack, the no-op steps checked to change nothing, the table and the JSON written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import ROOT

pytestmark = pytest.mark.integration


def test_a_sharded_fleet_is_measured_against_a_floor_fleet(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_shards.py"), "--total", "5", "--shards", "2",
                          "--jobs", "2", "--timeout", "300", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (report_file,) = tmp_path.glob("*-shards.json")
    report = json.loads(report_file.read_text())
    assert report["sizes"] == [3, 2] and report["resources_each_stack"] == [5, 4]
    for step in ("create", "preview", "noop_up"):
        result = report["steps"][step]
        for kind in ("floor", "certplane"):
            assert len(result[kind]["stack_wall_s"]) == 2 and result[kind]["fleet_wall_s"] > 0
        assert result["ratio_wall"] > 0
    assert report["state"]["certplane"] > report["state"]["floor"] > 0
    table = report_file.with_suffix(".md").read_text()
    assert "5 certificates in 2 stacks of 2–3" in table and "| noop_up | `pulumi up --yes` |" in table
