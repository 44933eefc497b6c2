"""Benchmark: N single-name DNS-01 ACME certificates with certplane, the `acme` library floor, certbot and lego.

Run:  .venv/bin/python bench/bench_acme.py [--n 50] [--runs 3] [--threads 8] [--lego-parallel 8]
                                           [--only certplane,floor,...] [--other-program DIR] [--out DIR]

One Pebble (PEBBLE_VA_NOSLEEP, nonce rejection 0 %, authorization reuse 0 % so every order validates) with
pebble-challtestsrv as its DNS, shared by every client; each client writes the TXT record through challtestsrv's
/set-txt. ECDSA P-256 keys everywhere. Names are unique per client and run, so nothing is reused. Per run, in turn:
  floor          bench/acme_floor.py: the `acme` library, one account, N orders on --threads threads, polling
                 every 50 ms
  floor_library  the same script with the library's own poll_and_finalize (fixed 1 s sleeps)
  certplane      a fresh stack (tests/integration/harness.py EngineProject) with N certificates of one ACME issuer
                 (dns: challtestsrv, propagation_check false); the timed step is the creating `up` (the issuer's
                 account is registered in the same up: a fresh account each run, as for every other client)
  certbot        `certbot certonly --manual --preferred-challenges dns` with auth/cleanup hooks
                 (bench/acme_tools/challtestsrv-hook), one process per certificate, one after the other (certbot
                 holds a lock on its config/work/logs dirs: one instance at a time), one account (the first
                 process registers it)
  lego           `lego accounts register`, then one `lego run --dns exec` per certificate, --lego-parallel at a
                 time, sharing the account (--path); propagation checks off (--dns.propagation.disable-ans/-rns)
                 and EXEC_POLLING_INTERVAL=0 (lego sleeps that long before the check even when it is disabled)
  lego_all       the same with all N processes at once (lego's docs set no limit on concurrent runs)
Each run is checked: Pebble's log gains exactly N "Issued certificate serial" lines, and the client's own outputs
hold N certificates. Wall seconds; ratio = median of the run-by-run time/floor ratios (the floor of the same run).

certbot (PyPI, pinned) and lego (Go module proxy, pinned) are installed on first use under
~/.cache/certplane/bench/ (`--tools DIR`), with bounded retries; a tool that cannot be installed is skipped with one
line saying why. Writes bench/results/<UTC date>-acme.json and .md. Every command is bounded by --timeout seconds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bytecode import compile_bytecode  # noqa: E402
from bench.report import write  # noqa: E402
from tests.integration.harness import EngineProject  # noqa: E402
from tools.servers.pebble import PebbleServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HOOK = ROOT / "bench" / "acme_tools" / "challtestsrv-hook"
FLOOR = ROOT / "bench" / "acme_floor.py"
CERTBOT_VERSION = "5.8.0"
LEGO_VERSION = "v5.6.0"
LEGO_MODULE = "github.com/go-acme/lego/v5"  # v5's main package is the module root (v4 had cmd/lego)
LEGO_TAGS = "lego_dnslight,lego_dns_exec"  # lego's documented light build (Makefile build_dnslight): exec only
# One module of the full lego build tree may be missing from a proxy (here: 403 for slogor v1.7.1, the CLI's
# log handler): the fallback builds the same lego version with that one dependency at the previous patch release.
LEGO_FALLBACK_REPLACE = ("gitlab.com/greyxor/slogor", "v1.7.1", "v1.7.0")
CLIENTS = ("floor", "floor_library", "certplane", "certplane_other", "certbot", "lego", "lego_all")
DEFAULT_CLIENTS = ("floor", "floor_library", "certplane", "certbot", "lego", "lego_all")
ISSUED_LINE = "Issued certificate serial"


def log(msg: str) -> None:
    print(f"[bench_acme {dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {msg}", flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- tools -----------------------------------------------------------------------------------------------------

def _retry(what: str, cmd: list[str], *, attempts: int = 3, timeout: float = 900, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str] | None:
    out = None
    for attempt in range(1, attempts + 1):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
        except subprocess.TimeoutExpired:
            out = None
        if out is not None and out.returncode == 0:
            return out
        if attempt < attempts:
            time.sleep(2 * attempt)
    tail = (out.stderr or out.stdout).strip().splitlines()[-1:] if out is not None else [f"timed out ({timeout}s)"]
    log(f"{what} failed after {attempts} attempts: {tail[0] if tail else 'no output'}")
    return None


def ensure_certbot(tools: Path) -> Path | None:
    venv = tools / f"certbot-{CERTBOT_VERSION}"
    certbot = venv / "bin" / "certbot"
    if certbot.exists():
        return certbot
    shutil.rmtree(venv, ignore_errors=True)
    log(f"installing certbot {CERTBOT_VERSION} from PyPI into {venv}")
    if _retry("python -m venv", [sys.executable, "-m", "venv", str(venv)], attempts=1, timeout=120) is None:
        return None
    if _retry(f"pip install certbot=={CERTBOT_VERSION}",
              [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
               f"certbot=={CERTBOT_VERSION}"], timeout=600) is None:
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return certbot


def ensure_lego(tools: Path) -> tuple[Path | None, str]:
    """lego's binary and how it was built."""
    gobin = tools / f"lego-{LEGO_VERSION}"
    lego = gobin / "lego"
    note = gobin / "BUILD"
    if lego.exists():
        return lego, note.read_text().strip() if note.exists() else "cached"
    go = shutil.which("go")
    if go is None:
        log("lego: no `go` on PATH to build it with (https://go.dev/dl/); skipping lego")
        return None, ""
    gobin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": f"-tags={LEGO_TAGS}"}
    log(f"building lego {LEGO_VERSION} from the Go module proxy into {gobin} (tags {LEGO_TAGS})")
    direct = _retry("go install lego", [go, "install", f"{LEGO_MODULE}@{LEGO_VERSION}"], attempts=2, env=env,
                    cwd=gobin)
    if direct is not None and lego.exists():
        note.write_text(f"go install -tags {LEGO_TAGS} {LEGO_MODULE}@{LEGO_VERSION}\n")
        return lego, note.read_text().strip()
    mod, bad, good = LEGO_FALLBACK_REPLACE
    wrap = gobin / "build"
    shutil.rmtree(wrap, ignore_errors=True)
    wrap.mkdir()
    (wrap / "go.mod").write_text(f"module certplane.bench/lego\n\ngo 1.24\n\nrequire {LEGO_MODULE} {LEGO_VERSION}\n\n"
                                 f"replace {mod} {bad} => {mod} {good}\n")
    (wrap / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{LEGO_MODULE}"\n')
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    built = _retry("go build lego (fallback)", [go, "build", "-tags", LEGO_TAGS, "-trimpath", "-o", str(lego),
                                                LEGO_MODULE], attempts=2, env=env, cwd=wrap)
    shutil.rmtree(wrap, ignore_errors=True)
    if built is None or not lego.exists():
        log("lego: could not be built from the Go module proxy; skipping lego")
        return None, ""
    note.write_text(f"go build -tags {LEGO_TAGS} {LEGO_MODULE}@{LEGO_VERSION} with {mod} {bad} => {good}\n")
    return lego, note.read_text().strip()


# --- one Pebble ------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, pebble: PebbleServer, args: argparse.Namespace, certbot: Path | None,
                 lego: Path | None) -> None:
        self.pebble, self.args, self.certbot, self.lego = pebble, args, certbot, lego
        self.tag = uuid.uuid4().hex[:6]

    def issued_so_far(self) -> int:
        return (self.pebble.workdir / "pebble.log").read_text(errors="replace").count(ISSUED_LINE)

    def names(self, client: str, run: int) -> list[str]:
        short = client.replace("_", "")
        return [f"{short}{i:03d}.r{run}.{self.tag}.example.test" for i in range(self.args.n)]

    def hook_env(self) -> dict[str, str]:
        return {**os.environ, "CHALLTESTSRV_URL": self.pebble.challtestsrv_url}

    def run(self, client: str, run: int, tmp: Path) -> dict[str, Any]:
        names = self.names(client, run)
        before, load = self.issued_so_far(), loadavg()
        seconds, outputs, extra = getattr(self, "run_" + client)(names, tmp)
        time.sleep(0.2)  # Pebble's log line follows the response
        issued = self.issued_so_far() - before
        ok = issued == len(names) and outputs == len(names)
        result = {"client": client, "run": run, "seconds": round(seconds, 3), "pebble_issued": issued,
                  "outputs": outputs, "ok": ok, "load_before": load, "load_after": loadavg(), **extra}
        log(f"run {run} {client}: {seconds:.2f}s, Pebble issued {issued}, outputs {outputs}"
            f"{'' if ok else '  << NOT ' + str(len(names))}")
        return result

    # (a) certplane
    def run_certplane(self, names: list[str], tmp: Path, program: Path = ROOT) -> tuple[float, int, dict[str, Any]]:
        p = self.pebble
        issuer = {"type": "acme", "directory_url": p.directory_url, "email": "bench@example.test",
                  "ca_bundle": str(p.ca_bundle_path),
                  "dns": {"provider": "challtestsrv", "url": p.challtestsrv_url, "propagation_check": False}}
        certs = {f"c{i:03d}": {"domains": [name], "issuer": "pebble", "key": {"algorithm": "ecdsa", "curve": "P-256"},
                               "formats": ["pem"]} for i, name in enumerate(names)}
        project = EngineProject(tmp / "certplane", {"issuers": {"pebble": issuer}, "certificates": certs},
                                program=program)
        compile_bytecode(project.dir)  # untimed: as an installed program runs after its first run
        start = time.monotonic()
        up = project.up()
        seconds = time.monotonic() - start
        inventory = project.outputs().get("inventory", {})
        return seconds, len(inventory), {"resource_changes": dict(up.summary.resource_changes or {}),
                                         "program": str(program)}

    def run_certplane_other(self, names: list[str], tmp: Path) -> tuple[float, int, dict[str, Any]]:
        """certplane from another program tree (--other-program: e.g. before a change), same everything else."""
        return self.run_certplane(names, tmp, self.args.other_program)

    # (b) the floor
    def _floor(self, names: list[str], *mode: str) -> tuple[float, int, dict[str, Any]]:
        p = self.pebble
        out = subprocess.run([sys.executable, str(FLOOR), "--directory", p.directory_url, "--ca-bundle",
                              str(p.ca_bundle_path), "--challtestsrv", p.challtestsrv_url, "--names", ",".join(names),
                              "--threads", str(self.args.threads), *mode], capture_output=True, text=True,
                             timeout=self.args.timeout)
        result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
        if out.returncode != 0:
            log(f"floor failed: {result.get('errors') or out.stderr.strip()[-300:]}")
        return float(result.get("seconds", "nan")), int(result.get("issued", 0)), {"threads": self.args.threads}

    def run_floor(self, names: list[str], tmp: Path) -> tuple[float, int, dict[str, Any]]:
        return self._floor(names, "--poll", "0.05")

    def run_floor_library(self, names: list[str], tmp: Path) -> tuple[float, int, dict[str, Any]]:
        return self._floor(names, "--library-polling")

    # (c) certbot
    def run_certbot(self, names: list[str], tmp: Path) -> tuple[float, int, dict[str, Any]]:
        assert self.certbot is not None
        dirs = {d: tmp / "certbot" / d for d in ("config", "work", "logs")}
        env = {**self.hook_env(), "REQUESTS_CA_BUNDLE": str(self.pebble.ca_bundle_path)}
        base = [str(self.certbot), "certonly", "--non-interactive", "--agree-tos", "-m", "bench@example.test",
                "--no-eff-email", "--server", self.pebble.directory_url, "--manual", "--preferred-challenges", "dns",
                "--manual-auth-hook", f"{HOOK} certbot-auth", "--manual-cleanup-hook", f"{HOOK} certbot-cleanup",
                "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
                "--config-dir", str(dirs["config"]), "--work-dir", str(dirs["work"]), "--logs-dir", str(dirs["logs"])]
        failures: list[str] = []
        start = time.monotonic()
        for name in names:
            out = subprocess.run([*base, "-d", name], capture_output=True, text=True, env=env,
                                 timeout=self.args.timeout)
            if out.returncode != 0:
                failures.append(f"{name}: {(out.stderr or out.stdout).strip()[-200:]}")
        seconds = time.monotonic() - start
        outputs = sum((dirs["config"] / "live" / n / "fullchain.pem").exists() for n in names)
        return seconds, outputs, {"processes": len(names), "parallel": 1, "failures": failures[:3]}

    # (d) lego
    def run_lego_all(self, names: list[str], tmp: Path) -> tuple[float, int, dict[str, Any]]:
        """lego with every certificate's process at once."""
        return self.run_lego(names, tmp, parallel=len(names))

    def run_lego(self, names: list[str], tmp: Path, parallel: int | None = None) -> tuple[float, int, dict[str, Any]]:
        assert self.lego is not None
        parallel = parallel or self.args.lego_parallel
        path = tmp / "lego"
        # EXEC_POLLING_INTERVAL: lego sleeps this long before its (here disabled) propagation check; 0 = no sleep
        env = {**self.hook_env(), "LEGO_CA_CERTIFICATES": str(self.pebble.ca_bundle_path),
               "EXEC_PATH": str(HOOK), "EXEC_POLLING_INTERVAL": str(self.args.lego_poll_interval),
               "EXEC_PROPAGATION_TIMEOUT": "30"}
        common = ["--path", str(path), "--server", self.pebble.directory_url, "-m", "bench@example.test"]
        failures: list[str] = []

        def one(name: str) -> None:
            out = subprocess.run([str(self.lego), "--log.format", "text", "run", *common, "--accept-tos",
                                  "--key-type", "EC256", "--dns", "exec",
                                  "--dns.resolvers", self.pebble.challtestsrv_dns,
                                  "--dns.propagation.disable-ans", "--dns.propagation.disable-rns", "-d", name],
                                 capture_output=True, text=True, env=env, timeout=self.args.timeout)
            if out.returncode != 0:
                failures.append(f"{name}: {(out.stderr or out.stdout).strip()[-200:]}")

        start = time.monotonic()
        reg = subprocess.run([str(self.lego), "--log.format", "text", "accounts", "register", *common, "--accept-tos",
                              "--key-type", "EC256"], capture_output=True, text=True, env=env,
                             timeout=self.args.timeout)
        if reg.returncode != 0:
            failures.append(f"accounts register: {(reg.stderr or reg.stdout).strip()[-200:]}")
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(one, names))
        seconds = time.monotonic() - start
        outputs = sum(1 for n in names if any(path.rglob(f"{n}.crt")))
        return seconds, outputs, {"processes": len(names), "parallel": parallel,
                                  "exec_polling_interval": self.args.lego_poll_interval, "failures": failures[:3]}


# --- report ----------------------------------------------------------------------------------------------------

def summarize(runs: list[dict[str, Any]], clients: list[str]) -> dict[str, Any]:
    floor = {r["run"]: r["seconds"] for r in runs if r["client"] == "floor" and r["ok"]}
    floor_lib = {r["run"]: r["seconds"] for r in runs if r["client"] == "floor_library" and r["ok"]}
    out: dict[str, Any] = {}
    for client in clients:
        mine = [r for r in runs if r["client"] == client]
        good = [r for r in mine if r["ok"]]
        if not good:
            out[client] = {"runs": len(mine), "ok_runs": 0}
            continue
        ratio = [r["seconds"] / floor[r["run"]] for r in good if r["run"] in floor]
        ratio_lib = [r["seconds"] / floor_lib[r["run"]] for r in good if r["run"] in floor_lib]
        out[client] = {"runs": len(mine), "ok_runs": len(good),
                       "median_s": round(statistics.median(r["seconds"] for r in good), 3),
                       "min_s": round(min(r["seconds"] for r in good), 3),
                       "max_s": round(max(r["seconds"] for r in good), 3),
                       "ratio_vs_floor": round(statistics.median(ratio), 2) if ratio else None,
                       "ratio_vs_floor_library": round(statistics.median(ratio_lib), 2) if ratio_lib else None}
    return out


def markdown(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["summary"]
    lines = [f"# ACME bench {report['date']}: {report['n']} single-name DNS-01 certificates, one Pebble", "",
             f"{m['cores']} cores, {m['platform']}, Python {m['python']}; load average {m['load_start']} at the start, "
             f"{m['load_end']} at the end. certbot {CERTBOT_VERSION}, lego {LEGO_VERSION} ({report['lego_build']}). "
             f"Command: `{report['command']}`.", "",
             "| client | runs ok | median s | min–max s | × floor (50 ms polls, 8 threads) "
             "| × floor (library polling) |",
             "|---|---:|---:|---:|---:|---:|"]
    for client, row in s.items():
        if not row.get("ok_runs"):
            lines.append(f"| {client} | 0/{row['runs']} | – | – | – | – |")
            continue
        fmt = lambda x: "–" if x is None else f"{x:.2f}×"  # noqa: E731
        lines.append(f"| {client} | {row['ok_runs']}/{row['runs']} | {row['median_s']:.2f} | "
                     f"{row['min_s']:.2f}–{row['max_s']:.2f} | {fmt(row['ratio_vs_floor'])} | "
                     f"{fmt(row['ratio_vs_floor_library'])} |")
    lines += ["", "Runs (seconds; Pebble's issued count; load average before):", ""]
    for r in report["runs"]:
        lines.append(f"- run {r['run']} {r['client']}: {r['seconds']:.2f} s, issued {r['pebble_issued']}, outputs "
                     f"{r['outputs']}{'' if r['ok'] else ' (FAILED)'}, load {r['load_before']}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="the floor's threads")
    parser.add_argument("--lego-parallel", type=int, default=8, help="lego processes at a time (lego_all: all N)")
    parser.add_argument("--lego-poll-interval", type=int, default=0,
                        help="EXEC_POLLING_INTERVAL for lego (seconds; it sleeps that long before each propagation "
                             "check, even a disabled one; lego's default is 3)")
    parser.add_argument("--only", default=",".join(DEFAULT_CLIENTS),
                        help=f"comma-separated subset of {','.join(CLIENTS)}")
    parser.add_argument("--tools", type=Path, default=Path.home() / ".cache" / "certplane" / "bench")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--other-program", type=Path,
                        help="also run certplane from this program tree (__main__.py, components/, providers/) as "
                             "client certplane_other, e.g. a copy from before a change")
    parser.add_argument("--suffix", default="", help="results file name suffix, e.g. -before")
    args = parser.parse_args()
    clients = [c for c in args.only.split(",") if c]
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    if args.other_program is not None and "certplane_other" not in clients:
        clients.insert(clients.index("certplane") + 1 if "certplane" in clients else 0, "certplane_other")
    if args.other_program is None and "certplane_other" in clients:
        clients.remove("certplane_other")
    for needed in ("floor",):
        if needed not in clients:
            clients.insert(0, needed)  # every ratio is against the floor of the same run

    args.tools.mkdir(parents=True, exist_ok=True)
    certbot = ensure_certbot(args.tools) if "certbot" in clients else None
    lego, lego_build = ensure_lego(args.tools) if {"lego", "lego_all"} & set(clients) else (None, "")
    if "certbot" in clients and certbot is None:
        clients.remove("certbot")
    if lego is None:
        clients = [c for c in clients if not c.startswith("lego")]

    load_start = loadavg()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="certplane-bench-acme-") as tmpdir:
        tmp = Path(tmpdir)
        with PebbleServer(nonce_reject=0, authz_reuse=0, workdir=tmp / "pebble") as pebble:
            bench = Bench(pebble, args, certbot, lego)
            for run in range(1, args.runs + 1):
                for client in clients:
                    work = tmp / f"{client}-{run}"
                    work.mkdir()
                    runs.append(bench.run(client, run, work))
                    shutil.rmtree(work, ignore_errors=True)
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    report = {
        "date": date, "n": args.n, "runs_per_client": args.runs, "threads": args.threads,
        "lego_parallel": args.lego_parallel, "lego_build": lego_build or "not run",
        "command": " ".join([".venv/bin/python", "bench/bench_acme.py", *sys.argv[1:]]),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_start": load_start, "load_end": loadavg()},
        "summary": summarize(runs, clients), "runs": runs,
    }
    stem = write(args.out, f"{date}-acme{args.suffix}", report, markdown(report))
    log(f"wrote {stem}.json and .md")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
