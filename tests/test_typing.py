"""providers/core stays `mypy --strict` clean (the design's contract for the pure core)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_is_mypy_strict_clean():
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "providers/core"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found")
