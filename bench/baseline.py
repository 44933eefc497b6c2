"""Compare benchmark results with the committed baselines (bench/baselines.json) and optionally update them."""

from __future__ import annotations

import json
from pathlib import Path

BASELINES = Path(__file__).resolve().parent / "baselines.json"


def report(results: dict[str, float], unit: str, *, update: bool) -> None:
    baseline = json.loads(BASELINES.read_text()) if BASELINES.exists() else {}
    for key, value in results.items():
        base = baseline.get(key)
        delta = f" (baseline {base} {unit}, {value / base - 1:+.0%})" if base else ""
        print(f"{key}: {value} {unit}{delta}")
    if update:
        BASELINES.write_text(json.dumps({**baseline, **results}, indent=2, sort_keys=True) + "\n")
