"""Benchmark: certplane against a floor of trivial dynamic resources, on the real engine, side by side.

Run:  .venv/bin/python bench/bench_fleet.py --n 100 [--n 500 ...] [--runs 3] [--create-runs 1] [--renew-runs 1]

Per N, two temp projects with their own temp `file://` backend and passphrase (tests/integration/harness.py):
- certplane: a copy of the program with N private-CA ECDSA P-256 certificates (PEM only, no bindings, one
  private_ca issuer); every tenth has `validity_days: 30, renew: {before_days: 10, jitter: 0}`, the rest 365 days;
- the floor (bench/floor): as many dynamic resources as certplane's stack holds (N + the CA's key and
  certificate), whose provider's `create`/`update` return their inputs; same .venv, runtime options and engine.
Both are driven by the same CLI commands, floor and certplane in turn (F C F C ...), each step `runs` times:
  create      pulumi up --yes --skip-preview
  preview     pulumi preview                    (nothing changed)
  noop_up     pulumi up --yes                   (nothing changed; preview included, as a user runs it)
  renew_10pct pulumi up --yes --skip-preview    certplane: CERTPLANE_NOW 25 days ahead, inside the window of the
                                                30-day tenth; floor: an input of the same tenth changed
Times are wall seconds (medians) and the CPU seconds of the whole process tree; the ratio is the median of the
run-by-run certplane/floor ratios. State: checkpoint bytes / N and per resource type (compact JSON); the largest
fields of one certificate. Peak RSS (VmHWM) and CPU seconds per process kind (engine, program, provider), polled
from /proc, during the largest N's create and no-op up. Writes bench/results/<UTC date>.json and .md (`--out DIR` elsewhere). Every command is bounded by
`--timeout` seconds; temp dirs are removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bytecode import compile_bytecode  # noqa: E402
from bench.report import write  # noqa: E402
from tests.integration.harness import PROJECT_FILES, engine_env  # noqa: E402

FLOOR = ROOT / "bench" / "floor"
RESULTS = ROOT / "bench" / "results"
PULUMI = ROOT / ".tools" / "bin" / "pulumi"
STACK = "bench"
STEPS = ("create", "preview", "noop_up", "renew_10pct")
COMMANDS = {"create": ("up", "--yes", "--skip-preview"), "preview": ("preview",), "noop_up": ("up", "--yes"),
            "renew_10pct": ("up", "--yes", "--skip-preview")}
CA_RESOURCES = 2  # the private_ca issuer without an intermediate: its key and its self-signed certificate
RENEW_AHEAD_DAYS = 25  # past day 20 of the 30-day certificates (before_days 10), before any 365-day one
SHORT = {"validity_days": 30, "renew": {"before_days": 10, "jitter": 0}}
LONG = {"validity_days": 365}
KEY = {"algorithm": "ecdsa", "curve": "P-256"}
SECRET_SIG, SECRET_KIND = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"  # a state secret


def renewed(n: int) -> list[int]:
    """Which certificates (and floor resources) change in the renew step: every tenth."""
    return [i for i in range(n) if i % 10 == 0]


def certplane_config(n: int) -> dict[str, Any]:
    short = set(renewed(n))
    certs = {f"c{i:04d}": {"domains": [f"c{i:04d}.example.test"], "issuer": "ca", "key": KEY, "formats": ["pem"],
                           **(SHORT if i in short else LONG)} for i in range(n)}
    return {"certplane:issuers": {"ca": {"type": "private_ca", "common_name": "Bench Root"}},
            "certplane:certificates": certs}


class Project:
    """One side: a temp project dir, its own PULUMI_HOME and file:// backend (or a `backend` it shares with other
    projects, as the stacks of a sharded fleet do), one stack, driven by the CLI."""

    def __init__(self, base: Path, kind: str, n: int, timeout: float, program: Path = ROOT,
                 extra_env: dict[str, str] | None = None, *, stack: str = STACK, backend: Path | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.kind, self.n, self.timeout, self.stack = kind, n, timeout, stack
        self.dir, home, self.backend = base / "project", base / "pulumi-home", backend or base / "state"
        for d in (self.dir, home, self.backend):
            d.mkdir(parents=True, exist_ok=d == self.backend)
        src = program if kind == "certplane" else FLOOR
        names = PROJECT_FILES if kind == "certplane" else ("__main__.py", "floor_provider.py")
        for name in names:
            if (src / name).is_dir():
                shutil.copytree(src / name, self.dir / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src / name, self.dir / name)
        compile_bytecode(self.dir)
        project = yaml.safe_load((src / "Pulumi.yaml").read_text())
        project["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")  # as EngineProject does
        (self.dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("PULUMI_", "CERTPLANE_")) and k != "PATH"}
        self.env = {**inherited, **engine_env(home, self.backend), **(extra_env or {})}
        self.project_name = project["name"]
        self.cli("stack", "init", "--secrets-provider", "passphrase")
        self.generation = 0
        if kind == "certplane":
            self.write_config(config or certplane_config(n))
        else:
            self.write_config({"floor:count": n + CA_RESOURCES, "floor:changed": renewed(n), "floor:generation": 0})

    def write_config(self, config: dict[str, Any]) -> None:
        stack_file = self.dir / f"Pulumi.{self.stack}.yaml"
        doc = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else None
        doc = doc or {}
        doc["config"] = {**(doc.get("config") or {}), **config}
        stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run([str(PULUMI), *args, "--stack", self.stack, "--non-interactive"], cwd=self.dir,
                             env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=self.timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{self.kind}: pulumi {' '.join(args)} failed ({out.returncode}):\n"
                               f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def prepare(self, step: str) -> dict[str, str]:
        """Untimed set-up of a step; returns the env it runs with."""
        if step == "renew_10pct":
            if self.kind == "floor":
                self.generation += 1
                self.write_config({"floor:generation": self.generation})
                return {}
            ahead = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=RENEW_AHEAD_DAYS)
            return {"CERTPLANE_NOW": ahead.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return {}

    def timed(self, step: str, *, monitor: bool = False) -> dict[str, Any]:
        env = self.prepare(step)
        before = self.fingerprints() if step != "create" else {}
        args = [str(PULUMI), *COMMANDS[step], "--stack", self.stack, "--non-interactive", "--color", "never"]
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(args, cwd=self.dir, env={**self.env, **env}, stdout=out,
                                    stderr=subprocess.STDOUT)
            peaks = watch(proc, self.timeout) if monitor else None
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
                raise RuntimeError(f"{self.kind} {step}: no exit within {self.timeout} s") from None
            wall = time.perf_counter() - start
            usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out.seek(0)
            text = out.read().decode(errors="replace")
        if rc != 0:
            raise RuntimeError(f"{self.kind} {step} failed ({rc}):\n{text[-4000:]}")
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        self.check(step, before, text)
        return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), **({"peak_rss_kib": peaks} if peaks else {})}

    def check(self, step: str, before: dict[str, str], text: str) -> None:
        """The step did what it is meant to: nothing changed in a no-op, exactly the tenth in a renew."""
        if step == "preview":
            if re.search(r"\b\d+ to (create|update|replace|delete)\b", text):
                raise RuntimeError(f"{self.kind}: the no-op preview plans changes:\n{text[-3000:]}")
            return
        after = self.fingerprints()
        if step == "create":
            if len(after) != self.n + CA_RESOURCES:
                raise RuntimeError(f"{self.kind}: {len(after)} dynamic resources, expected {self.n + CA_RESOURCES}")
            return
        changed = sorted(k for k in after if after[k] != before.get(k))
        expected = len(renewed(self.n)) if step == "renew_10pct" else 0
        if len(changed) != expected or len(after) != len(before):
            raise RuntimeError(f"{self.kind} {step}: {len(changed)} resources changed, expected {expected}: "
                               f"{changed[:10]}")

    def checkpoint_path(self) -> Path:
        """The stack's checkpoint file (`.json.gz` under PULUMI_DIY_BACKEND_GZIP)."""
        plain = self.backend / ".pulumi" / "stacks" / self.project_name / f"{self.stack}.json"
        packed = plain.with_name(plain.name + ".gz")
        return packed if packed.exists() and not plain.exists() else plain

    def checkpoint(self) -> dict[str, Any]:
        path = self.checkpoint_path()
        data = path.read_bytes()
        return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)

    def dynamic_resources(self) -> list[dict[str, Any]]:
        resources = self.checkpoint()["checkpoint"].get("latest", {}).get("resources") or []
        return [r for r in resources if r["type"].startswith("pulumi-python:dynamic")]

    def fingerprints(self) -> dict[str, str]:
        """Each dynamic resource's plain outputs, as one string (what a renewal or an update changes). Secrets
        (the pickled provider, private keys) are left out: the engine re-encrypts them on every write."""
        return {r["urn"]: json.dumps({k: v for k, v in (r.get("outputs") or {}).items() if not is_secret(v)},
                                     sort_keys=True) for r in self.dynamic_resources()}

    def state(self) -> dict[str, Any]:
        path = self.checkpoint_path()
        resources = self.checkpoint()["checkpoint"]["latest"]["resources"]
        by_type: dict[str, list[int]] = defaultdict(list)
        for r in resources:
            by_type[r["type"]].append(len(json.dumps(r, separators=(",", ":"))))
        # the engine's record of where each resource was registered (metadata: certplane keeps only its own frames)
        traces = sum(len(json.dumps(r["stackTrace"], separators=(",", ":"))) for r in resources if "stackTrace" in r)
        return {"checkpoint_bytes": path.stat().st_size, "bytes_per_n": round(path.stat().st_size / self.n),
                "stack_trace_bytes": traces, "resources": len(resources),
                "by_type": {t: {"count": len(v), "bytes_each": round(statistics.mean(v))}
                            for t, v in sorted(by_type.items())}}

    def destroy(self) -> None:
        self.cli("destroy", "--yes", "--skip-preview")


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_KIND


def fields_of(resource_: dict[str, Any]) -> dict[str, int]:
    """Compact JSON bytes of each input and output of one resource in the checkpoint, largest first."""
    sizes: dict[str, int] = {}
    for part in ("inputs", "outputs"):
        for key, value in (resource_.get(part) or {}).items():
            sizes[f"{part}.{key}"] = len(json.dumps(value, separators=(",", ":")))
    for key in ("stackTrace", "propertyDependencies", "additionalSecretOutputs", "aliases"):
        if key in resource_:
            sizes[key] = len(json.dumps(resource_[key], separators=(",", ":")))
    rest = {k: v for k, v in resource_.items() if k not in ("inputs", "outputs", *sizes)}
    sizes["(urn, type, id, parent, provider, dates, ...)"] = len(json.dumps(rest, separators=(",", ":")))
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


# Peak RSS: VmHWM of each process under the command, read from /proc until it exits (bounded by the timeout).

def kind_of(pid: int) -> str | None:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [c.decode(errors="replace") for c in cmd if c]
    line = " ".join(words)
    if "pulumi.dynamic" in line:
        return "provider (python -m pulumi.dynamic)"
    if "pulumi-language-python-exec" in line:
        return "program (python __main__.py)"
    exe = Path(words[0]).name if words else ""
    if exe == "pulumi":
        return "engine (pulumi)"
    if exe.startswith("pulumi-language-python"):
        return "language host"
    return None


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def watch(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """Poll the process tree every 0.1 s until `proc` exits: the highest VmHWM seen per kind (KiB), and the CPU
    seconds per kind (the last reading of each process: up to 0.1 s of a process's end is missed)."""
    peaks: dict[str, int] = {}
    ticks: dict[int, int] = {}
    seen: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in descendants(proc.pid):
            kind = seen.get(pid) or kind_of(pid)
            if kind is None:
                continue
            seen[pid] = kind
            hwm, cpu = vm_hwm_kib(pid), cpu_ticks(pid)
            if hwm is not None:
                peaks[kind] = max(peaks.get(kind, 0), hwm)
            if cpu is not None:
                ticks[pid] = cpu
        time.sleep(0.1)
    hz = os.sysconf("SC_CLK_TCK")
    cpu_s: dict[str, float] = defaultdict(float)
    for pid, t in ticks.items():
        cpu_s[seen[pid]] += t / hz
    return {**dict(sorted(peaks.items())), "cpu_s": {k: round(v, 2) for k, v in sorted(cpu_s.items())}}


# The run

def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def bench_n(n: int, args: argparse.Namespace, monitor: bool) -> dict[str, Any]:
    runs = {"create": args.create_runs, "preview": args.runs, "noop_up": args.runs, "renew_10pct": args.renew_runs}
    result: dict[str, Any] = {"n": n, "resources_each_side": n + CA_RESOURCES, "steps": {}, "peak_rss_kib": {},
                              "cpu_by_process_s": {}}
    with tempfile.TemporaryDirectory(prefix=f"bench-fleet-{n}-") as tmp:
        sides = {kind: Project(Path(tmp) / kind, kind, n, args.timeout, args.program,
                               dict(args.env) if kind == "certplane" or args.env_both else None)
                 for kind in ("floor", "certplane")}
        for step in STEPS:
            samples: dict[str, list[dict[str, Any]]] = {"floor": [], "certplane": []}
            for r in range(runs[step]):
                for kind in ("floor", "certplane"):  # in turn, so a drift of the machine hits both
                    side = sides[kind]
                    if step == "create" and r > 0:
                        side.destroy()
                    watch_it = monitor and step in ("create", "noop_up") and r == 0
                    sample = side.timed(step, monitor=watch_it)
                    samples[kind].append(sample)
                    if "peak_rss_kib" in sample:
                        watched = sample.pop("peak_rss_kib")
                        result["cpu_by_process_s"].setdefault(step, {})[kind] = watched.pop("cpu_s")
                        result["peak_rss_kib"].setdefault(step, {})[kind] = watched
                    print(f"  n={n} {step:<11} run {r + 1}/{runs[step]} {kind:<9} {sample['wall_s']:7.2f} s "
                          f"wall  {sample['cpu_s']:7.2f} s cpu", flush=True)
            ratios = [c["wall_s"] / f["wall_s"] for f, c in zip(samples["floor"], samples["certplane"])]
            cpu_ratios = [c["cpu_s"] / f["cpu_s"] for f, c in zip(samples["floor"], samples["certplane"])
                          if f["cpu_s"] > 0]
            result["steps"][step] = {
                "command": "pulumi " + " ".join(COMMANDS[step]), "runs": runs[step],
                **{f"{kind}_wall_s": median([s["wall_s"] for s in samples[kind]]) for kind in samples},
                **{f"{kind}_cpu_s": median([s["cpu_s"] for s in samples[kind]]) for kind in samples},
                "ratio_wall": median(ratios), "ratio_cpu": median(cpu_ratios) if cpu_ratios else None,
                "samples": samples,
            }
        result["state"] = {kind: side.state() for kind, side in sides.items()}
        certs = [r for r in sides["certplane"].checkpoint()["checkpoint"]["latest"]["resources"]
                 if r["type"].endswith(":Certificate") and r["urn"].endswith("::c0001")]
        floor_res = sides["floor"].dynamic_resources()
        result["state"]["certificate_fields"] = fields_of(certs[0]) if certs else {}
        result["state"]["floor_fields"] = fields_of(floor_res[1]) if floor_res else {}
        # No destroy at the end: state, audit log and keys live in the temp dir, which goes (a destroy of 500
        # certificates writes the checkpoint once per resource deleted and takes minutes).
    return result


def fmt_ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}×"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"# certplane vs floor — {report['date']}", "",
             f"Machine: {m['cores']} cores, {m['platform']}, Python {m['python']}, Pulumi {m['pulumi']}; "
             f"load average at start {m['load_start']}, at end {m['load_end']}.", "",
             f"Command: `{report['command']}`", "",
             "Wall seconds (median of the runs), CPU seconds of the whole process tree, and certplane/floor "
             "(median of run-by-run ratios; floor and certplane ran in turn). The floor holds as many dynamic "
             "resources as certplane's stack (N certificates + the CA's key and certificate).", "",
             "| N | step | command | runs | certplane s | floor s | ratio | certplane cpu s | floor cpu s | cpu ratio |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for res in report["results"]:
        for step, s in res["steps"].items():
            lines.append(f"| {res['n']} | {step} | `{s['command']}` | {s['runs']} | {s['certplane_wall_s']:.2f} | "
                         f"{s['floor_wall_s']:.2f} | {fmt_ratio(s['ratio_wall'])} | {s['certplane_cpu_s']:.2f} | "
                         f"{s['floor_cpu_s']:.2f} | {fmt_ratio(s['ratio_cpu'])} |")
    lines += ["", "State (file backend checkpoint):", "",
              "| N | certplane bytes | floor bytes | certplane bytes / N | floor bytes / N | ratio |",
              "|---:|---:|---:|---:|---:|---:|"]
    for res in report["results"]:
        c, f = res["state"]["certplane"], res["state"]["floor"]
        lines.append(f"| {res['n']} | {c['checkpoint_bytes']:,} | {f['checkpoint_bytes']:,} | {c['bytes_per_n']:,} | "
                     f"{f['bytes_per_n']:,} | {c['checkpoint_bytes'] / f['checkpoint_bytes']:.1f}× |")
    if all("stack_trace_bytes" in res["state"]["floor"] for res in report["results"]):
        lines += ["", "Without the engine's `stackTrace` records (the floor keeps the SDK's whole stacks, certplane "
                      "only its program's frames):", "",
                  "| N | certplane stackTrace bytes | floor stackTrace bytes | certplane bytes / N | floor bytes / N | "
                  "ratio |", "|---:|---:|---:|---:|---:|---:|"]
        for res in report["results"]:
            c, f = res["state"]["certplane"], res["state"]["floor"]
            rest_c = c["checkpoint_bytes"] - c["stack_trace_bytes"]
            rest_f = f["checkpoint_bytes"] - f["stack_trace_bytes"]
            lines.append(f"| {res['n']} | {c['stack_trace_bytes']:,} | {f['stack_trace_bytes']:,} | "
                         f"{rest_c / res['n']:,.0f} | {rest_f / res['n']:,.0f} | {rest_c / rest_f:.1f}× |")
    last = report["results"][-1]
    lines += ["", f"Per resource type at N={last['n']} (compact JSON bytes of one resource):", "",
              "| side | type | count | bytes each |", "|---|---|---:|---:|"]
    for kind in ("certplane", "floor"):
        for t, v in last["state"][kind]["by_type"].items():
            lines.append(f"| {kind} | `{t}` | {v['count']} | {v['bytes_each']:,} |")
    stack = last["state"]["certplane"]["by_type"].get("pulumi:pulumi:Stack")
    if stack:
        lines += ["", f"certplane's stack resource (its outputs: `inventory` and `certificates`) holds "
                      f"{stack['bytes_each']:,} bytes: {stack['bytes_each'] / last['n']:,.0f} bytes per certificate."]
    fields = last["state"]["certificate_fields"]
    if fields:
        total = sum(fields.values())
        lines += ["", "One certificate resource (`c0001`) by field (compact JSON bytes; the largest ten):", "",
                  "| field | bytes | share |", "|---|---:|---:|"]
        for k, v in list(fields.items())[:10]:
            lines.append(f"| `{k}` | {v:,} | {v / total:.0%} |")
        lines.append(f"| (total) | {total:,} | |")
    floor_fields = last["state"].get("floor_fields") or {}
    if floor_fields:
        lines += ["", "One floor resource by field: " + ", ".join(f"`{k}` {v:,}" for k, v in
                                                             list(floor_fields.items())[:5])
                  + f"; total {sum(floor_fields.values()):,} bytes."]
    if last["peak_rss_kib"]:
        lines += ["", f"Peak RSS (VmHWM, MiB) at N={last['n']}:", "", "| step | process | certplane | floor |",
                  "|---|---|---:|---:|"]
        for step, sides in last["peak_rss_kib"].items():
            kinds = sorted(set(sides.get("certplane", {})) | set(sides.get("floor", {})))
            for k in kinds:
                c, f = sides.get("certplane", {}).get(k), sides.get("floor", {}).get(k)
                lines.append(f"| {step} | {k} | {c / 1024:.0f} | {f / 1024:.0f} |" if c and f else
                             f"| {step} | {k} | {c and round(c / 1024)} | {f and round(f / 1024)} |")
    if last.get("cpu_by_process_s"):
        lines += ["", f"CPU seconds by process at N={last['n']} (from /proc, polled):", "",
                  "| step | process | certplane | floor |", "|---|---|---:|---:|"]
        for step, sides in last["cpu_by_process_s"].items():
            for k in sorted(set(sides.get("certplane", {})) | set(sides.get("floor", {}))):
                lines.append(f"| {step} | {k} | {sides.get('certplane', {}).get(k, '–')} | "
                             f"{sides.get('floor', {}).get(k, '–')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="certificates (repeatable; default 100 and 500)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each no-op step per side (default 3)")
    parser.add_argument("--create-runs", type=int, default=1, help="runs of the create step (default 1)")
    parser.add_argument("--renew-runs", type=int, default=1, help="runs of the renew step (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="bound on each pulumi command, seconds")
    parser.add_argument("--program", type=Path, default=ROOT,
                        help="the certplane tree to copy (default: this one; e.g. a worktree before a change)")
    parser.add_argument("--env", action="append", default=[], type=lambda t: tuple(t.split("=", 1)),
                        metavar="NAME=VALUE", help="an environment setting for certplane's side (repeatable), e.g. "
                                                   "PULUMI_PARALLEL_DIFF=true; the floor runs with the defaults")
    parser.add_argument("--env-both", action="store_true", help="give the --env settings to the floor as well")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak RSS polling")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where <date>.json and <date>.md go")
    parser.add_argument("--render", type=Path, help="only write the Markdown table again from a results .json")
    args = parser.parse_args()
    if args.render:
        args.render.with_suffix(".md").write_text(markdown(json.loads(args.render.read_text())))
        return 0
    ns = sorted(set(args.n or [100, 500]))
    version = subprocess.run([str(PULUMI), "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    load_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    started = dt.datetime.now(dt.timezone.utc)
    results = []
    for n in ns:
        print(f"n={n}", flush=True)
        results.append(bench_n(n, args, monitor=not args.no_rss and n == ns[-1]))
    report = {
        "date": started.strftime("%Y-%m-%d"), "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["bench/bench_fleet.py", *sys.argv[1:]]),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "pulumi": version, "load_start": load_start,
                    "load_end": " ".join(Path("/proc/loadavg").read_text().split()[:3])},
        "results": results,
    }
    stem = write(args.out, report["date"], report, markdown(report))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
