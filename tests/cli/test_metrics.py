"""`certplane metrics`: the inventory as Prometheus/OpenMetrics text (stdout, a node_exporter textfile, or a
/metrics server), parsed back with prometheus_client's own parsers. No Pulumi engine: inventory JSON files."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from cli import CliError, metrics
from providers.core.deploy import Binding, get_target
from tests.support.pki import LocalCa
from tools.servers import free_port

from .helpers import BASE, CERTPLANE, ROOT, Pki, entry, rfc3339, run_cli, write_inventory

DAY = dt.timedelta(days=1)
INTERMEDIATE_DN = "CN=Test Intermediate CA,O=certplane tests"
X509_LABELS = {"stack", "certificate", "issuer", "serial", "owner", "env", "serial_number", "issuer_CN", "issuer_O"}
CERT_LABELS = {"stack", "certificate", "issuer", "serial", "owner", "env"}
PROBE_LABELS = {"stack", "certificate", "target", "endpoint", "server_name", "owner", "env"}


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str, *, openmetrics: bool = False) -> Samples:
    """metric name -> [(labels, value)] as prometheus_client's parser reads the exposition."""
    out: Samples = {}
    for family in (parse_openmetrics if openmetrics else text_string_to_metric_families)(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def one(samples: Samples, name: str, **match: str) -> tuple[dict[str, str], float]:
    found = [s for s in samples.get(name, []) if all(s[0].get(k) == v for k, v in match.items())]
    assert len(found) == 1, (name, match, samples.get(name))
    return found[0]


def metrics_cli(inv: Path, *args: str, now: dt.datetime | None = None, env: dict[str, str] | None = None,
                timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_cli("metrics", "--inventory-file", str(inv), *args, now=now, env=env, timeout=timeout)


def fleet(tmp_path: Path) -> Path:
    return write_inventory(tmp_path / "inv.json", {
        # its intermediate expires 30 days before the leaf
        "www": entry(not_after=BASE, serial="1a2b", issuer_dn=INTERMEDIATE_DN, owner="platform-team",
                     chain_not_after=rfc3339(BASE - 30 * DAY), chain_earliest_subject=INTERMEDIATE_DN,
                     targets=("nginx-local",)),
        # an older inventory entry: no chain expiry, no renewal time, a team instead of an owner
        "legacy": {**entry(not_after=BASE + 200 * DAY, lifetime_days=400, serial="ff", domains=("old.example.test",),
                           renewal_time=None), "tags": {"team": "legacy-team", "env": "staging"}},
    })


# --- the exposition ------------------------------------------------------------------------------------------

def test_every_certificate_has_the_x509_exporter_series_and_certplanes_own(tmp_path: Path) -> None:
    result = metrics_cli(fleet(tmp_path), "--stack", "prod", now=BASE - 40 * DAY)
    assert result.returncode == 0, result.stderr
    samples = parse(result.stdout)

    labels, value = one(samples, "x509_cert_not_after", certificate="www")
    assert set(labels) == X509_LABELS
    assert labels == {"stack": "prod", "certificate": "www", "issuer": "internal", "serial": "1a2b",
                      "owner": "platform-team", "env": "test", "serial_number": str(0x1a2b),
                      "issuer_CN": "Test Intermediate CA", "issuer_O": "certplane tests"}
    assert value == BASE.timestamp()
    assert one(samples, "x509_cert_not_before", certificate="www")[1] == (BASE - 180 * DAY).timestamp()
    assert one(samples, "x509_cert_expired", certificate="www")[1] == 0.0
    chain_labels, chain = one(samples, "certplane_chain_earliest_not_after", certificate="www")
    assert set(chain_labels) == CERT_LABELS and chain == (BASE - 30 * DAY).timestamp()  # the intermediate's
    assert one(samples, "certplane_renewal_time", certificate="www")[1] == (BASE - 3 * DAY).timestamp()
    assert one(samples, "certplane_renewal_overdue", certificate="www")[1] == 0.0

    legacy, _ = one(samples, "x509_cert_not_after", certificate="legacy")
    assert (legacy["owner"], legacy["env"], legacy["serial"], legacy["serial_number"]) == \
        ("legacy-team", "staging", "ff", "255")
    # no chain expiry in the inventory: the leaf's
    assert one(samples, "certplane_chain_earliest_not_after", certificate="legacy")[1] == (BASE + 200 * DAY).timestamp()
    assert "legacy" not in {s[0]["certificate"] for s in samples["certplane_renewal_time"]}  # it has none
    assert "legacy" not in {s[0]["certificate"] for s in samples["certplane_renewal_overdue"]}

    info, _ = one(samples, "certplane_certificate_info", certificate="www")
    assert info["domains"] == "www.example.test" and info["targets"] == "nginx-local"
    assert one(samples, "certplane_inventory_read_success")[1] == 1.0
    assert one(samples, "certplane_inventory_certificates", stack="prod")[1] == 2.0
    assert one(samples, "certplane_inventory_last_read_timestamp_seconds")[1] == (BASE - 40 * DAY).timestamp()
    assert "probe_success" not in samples  # no --probe: no probe series, not even their HELP
    assert "# HELP probe_success" not in result.stdout


def test_the_clock_and_the_grace_decide_expired_and_overdue(tmp_path: Path) -> None:
    inv = fleet(tmp_path)
    # 2 days past www's renewal time (BASE - 3 days): overdue with the default 1-day grace, not with 5
    late = parse(metrics_cli(inv, now=BASE - 1 * DAY).stdout)
    assert one(late, "certplane_renewal_overdue", certificate="www")[1] == 1.0
    assert one(late, "x509_cert_expired", certificate="www")[1] == 0.0
    graced = parse(metrics_cli(inv, "--grace-days", "5", now=BASE - 1 * DAY).stdout)
    assert one(graced, "certplane_renewal_overdue", certificate="www")[1] == 0.0

    after = parse(metrics_cli(inv, now=BASE + 1 * DAY).stdout)
    assert one(after, "x509_cert_expired", certificate="www")[1] == 1.0
    assert one(after, "x509_cert_expired", certificate="legacy")[1] == 0.0
    assert one(after, "x509_cert_not_after", certificate="www")[0]["stack"] == "file:inv.json"


def test_no_certificate_key_or_secret_reaches_the_metrics(tmp_path: Path, pki: Pki) -> None:
    leaf = pki.leaf("www.example.test")
    pem, key_pem = leaf.pem.decode(), leaf.key_pem.decode()
    doc = entry(not_after=BASE, cert=leaf, owner="platform-team",
                cert_pem=pem, key_pem=key_pem, fullchain_pem=pem + pki.intermediate.pem.decode(),
                bindings=[{"binding_id": "www--disk", "target": "disk", "type": "files",
                           "settings": {"directory": str(tmp_path), "password": "hunter2-settings"},
                           "live": {"key_file": str(tmp_path / "www.key"), "pem": pem}}])
    doc["tags"]["api_token"] = "hunter2-tag"
    inv = write_inventory(tmp_path / "inv.json", {"www": doc})
    out = metrics_cli(inv, now=BASE - 10 * DAY)
    assert out.returncode == 0, out.stderr
    for secret in ("-----BEGIN", "PRIVATE KEY", "hunter2", "key_file", ".key", pem.splitlines()[1],
                   key_pem.splitlines()[1]):
        assert secret not in out.stdout, secret
    assert one(parse(out.stdout), "x509_cert_not_after")[0]["serial"] == format(leaf.cert.serial_number, "x")


# --- the textfile ----------------------------------------------------------------------------------------------

def test_the_textfile_is_written_atomically_and_a_failed_read_leaves_it_alone(tmp_path: Path) -> None:
    inv = fleet(tmp_path)
    out_dir = tmp_path / "textfile"
    out_dir.mkdir()
    target = out_dir / "certplane.prom"
    first = metrics_cli(inv, "--textfile", str(target), now=BASE - 40 * DAY)
    assert first.returncode == 0 and first.stdout == "", first.stderr
    assert sorted(os.listdir(out_dir)) == ["certplane.prom"]  # no temp file left behind
    assert target.stat().st_mode & 0o777 == 0o644  # node_exporter (another user) reads it
    samples = parse(target.read_text())
    assert one(samples, "x509_cert_not_after", certificate="www")[1] == BASE.timestamp()
    inode = target.stat().st_ino

    # readers never see half a file while it is rewritten
    torn: list[str] = []
    stop = threading.Event()

    def read_all_the_time() -> None:
        while not stop.is_set():
            try:
                text = target.read_text()
            except FileNotFoundError:
                torn.append("<missing>")
                continue
            if not text.endswith("\n") or "x509_cert_not_after" not in text or 'certificate="www"' not in text:
                torn.append(text)

    reader = threading.Thread(target=read_all_the_time, daemon=True)
    reader.start()
    try:
        for _ in range(3):
            assert metrics_cli(inv, "--textfile", str(target), now=BASE - 40 * DAY).returncode == 0
    finally:
        stop.set()
        reader.join(timeout=10)
    assert torn == []
    assert target.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    assert sorted(os.listdir(out_dir)) == ["certplane.prom"]

    before = target.read_bytes()
    (tmp_path / "broken.json").write_text("{not json")
    broken = metrics_cli(tmp_path / "broken.json", "--textfile", str(target))
    assert broken.returncode == 3
    assert "certplane: error: --inventory-file" in broken.stderr and "not JSON" in broken.stderr
    assert target.read_bytes() == before  # node_exporter keeps the last good metrics (and its mtime ages)

    missing = metrics_cli(inv, "--textfile", str(tmp_path / "nowhere" / "certplane.prom"))
    assert missing.returncode == 3 and "does not exist" in missing.stderr
    note = metrics_cli(inv, "--textfile", str(out_dir / "certplane.txt"))
    assert note.returncode == 0 and "only reads *.prom files" in note.stderr


def test_write_textfile_renames_a_complete_temp_file_or_leaves_the_old_one(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "certplane.prom"
    target.write_bytes(b"old 1\n")
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        renames.append((Path(src).name, Path(dst).name))
        assert Path(src).read_bytes() == b"new 1\n"  # complete before the rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    metrics.write_textfile(target, b"new 1\n")
    assert target.read_bytes() == b"new 1\n"
    (tmp_name, final), = renames
    assert final == "certplane.prom" and tmp_name.startswith(".certplane.prom.") and not tmp_name.endswith(".prom")

    def fail(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(CliError, match="No space left on device"):
        metrics.write_textfile(target, b"newer 1\n")
    assert target.read_bytes() == b"new 1\n" and sorted(os.listdir(tmp_path)) == ["certplane.prom"]


# --- probes --------------------------------------------------------------------------------------------------

def endpoint(port: int, name: str = "www.example.test", target: str = "nginx-local") -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "server_name": name, "target": target}


def test_probe_series_mirror_blackbox_and_bindings_say_what_is_served(tmp_path: Path, pki: Pki,
                                                                      tls_server: Any) -> None:
    www = pki.leaf("www.example.test")
    api = pki.leaf("api.example.test")
    stranger = pki.leaf("api.example.test")  # what the api endpoint serves instead
    served = tls_server(www, (pki.intermediate,))
    wrong = tls_server(stranger, (pki.intermediate,))
    dead = free_port()
    inv = write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=BASE, cert=www, endpoints=[endpoint(served.port)]),
        "api": entry(not_after=BASE, cert=api, domains=("api.example.test",),
                     endpoints=[endpoint(wrong.port, "api.example.test"), endpoint(dead, "api.example.test", "edge")]),
    })
    result = metrics_cli(inv, "--probe", "--probe-timeout", "2", now=BASE - 10 * DAY)
    assert result.returncode == 0, result.stderr
    samples = parse(result.stdout)

    labels, ok = one(samples, "probe_success", certificate="www")
    assert set(labels) == PROBE_LABELS and ok == 1.0
    assert labels == {"stack": "file:inv.json", "certificate": "www", "target": "nginx-local",
                      "endpoint": f"127.0.0.1:{served.port}", "server_name": "www.example.test",
                      "owner": "platform-team", "env": "test"}
    earliest = min(www.cert.not_valid_after_utc, pki.intermediate.cert.not_valid_after_utc).timestamp()
    assert one(samples, "probe_ssl_earliest_cert_expiry", certificate="www")[1] == earliest
    assert one(samples, "probe_duration_seconds", certificate="www")[1] > 0
    serves_labels, serves = one(samples, "certplane_binding_serves_managed", certificate="www")
    assert serves == 1.0 and serves_labels["type"] == "tls" and serves_labels["target"] == "nginx-local"
    assert served.server_names == ["www.example.test"]  # SNI sent

    assert one(samples, "probe_success", endpoint=f"127.0.0.1:{wrong.port}")[1] == 1.0
    assert one(samples, "certplane_binding_serves_managed", endpoint=f"127.0.0.1:{wrong.port}")[1] == 0.0
    assert one(samples, "probe_success", endpoint=f"127.0.0.1:{dead}")[1] == 0.0
    assert one(samples, "probe_success", endpoint=f"127.0.0.1:{dead}")[0]["target"] == "edge"
    # nothing was served: no expiry, and no verdict on what it serves (probe_success says it)
    assert f"127.0.0.1:{dead}" not in {s[0]["endpoint"] for s in samples["probe_ssl_earliest_cert_expiry"]}
    assert f"127.0.0.1:{dead}" not in {s[0]["endpoint"] for s in samples["certplane_binding_serves_managed"]}

    extra = parse(metrics_cli(inv, "--endpoint", f"www=127.0.0.1:{wrong.port}/www.example.test",
                              now=BASE - 10 * DAY).stdout)
    # probed as well as the inventory's endpoints, as by check
    assert one(extra, "certplane_binding_serves_managed", certificate="www", target="--endpoint")[1] == 0.0
    assert one(extra, "certplane_binding_serves_managed", certificate="www", target="nginx-local")[1] == 1.0
    bad = metrics_cli(inv, "--endpoint", "nope=127.0.0.1:1")
    assert bad.returncode == 3 and "no certificate 'nope'" in bad.stderr


def test_targets_that_do_not_terminate_tls_are_asked_what_they_hold(tmp_path: Path, ca: LocalCa) -> None:
    settings = {"directory": str(tmp_path / "certs"), "formats": ["pem"]}
    bundle = ca.bundle(["www.example.test"])
    live = get_target("files", settings).deploy(Binding("www--disk"), bundle)
    doc = entry(not_after=BASE, targets=("disk",), bindings=[{
        "binding_id": "www--disk", "target": "disk", "type": "files", "settings": settings,
        "server_names": ["www.example.test"], "sni": False, "live": live}])
    doc["fingerprint_sha256"] = bundle.fingerprint_sha256
    inv = write_inventory(tmp_path / "inv.json", {"www": doc})

    held = parse(metrics_cli(inv, "--probe", now=BASE - 10 * DAY).stdout)
    labels, value = one(held, "certplane_binding_serves_managed", certificate="www")
    assert value == 1.0
    assert labels == {"stack": "file:inv.json", "certificate": "www", "target": "disk", "type": "files",
                      "endpoint": "disk (files)", "server_name": "", "owner": "platform-team", "env": "test"}
    assert one(held, "certplane_target_read_success", target="disk")[1] == 1.0
    assert "probe_success" not in held  # no TLS endpoint in this inventory

    Path(live["fullchain_file"]).write_text(ca.bundle(["www.example.test"]).fullchain_pem)
    other = parse(metrics_cli(inv, "--probe", now=BASE - 10 * DAY).stdout)
    assert one(other, "certplane_binding_serves_managed", certificate="www")[1] == 0.0


# --- serving /metrics ------------------------------------------------------------------------------------------

class MetricsListener:
    """`./certplane metrics --listen 127.0.0.1:<free port>` in a child process; every wait bounded."""

    def __init__(self, inv: Path, *args: str, now: dt.datetime | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("CERTPLANE_NOW", "NO_COLOR")}
        if now is not None:
            env["CERTPLANE_NOW"] = rfc3339(now)
        self.log = log or inv.with_name(f"metrics-{self.port}.log")
        with open(self.log, "wb") as sink:
            self.proc = subprocess.Popen(
                [str(CERTPLANE), "metrics", "--listen", f"127.0.0.1:{self.port}", "--inventory-file", str(inv),
                 *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"certplane metrics exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                self.get("/")
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"certplane metrics did not answer within {timeout:g} s: {self.log.read_text()}")

    def get(self, path: str, accept: str | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(self.url + path, headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers.get("Content-Type", ""), answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()

    def scrape(self) -> Samples:
        status, _, body = self.get("/metrics")
        assert status == 200, body
        return parse(body)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Any]:
    started: list[MetricsListener] = []

    def start(inv: Path, *args: str, now: dt.datetime | None = None) -> MetricsListener:
        server = MetricsListener(inv, *args, now=now)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_until(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.2)


def test_listen_serves_metrics_and_reads_the_inventory_again_after_the_cache(tmp_path: Path, listener: Any) -> None:
    inv = fleet(tmp_path)
    server = listener(inv, "--stack", "prod", "--cache-seconds", "0.5", now=BASE - 40 * DAY)
    samples = server.scrape()
    assert one(samples, "x509_cert_not_after", certificate="www")[0]["stack"] == "prod"
    assert one(samples, "certplane_inventory_read_success", stack="prod")[1] == 1.0

    status, kind, body = server.get("/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert status == 200 and kind.startswith("application/openmetrics-text"), kind
    assert body.endswith("# EOF\n")
    om = parse(body, openmetrics=True)
    assert one(om, "x509_cert_not_after", certificate="www")[1] == BASE.timestamp()
    assert one(om, "certplane_certificate_info", certificate="www")[1] == 1.0
    assert server.get("/")[0] == 200 and server.get("/nope")[0] == 404

    # a new certificate appears once the cache is older than --cache-seconds
    doc = json.loads(inv.read_text())
    doc["api"] = entry(not_after=BASE + 10 * DAY, domains=("api.example.test",), serial="0c")
    inv.write_text(json.dumps(doc))
    assert wait_until(lambda: "api" in {s[0]["certificate"] for s in server.scrape()["x509_cert_not_after"]})

    # a broken inventory: the last good series stay, flagged by read_success 0; then it reads again
    inv.write_text("{broken")
    broken = wait_until(lambda: (s := server.scrape()) and one(s, "certplane_inventory_read_success")[1] == 0.0 and s)
    assert broken, server.log.read_text()
    assert {s[0]["certificate"] for s in broken["x509_cert_not_after"]} == {"www", "legacy", "api"}
    inv.write_text(json.dumps(doc))
    assert wait_until(lambda: one(server.scrape(), "certplane_inventory_read_success")[1] == 1.0)
    assert server.stop() == 0  # SIGTERM: a clean stop
    log = server.log.read_text()
    assert f"serving http://127.0.0.1:{server.port}/metrics (stack prod, 2 certificates)" in log
    assert log.count("cannot read the inventory") == 1, log  # said once, not at every scrape
    assert "reads again" in log


def test_listen_caches_between_scrapes(tmp_path: Path, listener: Any) -> None:
    inv = fleet(tmp_path)
    server = listener(inv, "--cache-seconds", "600", now=BASE - 40 * DAY)
    first = one(server.scrape(), "certplane_inventory_read_duration_seconds")[1]
    inv.write_text("{broken")
    for _ in range(3):  # served from the cache: the broken file is not read for 10 minutes
        again = server.scrape()
        assert one(again, "certplane_inventory_read_success")[1] == 1.0
        assert one(again, "certplane_inventory_read_duration_seconds")[1] == first


def test_snapshot_cache_refreshes_once_at_a_time_and_keeps_the_last_good_reading() -> None:
    now = [0.0]
    calls = [0]
    release = threading.Event()
    results: list[Any] = []

    def take() -> metrics.Snapshot:
        calls[0] += 1
        if calls[0] == 2:
            release.wait(10)  # a slow refresh: other scrapes are served the previous reading meanwhile
        if calls[0] == 3:
            raise CliError("stack 'prod' does not exist")
        return metrics.Snapshot(stack="prod", now=BASE, certificates=(), seconds=float(calls[0]))

    logged: list[str] = []
    cache = metrics.SnapshotCache(take, ttl=30, stack_hint="prod", log=logged.append, monotonic=lambda: now[0])
    assert cache.get().snapshot.seconds == 1.0  # type: ignore[union-attr]
    now[0] = 10
    assert cache.get().snapshot.seconds == 1.0 and calls[0] == 1  # type: ignore[union-attr]
    now[0] = 40
    slow = threading.Thread(target=lambda: results.append(cache.get()))
    slow.start()
    assert wait_until(lambda: calls[0] == 2, timeout=5)
    assert cache.get().snapshot.seconds == 1.0  # type: ignore[union-attr]  # the refresh still runs
    release.set()
    slow.join(10)
    assert results[0].snapshot.seconds == 2.0 and calls[0] == 2
    now[0] = 80
    failed = cache.get()
    assert failed.snapshot is not None and failed.snapshot.seconds == 2.0  # the last good one
    assert (failed.ok, failed.error) == (False, "stack 'prod' does not exist")
    text = metrics.render_text(failed).decode()
    assert 'certplane_inventory_read_success{stack="prod"} 0.0' in text
    assert logged == ["certplane metrics: cannot read the inventory: stack 'prod' does not exist"]


def test_usage_errors_exit_3(tmp_path: Path) -> None:
    inv = fleet(tmp_path)
    both = metrics_cli(inv, "--textfile", str(tmp_path / "x.prom"), "--listen", "127.0.0.1:9")
    assert both.returncode == 3 and "not allowed with argument" in both.stderr
    assert metrics_cli(inv, "--listen", "nowhere").returncode == 3
    assert "expected HOST:PORT" in metrics_cli(inv, "--listen", "nowhere").stderr
    assert metrics_cli(inv, "--cache-seconds", "-1").returncode == 3
    assert metrics_cli(inv, "--grace-days", "-1").returncode == 3
    assert metrics_cli(tmp_path / "missing.json").returncode == 3
    helped = run_cli("metrics", "--help")
    assert helped.returncode == 0 and "--textfile" in helped.stdout and "x509_cert_not_after" in helped.stdout


# --- the dashboard ---------------------------------------------------------------------------------------------

EMITTED = {"x509_cert_not_before", "x509_cert_not_after", "x509_cert_expired", "certplane_chain_earliest_not_after",
           "certplane_renewal_time", "certplane_renewal_overdue", "certplane_certificate_info",
           "certplane_binding_serves_managed", "certplane_target_read_success", "certplane_inventory_read_success",
           "certplane_inventory_certificates", "certplane_inventory_last_read_timestamp_seconds",
           "certplane_inventory_read_duration_seconds", "probe_success", "probe_duration_seconds",
           "probe_ssl_earliest_cert_expiry"}


def dashboard() -> dict[str, Any]:
    return json.loads((ROOT / "monitoring" / "grafana-certplane.json").read_text())


def test_the_grafana_dashboard_is_an_importable_dashboard_over_our_series() -> None:
    import re

    dash = dashboard()
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    assert dash["__inputs"][0]["type"] == "datasource" and dash["__inputs"][0]["pluginId"] == "prometheus"
    assert dash["id"] is None and dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles)
    assert {"Days left per certificate", "Renewal overdue", "Probe success"} <= set(titles)
    required = {r["id"] for r in dash["__requires"] if r["type"] == "panel"}
    for panel in panels:
        assert panel["type"] in required, panel["type"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}" and target["refId"]
            names = set(re.findall(r"\b((?:x509|certplane|probe)_[a-z_]+)\b", target["expr"]))
            assert names and names <= EMITTED, target["expr"]
    for variable in dash["templating"]["list"]:
        assert variable["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert set(re.findall(r"\b((?:certplane)_[a-z_]+)\b", variable["query"])) <= EMITTED


def test_the_monitoring_readme_names_every_metric_and_alert() -> None:
    readme = (ROOT / "monitoring" / "README.md").read_text()
    for name in EMITTED:
        assert f"`{name}`" in readme, name
    import yaml

    rules = yaml.safe_load((ROOT / "monitoring" / "certplane.rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        assert rule["alert"] in readme, rule["alert"]
