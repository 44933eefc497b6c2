"""Peak memory and CPU per process of one `pulumi preview` of a fresh N-certificate stack (every resource a create).

    .venv/bin/python bench/preview_peak.py --n 2000

The same stack as bench_fleet.py's certplane side (N private-CA ECDSA certificates, PEM only, no bindings), from
compiled bytecode; the process tree is polled every 0.1 s for each process's VmHWM and CPU (bench_fleet.watch).
Prints one JSON line and writes it to bench/results/<UTC date>-preview-peak-n<N>.json. Nothing is created: a
preview registers every resource and runs every `Check`, which is where the program's memory peaks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_fleet import PULUMI, RESULTS, STACK, Project, watch  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="certplane-preview-peak-"))
    try:
        project = Project(base, "certplane", args.n, args.timeout)
        command = [str(PULUMI), "preview", "--stack", STACK, "--non-interactive", "--color", "never"]
        start = time.monotonic()
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(command, cwd=project.dir, env=project.env, stdout=out, stderr=subprocess.STDOUT)
            peaks = watch(proc, args.timeout)
            rc = proc.wait(timeout=60)
            out.seek(0)
            text = out.read().decode(errors="replace")
        result = {"n": args.n, "command": "pulumi preview (a fresh stack)", "rc": rc,
                  "wall_s": round(time.monotonic() - start, 1), "peak_kib": peaks,
                  "summary": [line.strip() for line in text.splitlines() if "to create" in line][-1:]}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result))
    args.out.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    (args.out / f"{date}-preview-peak-n{args.n}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
