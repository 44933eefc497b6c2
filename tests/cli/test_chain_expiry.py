"""Chain expiry: `inventory`, `check` and `report` go by the earliest `not_after` in the served chain (the
inventory's `chain_not_after`, `chain_earliest_subject`), not only the leaf's; older inventories without those
fields read as before."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from .helpers import BASE, entry, rfc3339, run_cli, write_inventory

DAY = dt.timedelta(days=1)
INTERMEDIATE = "CN=Test Intermediate CA,O=certplane tests"


def chained(tmp_path: Path, chain_days_before_leaf: float = 30) -> Path:
    return write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=BASE, chain_not_after=rfc3339(BASE - chain_days_before_leaf * DAY),
                     chain_earliest_subject=INTERMEDIATE),
        "api": entry(not_after=BASE + 100 * DAY, lifetime_days=400, domains=("api.example.test",), serial="02"),
    })


def test_check_names_the_intermediate_that_expires_before_the_leaf(tmp_path):
    inv = chained(tmp_path)
    # the leaf has 40 days left (fine); its intermediate 10 (under the 14-day threshold)
    result = run_cli("check", "--inventory-file", str(inv), now=BASE - 40 * DAY)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert ("WARNING  www  expires in 10.0 days (2029-12-02 00:00 UTC), under the 14-day threshold: "
            f"{INTERMEDIATE} in the served chain expires before the leaf (2030-01-01 00:00 UTC)") in lines
    assert (f"WARNING  www  chain expires first: {INTERMEDIATE} in the served chain is not valid after "
            "2029-12-02 00:00 UTC, 30.0 days before the leaf (2030-01-01 00:00 UTC)") in lines

    doc = json.loads(run_cli("check", "--inventory-file", str(inv), "--json", now=BASE - 40 * DAY).stdout)
    www = next(c for c in doc["certificates"] if c["name"] == "www")
    assert www["not_after"] == "2030-01-01T00:00:00Z"  # the leaf's, as before
    assert www["chain_not_after"] == "2029-12-02T00:00:00Z" and www["chain_earliest_subject"] == INTERMEDIATE
    assert www["days_remaining"] == 10.0 and www["status"] == "warning"
    codes = [f["code"] for f in www["findings"]]
    assert codes == ["expiring", "chain-expires-first"]
    assert www["findings"][0]["threshold_days"] == 14
    assert INTERMEDIATE in www["findings"][1]["message"]
    assert doc["certificates"][0]["name"] == "www"  # most urgent first, by the chain


def test_an_expired_intermediate_is_critical_although_the_leaf_is_valid(tmp_path):
    inv = chained(tmp_path)
    result = run_cli("check", "--inventory-file", str(inv), now=BASE - 29 * DAY)
    assert result.returncode == 2, result.stdout
    assert (f"CRITICAL www  EXPIRED 1.0 days ago (not after 2029-12-02 00:00 UTC): {INTERMEDIATE} in the served "
            "chain; the leaf is valid until 2030-01-01 00:00 UTC") in result.stdout.splitlines()


def test_an_intermediate_outliving_the_leaf_changes_nothing(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=BASE, chain_not_after=rfc3339(BASE + 900 * DAY), chain_earliest_subject=INTERMEDIATE)})
    result = run_cli("check", "--inventory-file", str(inv), "--json", now=BASE - 40 * DAY)
    assert result.returncode == 0
    www, = json.loads(result.stdout)["certificates"]
    assert www["days_remaining"] == 40.0 and www["findings"] == []


def test_inventory_shows_the_earliest_expiry(tmp_path):
    inv = chained(tmp_path)
    table = run_cli("inventory", "--inventory-file", str(inv), now=BASE - 40 * DAY)
    assert table.returncode == 0, table.stderr
    www = next(line for line in table.stdout.splitlines() if line.startswith("www"))
    assert "2029-12-02 (chain)" in www and "10.0" in www and "2030-01-01" not in www
    doc = json.loads(run_cli("inventory", "--inventory-file", str(inv), "--json", now=BASE - 40 * DAY).stdout)
    first, second = doc["certificates"]
    assert first["name"] == "www" and first["days_remaining"] == 10.0
    assert (first["not_after"], first["chain_not_after"], first["chain_earliest_subject"]) == (
        "2030-01-01T00:00:00Z", "2029-12-02T00:00:00Z", INTERMEDIATE)
    # an entry without chain fields (older inventories): the leaf's expiry, no subject
    assert (second["chain_not_after"], second["chain_earliest_subject"]) == (second["not_after"], None)
    rows = list(csv.DictReader(io.StringIO(
        run_cli("inventory", "--inventory-file", str(inv), "--csv", now=BASE - 40 * DAY).stdout)))
    assert rows[0]["chain_not_after"] == "2029-12-02T00:00:00Z" and rows[0]["chain_earliest_subject"] == INTERMEDIATE


def test_report_uses_the_earliest_expiry(tmp_path):
    inv = chained(tmp_path)
    out = tmp_path / "report.html"
    assert run_cli("report", "--inventory-file", str(inv), "--html", str(out), now=BASE - 40 * DAY).returncode == 0
    page = out.read_text()
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "10 d · Dec 2, 2029" in svg and "Jan 1, 2030" not in svg
    assert "Test Intermediate CA" in svg  # the tooltip names it
    table = page[page.index(">Certificates<"):page.index(">By target<")]
    assert "2029-12-02" in table and "Test Intermediate CA" in table
    assert "chain expires first" in page


def test_webhook_alert_carries_the_chain_fields(tmp_path):
    from cli import notify
    from cli.expiry import expiry_findings
    from cli.model import parse_inventory

    now = BASE - 40 * DAY
    certs = parse_inventory(json.loads(chained(tmp_path).read_text()))
    findings = {c.name: expiry_findings(c, now) for c in certs}
    alert, = notify.current_alerts(certs, findings, now, (30, 14, 7, 1))
    doc = alert.as_dict()
    assert (doc["certificate"], doc["threshold_days"], doc["days_remaining"]) == ("www", 14, 10.0)
    assert doc["not_after"] == "2030-01-01T00:00:00Z" and doc["chain_not_after"] == "2029-12-02T00:00:00Z"
    assert doc["chain_earliest_subject"] == INTERMEDIATE
