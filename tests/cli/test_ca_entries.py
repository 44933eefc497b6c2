"""A private CA's own certificates in `inventory`, `check`, `report` and `metrics`: read from the stack's
`issuers` output (`pulumi stack output --json` has both), one entry per level, by the CA's own expiry — a CA
that expires takes every certificate under it down."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from providers.core import certificates as x509util
from providers.core import keys

from .helpers import entry, run_cli

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def ca_pem(common_name: str, days_left: int, lifetime_days: int = 3650) -> str:
    """A self-signed CA certificate of `lifetime_days`, issued long enough ago to have `days_left`."""
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(common_name=common_name, validity_days=lifetime_days, is_ca=True),
        subject_public_key=key.public_key(), signing_key=key, issuer=None,
        now=NOW - dt.timedelta(days=lifetime_days - days_left))
    return x509util.to_pem(cert)


def stack_outputs(tmp_path: Path, root_days: int = 10) -> tuple[Path, str]:
    """The whole `pulumi stack output --json` of a stack with one leaf and a two-level private CA."""
    root = ca_pem("Corp Root", root_days)
    intermediate = ca_pem("Corp Intermediate", 400)
    levels = [{"level": "root", "cert_pem": root, "fingerprint_sha256": "x", "not_after": "x", "issuer": "x"},
              {"level": "intermediate", "cert_pem": intermediate, "fingerprint_sha256": "x", "not_after": "x",
               "issuer": "x"}]
    doc = {"inventory": {"www": entry(not_after=NOW + dt.timedelta(days=300), lifetime_days=365)},
           "issuers": {"corp": {"type": "private_ca", "root_pem": root, "chain_pem": intermediate,
                                "levels": levels, "not_after": "x"}},
           "certificates": "[secret]"}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    return path, root


def test_check_flags_the_ca_that_expires_first(tmp_path):
    outputs, _ = stack_outputs(tmp_path)
    result = run_cli("check", "--inventory-file", str(outputs), now=NOW)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^WARNING +corp/root +expires in 10\.0 days .*under the 14-day threshold", result.stdout, re.M), \
        result.stdout
    doc = json.loads(run_cli("check", "--inventory-file", str(outputs), "--json", now=NOW).stdout)
    by_name = {c["name"]: c for c in doc["certificates"]}
    assert set(by_name) == {"www", "corp/root", "corp/intermediate"}
    assert by_name["corp/root"]["status"] == "warning" and by_name["corp/intermediate"]["status"] == "ok"


def test_inventory_lists_each_level_with_its_subject(tmp_path):
    outputs, root_pem = stack_outputs(tmp_path)
    doc = json.loads(run_cli("inventory", "--inventory-file", str(outputs), "--json", now=NOW).stdout)
    assert [c["name"] for c in doc["certificates"]] == ["corp/root", "www", "corp/intermediate"]  # most urgent first
    root = doc["certificates"][0]
    assert root["kind"] == "ca" and root["issuer"] == "corp" and root["domains"] == []
    assert root["fingerprint_sha256"] == x509util.fingerprint_of_pem(root_pem)
    assert root["chain_earliest_subject"] == "CN=Corp Root" and root["key_algorithm"] == "ECDSA-P-256"
    table = run_cli("inventory", "--inventory-file", str(outputs), now=NOW).stdout
    assert re.search(r"^corp/root +CA CN=Corp Root +corp ", table, re.M), table


def test_report_and_metrics_carry_the_ca(tmp_path):
    outputs, _ = stack_outputs(tmp_path)
    page = tmp_path / "report.html"
    done = run_cli("report", "--inventory-file", str(outputs), "--html", str(page), now=NOW)
    assert done.returncode == 0, done.stderr
    assert "corp/root" in page.read_text() and "corp/intermediate" in page.read_text()
    metrics = run_cli("metrics", "--inventory-file", str(outputs), now=NOW)
    assert metrics.returncode == 0, metrics.stderr
    expiries = re.findall(r'^x509_cert_not_after\{[^}]*certificate="([^"]+)"', metrics.stdout, re.M)
    assert sorted(expiries) == ["corp/intermediate", "corp/root", "www"], metrics.stdout


def test_an_inventory_without_issuers_reads_as_before(tmp_path):
    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"www": entry(not_after=NOW + dt.timedelta(days=300), lifetime_days=365)}))
    doc = json.loads(run_cli("inventory", "--inventory-file", str(path), "--json", now=NOW).stdout)
    assert [c["name"] for c in doc["certificates"]] == ["www"]
