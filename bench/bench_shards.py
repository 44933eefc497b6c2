"""Benchmark: a fleet sharded into stacks. --total certificates in --shards stacks of one shared `file://` backend,
their commands run --jobs at a time (as the renew workflow's matrix runs one job per stack), against a floor fleet
sharded the same way: as many stacks of bench/floor's trivial dynamic resources, each holding what its certplane
stack holds (its certificates + its CA's key and certificate), on a shared backend of its own.

Run:  .venv/bin/python bench/bench_shards.py [--total 5000] [--shards 20] [--jobs 2]

Each certplane stack is what bench/bench_fleet.py builds for one stack (private-CA ECDSA P-256 certificates, PEM
only, no bindings, one private_ca issuer per stack, every tenth a 30-day certificate), with names of its own. The
steps, floor fleet then certplane fleet:
  create   pulumi up --yes --skip-preview   on every stack
  preview  pulumi preview                   on every stack (nothing changed)
  noop_up  pulumi up --yes                  on every stack (nothing changed; preview included)
For each step: the fleet's wall seconds (first start to last exit), the CPU seconds of every process, each
stack's wall seconds (median, max), and certplane/floor. A stack that fails, times out (--timeout, per command)
or changes what a no-op must not change fails the run. Writes bench/results/<UTC date>-shards.json and .md
(`--out DIR` elsewhere); temp dirs are removed (no destroy: nothing outside them was created).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write  # noqa: E402
from bench.bench_fleet import CA_RESOURCES, COMMANDS, KEY, LONG, PULUMI, RESULTS, SHORT, Project, renewed  # noqa: E402

STEPS = ("create", "preview", "noop_up")


def shard_names(shards: int) -> list[str]:
    return [f"fleet-{i:02d}" for i in range(shards)]


def shard_config(shard: str, n: int) -> dict[str, Any]:
    """One stack of the fleet: its own private CA, `n` certificates under names of its own."""
    short = set(renewed(n))
    certs = {f"c{i:04d}": {"domains": [f"c{i:04d}.{shard}.example.test"], "issuer": "ca", "key": KEY,
                           "formats": ["pem"], **(SHORT if i in short else LONG)} for i in range(n)}
    return {"certplane:issuers": {"ca": {"type": "private_ca", "common_name": f"{shard} Root"}},
            "certplane:certificates": certs}


def split(total: int, shards: int) -> list[int]:
    """`total` certificates over `shards` stacks, as evenly as whole certificates allow."""
    return [total // shards + (1 if i < total % shards else 0) for i in range(shards)]


def fleet(base: Path, kind: str, sizes: list[int], names: list[str], args: argparse.Namespace) -> list[Project]:
    backend = base / "backend"
    projects = []
    for name, n in zip(names, sizes):  # set up one at a time: `stack init` on a shared backend
        projects.append(Project(base / name, kind, n, args.timeout, args.program, stack=name, backend=backend,
                                config=shard_config(name, n) if kind == "certplane" else None))
    return projects


def run_step(projects: list[Project], step: str, jobs: int) -> dict[str, Any]:
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        samples = list(pool.map(lambda p: p.timed(step), projects))  # raises the first stack's failure
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stacks = [s["wall_s"] for s in samples]
    return {"fleet_wall_s": round(wall, 3),
            "fleet_cpu_s": round((usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime), 3),
            "stack_wall_median_s": round(statistics.median(stacks), 3), "stack_wall_max_s": round(max(stacks), 3),
            "stack_wall_s": stacks}


def state_bytes(projects: list[Project]) -> int:
    return sum(p.checkpoint_path().stat().st_size for p in projects)


def markdown(report: dict[str, Any]) -> str:
    total, shards, jobs = report["total"], report["shards"], report["jobs"]
    low, high = min(report["sizes"]), max(report["sizes"])
    sizes = f"{low}–{high}" if low != high else f"{low}"
    lines = [f"# certplane sharded fleet vs floor — {report['date']}", "",
             f"Machine: {report['machine']}; load average at start {report['load_start']}, at end "
             f"{report['load_end']}.", "",
             f"Command: `{report['command']}`", "",
             f"{total:,} certificates in {shards} stacks of {sizes} on one "
             f"shared `file://` backend, {jobs} stacks at a time (the renew workflow's matrix, one job per stack); "
             f"the floor: {shards} stacks of as many trivial dynamic resources, same engine, same commands. Fleet "
             "seconds run from the first stack's start to the last one's exit.", "",
             "| step | command | certplane fleet s | floor fleet s | ratio | certplane cpu s | floor cpu s | "
             "certplane stack median / max s | floor stack median / max s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for step, s in report["steps"].items():
        c, f = s["certplane"], s["floor"]
        lines.append(f"| {step} | `pulumi {' '.join(COMMANDS[step])}` | {c['fleet_wall_s']:.1f} | "
                     f"{f['fleet_wall_s']:.1f} | {s['ratio_wall']:.1f}× | {c['fleet_cpu_s']:.1f} | "
                     f"{f['fleet_cpu_s']:.1f} | {c['stack_wall_median_s']:.1f} / {c['stack_wall_max_s']:.1f} | "
                     f"{f['stack_wall_median_s']:.1f} / {f['stack_wall_max_s']:.1f} |")
    st = report["state"]
    lines += ["", f"State, all stacks: certplane {st['certplane']:,} bytes ({st['certplane'] / total:,.0f} per "
                  f"certificate), floor {st['floor']:,} ({st['floor'] / total:,.0f} per certificate), "
                  f"{st['certplane'] / st['floor']:.1f}×.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=5000, help="certificates in the fleet (default 5000)")
    parser.add_argument("--shards", type=int, default=20, help="stacks (default 20)")
    parser.add_argument("--jobs", type=int, default=2, help="stacks run at once (default 2: this machine's cores)")
    parser.add_argument("--timeout", type=float, default=1800, help="bound on each pulumi command, seconds")
    parser.add_argument("--program", type=Path, default=ROOT, help="the certplane tree to measure")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where <date>-shards.json and .md go")
    args = parser.parse_args()
    if not 1 <= args.shards <= args.total or args.jobs < 1:
        parser.error("need 1 <= --shards <= --total and --jobs >= 1")
    sizes, names = split(args.total, args.shards), shard_names(args.shards)
    version = subprocess.run([str(PULUMI), "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), "total": args.total, "shards": args.shards,
        "jobs": args.jobs, "sizes": sizes, "resources_each_stack": [n + CA_RESOURCES for n in sizes],
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
                   f"Pulumi {version}",
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": "bench/bench_shards.py " + " ".join(sys.argv[1:]), "steps": {}}
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        sides = {kind: fleet(Path(tmp) / kind, kind, sizes, names, args) for kind in ("floor", "certplane")}
        for step in STEPS:
            result = {}
            for kind in ("floor", "certplane"):
                result[kind] = run_step(sides[kind], step, args.jobs)
                print(f"  {step:<8} {kind:<9} fleet {result[kind]['fleet_wall_s']:8.1f} s wall "
                      f"{result[kind]['fleet_cpu_s']:8.1f} s cpu; stacks median "
                      f"{result[kind]['stack_wall_median_s']:.1f} s, max {result[kind]['stack_wall_max_s']:.1f} s",
                      flush=True)
            report["steps"][step] = {**result, "ratio_wall": round(result["certplane"]["fleet_wall_s"]
                                                                   / result["floor"]["fleet_wall_s"], 3)}
        report["state"] = {kind: state_bytes(projects) for kind, projects in sides.items()}
    report["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    stem = write(args.out, f"{report['date']}-shards", report, markdown(report))
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
