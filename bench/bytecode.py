"""Compiled bytecode for a temp copy of a program, so a benchmark runs it as an installed program runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_bytecode(tree: Path) -> None:
    """Write `__pycache__` for every module under `tree`, as a program has after its first run. Python reads a
    `__pycache__` even under PYTHONDONTWRITEBYTECODE=1, which this machine sets: without this, every program and
    provider process of a benchmark compiled each of certplane's modules from source again (the floors' code is a
    file or two, the libraries' bytecode came with their install)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "compileall", "-q", str(tree)], env=env,
                   check=True, timeout=300, stdout=subprocess.DEVNULL)
