"""`certplane metrics` with a real Prometheus (Debian's package): it scrapes `certplane metrics --listen`, stores
the series with our labels, runs every dashboard query and evaluates the alert rules; promtool checks and
unit-tests the rules."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.servers.prometheus import PROMETHEUS_BIN, PROMTOOL_BIN, PrometheusServer, promtool

from .helpers import ROOT, Pki, entry, write_inventory
from .test_metrics import MetricsListener, dashboard

pytestmark = pytest.mark.integration

RULES = ROOT / "monitoring" / "certplane.rules.yml"
RULE_TESTS = ROOT / "monitoring" / "certplane.rules.test.yml"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)  # Prometheus' time() is the wall clock
DAY = dt.timedelta(days=1)
INSTALL = "install the Debian package `prometheus` (tools/bootstrap.sh does)"


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    assert shutil.which("promtool") or Path(PROMTOOL_BIN).exists(), INSTALL
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.fixture
def stack(tmp_path: Path, pki: Pki, tls_server: Any) -> Iterator[tuple[Path, Any]]:
    www = pki.leaf("www.example.test")
    served = tls_server(www, (pki.intermediate,))
    inv = write_inventory(tmp_path / "inv.json", {
        # 5 days left: CertplaneCertificateExpiringSoon
        "www": entry(not_after=NOW + 5 * DAY, lifetime_days=90, cert=www, owner="web-team",
                     endpoints=[{"host": "127.0.0.1", "port": served.port, "server_name": "www.example.test",
                                 "target": "nginx-local"}]),
        # 3 days past its renewal time: CertplaneRenewalOverdue
        "api": entry(not_after=NOW + 27 * DAY, lifetime_days=90, renewal_before_days=30, serial="0a1b",
                     domains=("api.example.test",), owner="api-team"),
        "docs": entry(not_after=NOW + 80 * DAY, lifetime_days=90, serial="0c", domains=("docs.example.test",)),
    })
    yield inv, served


def test_prometheus_scrapes_the_metrics_with_our_labels_and_evaluates_the_rules(tmp_path: Path,
                                                                               stack: tuple[Path, Any]) -> None:
    assert Path(PROMETHEUS_BIN).exists(), INSTALL
    inv, served = stack
    exporter = MetricsListener(inv, "--stack", "prod", "--probe", "--probe-timeout", "2", "--cache-seconds", "1")
    try:
        with PrometheusServer([f"127.0.0.1:{exporter.port}"], workdir=tmp_path / "prometheus",
                              scrape_interval="1s", rule_files=[RULES]) as prometheus:
            check_series(prometheus, exporter, served)
            check_dashboard_queries(prometheus)
            check_rules(prometheus)
    finally:
        assert exporter.stop() == 0


def check_series(prometheus: PrometheusServer, exporter: MetricsListener, served: Any) -> None:
    result = prometheus.wait_for("x509_cert_not_after", lambda r: len(r) == 3, timeout=60)
    by_name = {r["metric"]["certificate"]: r for r in result}
    www = by_name["www"]["metric"]
    assert www == {"__name__": "x509_cert_not_after", "job": "certplane", "instance": f"127.0.0.1:{exporter.port}",
                   "stack": "prod", "certificate": "www", "issuer": "internal", "serial": www["serial"],
                   "serial_number": str(int(www["serial"], 16)), "owner": "web-team", "env": "test",
                   "issuer_CN": "Test Intermediate CA"}  # issuer_O is empty: Prometheus drops empty labels
    assert float(by_name["www"]["value"][1]) == (NOW + 5 * DAY).timestamp()
    assert by_name["api"]["metric"]["serial"] == "0a1b" and by_name["api"]["metric"]["owner"] == "api-team"

    assert [r["value"][1] for r in prometheus.query('up{job="certplane"}')] == ["1"]
    overdue = {r["metric"]["certificate"]: r["value"][1] for r in prometheus.query("certplane_renewal_overdue")}
    assert overdue == {"www": "0", "api": "1", "docs": "0"}
    probe, = prometheus.wait_for('probe_success{certificate="www"}', timeout=30)
    assert probe["value"][1] == "1"
    assert probe["metric"]["endpoint"] == f"127.0.0.1:{served.port}"
    assert probe["metric"]["server_name"] == "www.example.test" and probe["metric"]["target"] == "nginx-local"
    serves, = prometheus.query('certplane_binding_serves_managed{certificate="www"}')
    assert serves["value"][1] == "1" and serves["metric"]["type"] == "tls"
    stacks = prometheus.api("label/stack/values", **{"match[]": "certplane_inventory_read_success"})
    assert stacks == ["prod"]


def grafana_expr(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable at All (allValue `.*`)."""
    return re.sub(r"\$(stack|owner|env)\b", ".*", expr)


def check_dashboard_queries(prometheus: PrometheusServer) -> None:
    answered = {}
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            answered[(panel["title"], target["refId"])] = prometheus.query(grafana_expr(target["expr"]))  # valid PromQL
    days = answered[("Days left per certificate", "A")]
    assert [r["metric"]["certificate"] for r in days] == ["www", "api", "docs"]  # fewest days first
    assert 4.9 < float(days[0]["value"][1]) <= 5.0
    assert answered[("Renewals overdue", "A")][0]["value"][1] == "1"
    assert answered[("Expiring within 14 days", "A")][0]["value"][1] == "1"
    assert answered[("Endpoints failing", "A")][0]["value"][1] == "0"
    assert answered[("Certificates", "A")][0]["value"][1] == "3"
    table = answered[("Days left and renewal per certificate", "C")]
    assert {r["metric"]["certificate"]: r["value"][1] for r in table} == {"www": "0", "api": "1", "docs": "0"}
    assert len(answered[("Probe success", "A")]) == 1
    assert answered[("Bindings serving another certificate", "A")] == []


def check_rules(prometheus: PrometheusServer) -> None:
    def pending(result: list[dict[str, Any]]) -> bool:
        names = {(r["metric"]["alertname"], r["metric"].get("certificate")) for r in result}
        return {("CertplaneCertificateExpiringSoon", "www"), ("CertplaneRenewalOverdue", "api")} <= names

    alerts = prometheus.wait_for('ALERTS{alertstate="pending"}', pending, timeout=30)
    names = {(r["metric"]["alertname"], r["metric"].get("certificate")) for r in alerts}
    assert names == {("CertplaneCertificateExpiringSoon", "www"), ("CertplaneRenewalOverdue", "api")}
    soon = next(r["metric"] for r in alerts if r["metric"]["alertname"] == "CertplaneCertificateExpiringSoon")
    assert (soon["severity"], soon["owner"], soon["stack"]) == ("warning", "web-team", "prod")
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 8 and {rule["health"] for rule in rules} == {"ok"}, rules
