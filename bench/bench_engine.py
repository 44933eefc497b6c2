"""Benchmark: the real engine on N private-CA certificates: `up` (create), no-op `preview`, no-op `up`.

Run:  .venv/bin/python bench/bench_engine.py [--certificates 20] [--update-baseline]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.baseline import report  # noqa: E402

from tests.integration.harness import EngineProject  # noqa: E402



def timed(fn):
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=20)
    parser.add_argument("--update-baseline", action="store_true")
    args = parser.parse_args()
    n = args.certificates
    config = {"issuers": {"ca": {"type": "private_ca", "common_name": "Bench Root", "intermediate": True}},
              "certificates": {f"c{i:03d}": {"domains": [f"c{i:03d}.example.test"], "issuer": "ca"}
                               for i in range(n)}}
    with tempfile.TemporaryDirectory() as tmp:
        project = EngineProject(Path(tmp), config)
        results = {
            f"engine_up_create_{n}_s": timed(project.up),
            f"engine_preview_noop_{n}_s": timed(project.preview),
            f"engine_up_noop_{n}_s": timed(project.up),
        }
        project.destroy()
    report(results, "s", update=args.update_baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
