"""`./certplane check --probe` over N nginx bindings against a floor of raw concurrent TLS handshakes.

    .venv/bin/python bench/bench_probe.py                 # N=200, 7 runs after 1 warm-up (= make bench-probe)
    .venv/bin/python bench/bench_probe.py --runs 9 --ports 4 --suffix -4ports

One real nginx (tools/servers/nginx.py: unprivileged, 127.0.0.1 only, free ports, every wait bounded) serves N
server names `s001.probe.test` ... with SNI, each with its own ECDSA P-256 leaf (and the CA after it) from a
throwaway private CA (tests/support/pki.py). An inventory file lists the N certificates with their endpoint, as the
stack's `inventory` output does (components/managed_certificate.py `inventory_entry`).

Timed as whole processes, in turn each run (floor, certplane, startup, floor, certplane, startup, ...), start-up
included on every side:
- `floor`: bench/probe_floor.py: N handshakes with SNI on a pool of cli/probe.py's MAX_WORKERS threads, the peer
  certificate read, nothing checked (standard library only);
- `certplane`: `./certplane check --probe --inventory-file FILE` (the bash wrapper, tools/env.sh, the .venv);
  every run must exit 0 with N certificates OK and N endpoints probed;
- `startup`: `./certplane --help`: the CLI's start-up alone (wrapper, interpreter, imports, argument parser).
Wall seconds (monotonic, around the child), CPU seconds of the child (rusage); ratio = median of the run-by-run
certplane/floor ratios. Then, untimed, where the CLI's time goes: `-X importtime` and a cProfile of one run.
Results: bench/results/<UTC date>-probe<suffix>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pstats
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write  # noqa: E402
from cli.probe import MAX_WORKERS  # noqa: E402  (the CLI's default concurrency: the floor uses the same)
from providers.core import certificates as x509util  # noqa: E402
from providers.core import keys  # noqa: E402
from tests.support.pki import make_ca, make_leaf  # noqa: E402
from tools.servers.nginx import NginxServer, sites_dir  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
CERTPLANE = ROOT / "certplane"
FLOOR = ROOT / "bench" / "probe_floor.py"
DOMAIN = "probe.test"
SIDES = ("floor", "certplane", "startup")


def log(message: str) -> None:
    print(f"[bench-probe] {message}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out on 127.0.0.1, all held open together so they differ, then released."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


# --- the fleet: a CA, N leaves, one nginx, the inventory ---------------------------------------------------------

def build_fleet(work: Path, n: int, ports: list[int]) -> tuple[NginxServer, Path, list[str]]:
    now = dt.datetime.now(dt.timezone.utc)
    ca = make_ca("certplane bench probe CA", days=3650, now=now)
    ca_pem = x509util.to_pem(ca.cert)
    conf_dir = work / "nginx"
    server = NginxServer(conf_dir, f"127.0.0.1:{ports[0]}")
    server.write_config()
    certs_dir = conf_dir / "bench-certs"
    certs_dir.mkdir(mode=0o700)
    blocks, inventory, names = [], {}, []
    for i in range(1, n + 1):
        name = f"s{i:03d}.{DOMAIN}"
        port = ports[(i - 1) % len(ports)]
        leaf = make_leaf(ca, (name,), days=90, now=now)
        crt, key = certs_dir / f"{name}.crt", certs_dir / f"{name}.key"
        crt.write_text(x509util.to_pem(leaf.cert) + ca_pem)  # the leaf, then its issuer: a complete chain
        key.write_text(keys.private_key_to_pem(leaf.key))
        key.chmod(0o600)
        blocks.append(f"server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name {name};\n"
                      f"    ssl_certificate {crt};\n    ssl_certificate_key {key};\n    return 204;\n}}\n")
        not_after = leaf.cert.not_valid_after_utc
        inventory[f"s{i:03d}"] = {
            "domains": [name], "issuer": "bench-ca", "issuer_dn": ca.cert.subject.rfc4514_string(),
            "serial": format(leaf.cert.serial_number, "x"),
            "not_before": rfc3339(leaf.cert.not_valid_before_utc), "not_after": rfc3339(not_after),
            "days_remaining": round((not_after - now).total_seconds() / 86400, 1),
            "renewal_time": rfc3339(not_after - dt.timedelta(days=30)),
            "fingerprint_sha256": x509util.fingerprint_sha256(leaf.cert), "key_algorithm": "ECDSA-P-256",
            "targets": ["nginx"],
            "endpoints": [{"host": "127.0.0.1", "port": port, "server_name": name, "target": "nginx"}],
            "bindings": [], "tags": {"owner": "bench", "env": "bench"},
            "chain_not_after": rfc3339(not_after), "chain_earliest_subject": leaf.cert.subject.rfc4514_string(),
            "served_sha256": x509util.verified_bundle_digest([leaf.cert, ca.cert], [name]),
        }
        names.append(name)
    (sites_dir(conf_dir) / "probe.conf").write_text("".join(blocks))
    inv = work / "inventory.json"
    inv.write_text(json.dumps(inventory, indent=2) + "\n")
    return server, inv, names


# --- timing ------------------------------------------------------------------------------------------------------

PYCACHE: Path | None = None  # set by main: a temp bytecode cache (see --bytecode)


def env() -> dict[str, str]:
    """The children's environment: no time travel, no colours; with a PYCACHE, bytecode written there and read back
    (PYTHONDONTWRITEBYTECODE dropped), so every side runs from a warm cache as an ordinary install does, and the
    repo tree gets no __pycache__."""
    out = {k: v for k, v in os.environ.items() if k not in ("CERTPLANE_NOW",)}
    out["NO_COLOR"] = "1"
    if PYCACHE is not None:
        out.pop("PYTHONDONTWRITEBYTECODE", None)
        out["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return out


def commands(inv: Path, workers: int) -> dict[str, list[str]]:
    return {"floor": [str(PYTHON), str(FLOOR), str(inv), "--workers", str(workers)],
            "certplane": [str(CERTPLANE), "check", "--probe", "--inventory-file", str(inv)],
            "startup": [str(CERTPLANE), "--help"]}


def timed(argv: list[str], timeout: float) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env(), cwd=str(ROOT),
                         stdin=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 4), "cpu_s": round(cpu, 4), "rc": out.returncode, "stdout": out.stdout,
            "stderr": out.stderr}


PROBED = re.compile(r"^OK: (\d+) certificates on stack \S+ \(0 critical, 0 warning, (\d+) ok\) as of .*; "
                    r"probed (\d+) endpoints in ([\d.]+)s$")


def verify(side: str, sample: dict[str, Any], n: int) -> dict[str, Any]:
    """Each run is checked: the floor read N certificates, certplane found all N served correctly."""
    lines = sample["stdout"].strip().splitlines()
    if side == "floor":
        ok = sample["rc"] == 0 and lines == [f"{n} handshakes, {n} certificates read"]
        return {"ok": ok}
    if side == "startup":
        return {"ok": sample["rc"] == 0 and "usage: certplane" in sample["stdout"]}
    match = PROBED.match(lines[-1]) if lines else None
    ok_lines = sum(1 for line in lines if line.startswith("OK ") and "1 endpoint serves it" in line)
    ok = (sample["rc"] == 0 and match is not None and match.group(1) == match.group(2) == match.group(3) == str(n)
          and ok_lines == n)
    return {"ok": ok, "probe_s": float(match.group(4)) if match else None}


def run_all(cmds: dict[str, list[str]], n: int, runs: int, warmup: int,
            timeout: float) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for r in range(warmup + runs):
        counted = r >= warmup
        for side in SIDES:  # in turn, so a drift of the machine's speed hits every side alike
            load = loadavg()
            sample = timed(cmds[side], timeout)
            checked = verify(side, sample, n)
            if not checked["ok"]:
                raise SystemExit(f"{side} run {r + 1} failed (exit {sample['rc']}):\n"
                                 f"{sample['stdout'][-2000:]}\n{sample['stderr'][-2000:]}")
            row = {"run": r + 1 - warmup, "wall_s": sample["wall_s"], "cpu_s": sample["cpu_s"], "load_before": load,
                   **({"probe_s": checked["probe_s"]} if "probe_s" in checked else {})}
            log(f"{'run ' + str(row['run']) if counted else 'warm-up'} {side:<9} {sample['wall_s']:6.3f} s wall "
                f"{sample['cpu_s']:6.3f} s cpu  (load {load})")
            if counted:
                samples[side].append(row)
    return samples


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 4)


def summarize(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    floor = [s["wall_s"] for s in samples["floor"]]
    for side, rows in samples.items():
        walls, cpus = [r["wall_s"] for r in rows], [r["cpu_s"] for r in rows]
        out[side] = {"runs": len(rows), "median_wall_s": med(walls), "min_wall_s": min(walls),
                     "max_wall_s": max(walls), "median_cpu_s": med(cpus),
                     "ratio_vs_floor": round(statistics.median(w / f for w, f in zip(walls, floor)), 3)}
    probe = [r["probe_s"] for r in samples["certplane"] if r.get("probe_s") is not None]
    if probe:
        out["certplane"]["median_probe_phase_s"] = med(probe)  # the CLI's own "probed N endpoints in X.Xs"
    return out


# --- where the CLI's time goes (untimed: one run each under the profilers) ---------------------------------------

def importtime(timeout: float) -> dict[str, Any]:
    """`python -X importtime -m cli --help`: the modules the CLI imports before it does anything."""
    e = {**env(), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([str(PYTHON), "-X", "importtime", "-m", "cli", "--help"], capture_output=True, text=True,
                         timeout=timeout, env=e, cwd=str(ROOT), check=False)
    rows: list[dict[str, Any]] = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append({"self_us": int(m.group(1)), "cumulative_us": int(m.group(2)),
                         "depth": len(m.group(3)) // 2, "module": m.group(4)})
    top = [r for r in rows if r["depth"] == 0]
    total = sum(r["cumulative_us"] for r in top)

    def cum(prefix: str) -> int:  # the first (outermost) import of each module under `prefix`
        return sum(r["cumulative_us"] for r in rows
                   if (r["module"] == prefix or r["module"].startswith(prefix + "."))
                   and not any(p["module"].startswith(prefix) for p in parents(rows, r)))

    groups = {g: round(cum(g) / 1000, 1) for g in ("cli", "cli.check", "cli.observe", "cli.audit", "cli.plan",
                                                   "cli.metrics", "providers.core.deploy", "providers.core.audit",
                                                   "providers.core.validation", "providers.core.formats",
                                                   "providers.core.certificates", "cryptography", "pydantic", "jks",
                                                   "Cryptodome", "pyasn1_modules", "yaml", "ssl")}
    return {"total_ms": round(total / 1000, 1), "by_package_ms": groups,
            "top_level_ms": [{"module": r["module"], "ms": round(r["cumulative_us"] / 1000, 1)}
                             for r in sorted(top, key=lambda r: -r["cumulative_us"])[:12]]}


def parents(rows: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows that imported `row` (importtime prints a module before its importer, the importer less indented)."""
    i, depth, out = rows.index(row), row["depth"], []
    for later in rows[i + 1:]:
        if later["depth"] < depth:
            out.append(later)
            depth = later["depth"]
            if depth == 0:
                break
    return out


def profile(inv: Path, work: Path, timeout: float) -> dict[str, Any]:
    """One `check --probe` under cProfile (main thread: the probes' threads show as the wait in probe_all)."""
    prof = work / "check.prof"
    e = {**env(), "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    out = subprocess.run([str(PYTHON), "-m", "cProfile", "-o", str(prof), "-m", "cli", "check", "--probe",
                          "--inventory-file", str(inv)], capture_output=True, text=True, timeout=timeout, env=e,
                         cwd=str(ROOT), check=False)
    wall = time.monotonic() - start
    if out.returncode != 0:
        return {"error": f"exit {out.returncode}: {out.stderr[-500:]}"}
    stats = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]

    def cumulative(file_end: str, func: str) -> float:
        return round(sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file_end) and fn == func), 4)

    def total(func_pred: Any) -> float:
        return round(sum(v[2] for (f, _, fn), v in stats.items() if func_pred(f, fn)), 4)

    def calls(file_end: str, func: str) -> int:
        return sum(v[1] for (f, _, fn), v in stats.items() if f.endswith(file_end) and fn == func)

    main_ct = cumulative("cli/__main__.py", "main")
    return {
        "wall_s_under_profiler": round(wall, 3),
        "cli_main_s": main_ct,
        "phases_s": {
            "load inventory (stack.load)": cumulative("cli/stack.py", "load"),
            "probe_all (wait for the handshake threads)": cumulative("cli/probe.py", "probe_all"),
            "assess (fingerprint, chain signature, names)": cumulative("cli/probe.py", "assess"),
            "  of which chain_problem (signature checks)": cumulative("cli/probe.py", "chain_problem"),
            "expiry_findings": cumulative("cli/expiry.py", "expiry_findings"),
        },
        "assess_calls": calls("cli/probe.py", "assess"),
        "imports_s (all <module> code + import machinery)": total(
            lambda f, fn: fn == "<module>" or "importlib._bootstrap" in f or f.startswith("<frozen importlib")),
    }


def startup_split(runs: int, timeout: float) -> dict[str, float]:
    """Medians of `python -c pass` (the interpreter), `python -m cli --help` (+ the CLI's imports and parser),
    and `./certplane --help` (+ the bash wrapper and tools/env.sh), in turn."""
    cmds = {"python -c pass": [str(PYTHON), "-c", "pass"],
            "python -m cli --help": [str(PYTHON), "-m", "cli", "--help"],
            "./certplane --help": [str(CERTPLANE), "--help"]}
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    e = {**env(), "PYTHONPATH": str(ROOT)}
    for _ in range(runs):
        for k, argv in cmds.items():
            start = time.monotonic()
            subprocess.run(argv, capture_output=True, timeout=timeout, env=e, cwd=str(ROOT), check=True)
            walls[k].append(time.monotonic() - start)
    return {k: med(v) for k, v in walls.items()}


# --- report ------------------------------------------------------------------------------------------------------

def markdown(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["summary"]
    lines = [f"# `certplane check --probe` vs raw TLS handshakes — {report['date']}", "",
             f"{m['cores']} cores, {m['platform']}, Python {m['python']}, {m['nginx']}; load average "
             f"{m['load_start']} at the start, {m['load_end']} at the end.", "",
             f"Command: `{report['command']}`. {report['n']} certificates, one nginx (1 worker) serving "
             f"{report['n']} server names with SNI on {len(report['ports'])} port(s) of 127.0.0.1, "
             f"{report['workers']} concurrent handshakes on both sides; {report['runs']} counted runs after "
             f"{report['warmup']} warm-up, sides in turn; bytecode: {report['bytecode']}"
             f" (PYTHONDONTWRITEBYTECODE={report['env_PYTHONDONTWRITEBYTECODE']} in the environment). Ratio: median of the run-by-run ratios to the floor.", "",
             "| side | command | median wall s | min–max s | median cpu s | × floor |",
             "|---|---|---:|---:|---:|---:|"]
    for side in SIDES:
        row = s[side]
        lines.append(f"| {side} | `{' '.join(report['commands'][side])}` | {row['median_wall_s']:.3f} | "
                     f"{row['min_wall_s']:.3f}–{row['max_wall_s']:.3f} | {row['median_cpu_s']:.3f} | "
                     f"{row['ratio_vs_floor']:.2f}× |")
    if "median_probe_phase_s" in s["certplane"]:
        lines += ["", f"certplane's own probe phase (its summary line, 0.1 s resolution): median "
                      f"{s['certplane']['median_probe_phase_s']:.1f} s."]
    split = report.get("startup_split")
    if split:
        lines += ["", "Start-up alone (medians, untimed side runs):", "", "| command | wall s |", "|---|---:|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in split.items()]
    imp = report.get("importtime")
    if imp:
        lines += ["", f"`python -X importtime -m cli --help`: {imp['total_ms']:.0f} ms of imports; by package "
                      "(first import, cumulative): " + ", ".join(f"{k} {v:.0f} ms" for k, v in
                                                                 imp["by_package_ms"].items()) + "."]
    prof = report.get("profile")
    if prof and "error" not in prof:
        lines += ["", f"cProfile of one `check --probe` (main thread; {prof['wall_s_under_profiler']:.2f} s wall "
                      f"under the profiler, `main` {prof['cli_main_s']:.2f} s):", "", "| phase | s |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in prof["phases_s"].items()]
        lines.append(f"| imports (module code + import machinery, tottime) | "
                     f"{prof['imports_s (all <module> code + import machinery)']:.3f} |")
    lines += ["", "Runs (wall s / cpu s; load average before the run):", ""]
    for i in range(report["runs"]):
        parts = [f"{side} {report['samples'][side][i]['wall_s']:.3f}/{report['samples'][side][i]['cpu_s']:.3f}"
                 for side in SIDES]
        lines.append(f"- run {i + 1}: " + ", ".join(parts) + f" (load {report['samples']['floor'][i]['load_before']})")
    return "\n".join(lines) + "\n"


def nginx_version() -> str:
    out = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stderr or out.stdout).strip().replace("nginx version: ", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="certificates, one server name each (default 200)")
    parser.add_argument("--runs", type=int, default=7, help="counted runs of each side (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="runs not counted, first (default 1)")
    parser.add_argument("--ports", type=int, default=1, help="nginx ports the names are spread over (default 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on each timed command, s")
    parser.add_argument("--no-profile", action="store_true", help="skip importtime, cProfile and the start-up split")
    parser.add_argument("--bytecode", choices=("warm", "env"), default="warm",
                        help="warm: a temp bytecode cache, filled by the warm-up (an ordinary install); env: as the "
                             "environment says (PYTHONDONTWRITEBYTECODE=1 recompiles the CLI's modules every run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--suffix", default="", help="appended to the results' name (<date>-probe<suffix>)")
    args = parser.parse_args()
    if not 1 <= args.n <= 999 or args.runs < 1 or args.ports < 1:
        parser.error("--n 1..999, --runs >= 1, --ports >= 1")

    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="certplane-bench-probe-") as tmpdir:
        work = Path(tmpdir)
        global PYCACHE
        PYCACHE = work / "pycache" if args.bytecode == "warm" else None
        ports = free_ports(args.ports)
        log(f"issuing {args.n} ECDSA P-256 leaves; nginx on 127.0.0.1:{','.join(map(str, ports))}")
        server, inv, _names = build_fleet(work, args.n, ports)
        try:
            server.start(timeout=15)
            cmds = commands(inv, MAX_WORKERS)
            samples = run_all(cmds, args.n, args.runs, args.warmup, args.timeout)
            extra: dict[str, Any] = {}
            if not args.no_profile:
                log("profiling the CLI (untimed)")
                extra["startup_split"] = startup_split(5, args.timeout)
                extra["importtime"] = importtime(args.timeout)
                extra["profile"] = profile(inv, work, args.timeout)
        finally:
            server.stop()
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    report = {
        "date": date, "n": args.n, "runs": args.runs, "warmup": args.warmup, "ports": ports,
        "workers": MAX_WORKERS, "bytecode": args.bytecode,
        "env_PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "command": " ".join([".venv/bin/python", "bench/bench_probe.py", *sys.argv[1:]]),
        "commands": {side: [c.replace(str(ROOT) + "/", "").replace(str(work), "$TMP")
                            for c in argv] for side, argv in cmds.items()},
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "nginx": nginx_version(), "load_start": load_start, "load_end": loadavg()},
        "summary": summarize(samples), "samples": samples, **extra,
    }
    stem = write(args.out, f"{date}-probe{args.suffix}", report, markdown(report))
    log(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
