"""Run Debian's Prometheus on 127.0.0.1 for the tests: its own config, TSDB and log in a work directory, scraping
the given targets every `scrape_interval`, evaluating the given rule files. Every wait is bounded; `stop()`
always ends the process it started (SIGTERM, then SIGKILL).

    python -m tools.servers.prometheus run WORKDIR LISTEN TARGET... [--rules FILE]   # until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from providers.core.net import parse_address

from . import ManagedServer, end_process, free_port

PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL_BIN = shutil.which("promtool") or "/usr/bin/promtool"


def render_config(targets: Sequence[str], *, scrape_interval: str = "1s", rule_files: Sequence[Path] = (),
                  job: str = "certplane", metrics_path: str = "/metrics") -> str:
    """prometheus.yml: one static job over `targets` (HOST:PORT), the rule files evaluated as often as scraped.
    JSON is YAML, so nothing here needs a YAML writer."""
    doc = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": job, "metrics_path": metrics_path,
                            "static_configs": [{"targets": list(targets)}]}],
    }
    return json.dumps(doc, indent=2) + "\n"


class PrometheusServer(ManagedServer):
    def __init__(self, targets: Sequence[str], *, workdir: str | Path | None = None, listen: str | None = None,
                 scrape_interval: str = "1s", rule_files: Sequence[str | Path] = (), job: str = "certplane",
                 prometheus_bin: str = PROMETHEUS_BIN, start_timeout: float = 30.0) -> None:
        self.targets = list(targets)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="certplane-prometheus-"))
        self.listen = listen or f"127.0.0.1:{free_port()}"
        address = parse_address(self.listen)
        self.host, self.port = address.reachable_host, address.port
        self.scrape_interval = scrape_interval
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.job = job
        self.prometheus_bin = prometheus_bin
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def config(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def log(self) -> Path:
        return self.workdir / "prometheus.log"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(render_config(self.targets, scrape_interval=self.scrape_interval,
                                             rule_files=self.rule_files, job=self.job))
        command = [self.prometheus_bin, f"--config.file={self.config}", f"--web.listen-address={self.listen}",
                   f"--storage.tsdb.path={self.workdir / 'data'}", "--storage.tsdb.retention.time=1h",
                   "--log.level=warn"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus was not ready on {self.listen} within {self.start_timeout:g} s: "
                           f"{self.log_tail()}")

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>: its `data`, or RuntimeError with Prometheus' own error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as answer:
                doc = json.load(answer)
        except urllib.error.HTTPError as err:
            doc = json.loads(err.read() or b"{}")
        if doc.get("status") != "success":
            raise RuntimeError(f"prometheus /api/v1/{path}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {labels}, "value": [ts, "value"]}, ...]."""
        data = self.api("query", query=expr)
        return list(data["result"]) if data.get("resultType") == "vector" else [data]

    def wait_for(self, expr: str, ready: Callable[[list[dict[str, Any]]], bool] = bool,
                 timeout: float = 30.0) -> list[dict[str, Any]]:
        """Query `expr` until `ready(result)`, at most `timeout` seconds; the last result in the error."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while True:
            result = self.query(expr)
            if ready(result):
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{expr!r} not ready within {timeout:g} s; last result {result}; "
                                   f"targets {self.api('targets').get('activeTargets')}")
            time.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> None:
        end_process(self.proc, timeout=timeout)
        self.proc = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def promtool(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers.prometheus")
    parser.add_argument("action", choices=["run"])
    parser.add_argument("workdir")
    parser.add_argument("listen")
    parser.add_argument("targets", nargs="+", metavar="TARGET", help="HOST:PORT to scrape /metrics from")
    parser.add_argument("--rules", action="append", default=[], metavar="FILE")
    parser.add_argument("--scrape-interval", default="15s")
    args = parser.parse_args(argv)
    server = PrometheusServer(args.targets, workdir=args.workdir, listen=args.listen, rule_files=args.rules,
                              scrape_interval=args.scrape_interval)
    with server:
        print(f"prometheus: {server.url} (config {server.config}); Ctrl-C stops it")
        try:
            while server.proc is not None and server.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["PrometheusServer", "promtool", "render_config"]
