"""Certificate core on the real engine: 20 certificates from a private CA, renewal by time travel, secrets."""

from __future__ import annotations

import json
import re

import pytest
from pulumi import automation as auto

from providers.core.clock import minute, parse_rfc3339, real_now

from .harness import EngineProject, changed_steps, from_now
from tests.support.pem_markers import PKCS8_HEADER

pytestmark = pytest.mark.integration

SHORT = [f"short{i:02d}" for i in range(10)]   # 30-day certificates: renew at day 20
LONG = [f"long{i:02d}" for i in range(10)]     # 90-day certificates: renew at day 60


def fleet_config():
    certs = {}
    for name in SHORT:
        certs[name] = {"domains": [f"{name}.example.test"], "issuer": "internal", "validity_days": 30,
                       "tags": {"owner": "team-a"}}
    for name in LONG:
        certs[name] = {"domains": [f"{name}.example.test"], "issuer": "internal", "validity_days": 90,
                       "key": {"algorithm": "rsa", "size": 2048}, "formats": ["pem", "pkcs12", "jks"]}
    return {
        "issuers": {"internal": {"type": "private_ca", "common_name": "Fleet Root", "intermediate": True,
                                 "validity_days": 3650}},
        "certificates": certs,
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    project = EngineProject(tmp_path_factory.mktemp("fleet"), fleet_config())
    up = project.up()
    assert up.summary.result == "succeeded"
    yield project, up
    project.destroy()


def test_time_travel_renews_exactly_the_due_certificates(fleet):
    project, _up = fleet
    before = project.outputs()["inventory"]
    assert changed_steps(project.preview()) == {}

    day25 = {"CERTPLANE_NOW": from_now(25)}
    preview = project.preview(env=day25)
    assert changed_steps(preview) == {"update": len(SHORT)}
    for name in SHORT:
        since, expires = (minute(parse_rfc3339(before[name][k])) for k in ("renewal_time", "not_after"))
        # the jittered time (the renewal_time output), and by how much the jitter moved it earlier
        assert re.search(rf"certplane: {name}: renewal due since {re.escape(since)} \(at two thirds of the lifetime, "
                         rf"[0-9.]+ (days|hours) earlier by jitter\); expires {re.escape(expires)}, 5\.0 days left",
                         preview.stdout), name
    for name in LONG:
        assert f"certplane: {name}:" not in preview.stdout

    up = project.up(env=day25)
    assert up.summary.resource_changes.get("update") == len(SHORT)
    after = project.outputs()["inventory"]
    for name in SHORT:  # renewed early, and signed at the real time: valid now, 30 days from now
        assert after[name]["serial"] != before[name]["serial"]
        assert parse_rfc3339(after[name]["not_before"]) <= real_now()
        assert after[name]["not_after"] >= before[name]["not_after"]
    for name in LONG:
        assert after[name]["serial"] == before[name]["serial"]
    assert changed_steps(project.preview()) == {}


def test_inventory_is_plain_data_and_downloads_are_secret(fleet):
    project, _up = fleet
    outputs = project.stack.outputs()
    assert outputs["inventory"].secret is False
    entry = outputs["inventory"].value["long00"]
    assert set(entry) >= {"domains", "issuer", "serial", "not_before", "not_after", "days_remaining",
                          "renewal_time", "fingerprint_sha256", "key_algorithm", "targets", "tags"}
    assert entry["key_algorithm"] == "RSA-2048" and entry["issuer"] == "internal"
    assert "PRIVATE KEY" not in json.dumps(outputs["inventory"].value)
    assert PKCS8_HEADER in outputs["certificates"].value["long00"]["private_key_pem"]
    masked = json.loads(project.cli("stack", "output", "certificates", "--json"))
    assert masked["long00"]["private_key_pem"] == "[secret]"
    assert masked["long00"]["pkcs12_base64"] == "[secret]"
    assert masked["long00"]["keystore_password"] == "[secret]"
    assert masked["long00"]["cert_pem"].startswith("-----BEGIN CERTIFICATE-----")


def test_no_key_material_or_password_in_plaintext_state_or_logs(fleet):
    project, up = fleet
    values = project.outputs()["certificates"]
    secrets = [values[n]["private_key_pem"] for n in values] + [values[n]["keystore_password"] for n in LONG]
    secrets += [values[n]["pkcs12_base64"][:60] for n in LONG]
    for text, where in ((project.state_text(), "state file"), (project.export_text(), "stack export"),
                        (up.stdout + up.stderr, "up output")):
        assert "PRIVATE KEY-----" not in text, where
        for secret in secrets:
            body = secret.replace(PKCS8_HEADER, "").strip()[:40]
            assert body not in text, where
    state = json.loads(project.export_text())["deployment"]
    cert = next(r for r in state["resources"] if r["urn"].endswith("::long00") and "dynamic" in r["type"])
    assert cert["outputs"]["private_key_pem"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    assert "ciphertext" in cert["outputs"]["private_key_pem"]


def test_bad_config_fails_preview_with_one_line_and_creates_nothing(tmp_path):
    config = fleet_config()
    config["certificates"]["short00"]["key"] = {"algorithm": "rsa", "size": 1024}
    project = EngineProject(tmp_path, config)
    with pytest.raises(auto.errors.CommandError) as err:
        project.up()
    text = str(err.value)
    assert "error: certplane:certificates.short00.key.size: RSA keys must be 2048, 3072 or 4096 bits" in text
    assert "Traceback" not in text
    state = json.loads(project.export_text())["deployment"]
    assert [r for r in state.get("resources") or [] if "dynamic" in r["type"]] == []


def test_ca_renewal_is_followed_by_the_certificates_it_signed(tmp_path):
    config = {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Short CA Root", "intermediate": True,
                           "validity_days": 3650, "intermediate_validity_days": 60}},
        "certificates": {"web": {"domains": ["web.example.test"], "issuer": "ca", "validity_days": 90,
                                 "renew": {"before_days": 1}}},
    }
    project = EngineProject(tmp_path, config)
    try:
        project.up()
        before = project.outputs()["inventory"]["web"]
        days = (parse_rfc3339(before["not_after"]) - parse_rfc3339(before["not_before"])).total_seconds() / 86400
        assert 59.9 < days < 60.1  # capped by the intermediate (60 days), not its own 90
        day41 = {"CERTPLANE_NOW": from_now(41)}
        preview = project.preview(env=day41)
        assert changed_steps(preview) == {"update": 2}
        assert "certplane: ca-intermediate: renewal due since" in preview.stdout
        assert "certplane: web: the issuer changes (known after apply); re-issuing" in preview.stdout
        project.up(env=day41)
        after = project.outputs()["inventory"]["web"]
        assert after["serial"] != before["serial"] and after["not_after"] > before["not_after"]
        assert changed_steps(project.preview()) == {}
    finally:
        project.destroy()


def test_config_that_is_not_a_mapping_is_one_line(tmp_path):
    project = EngineProject(tmp_path, {})
    project.stack.set_config("certplane:issuers", auto.ConfigValue("not a mapping {"))
    with pytest.raises(auto.errors.CommandError) as err:
        project.preview()
    text = str(err.value)
    assert "error: certplane:issuers: must be a mapping of names to settings" in text
    assert "Traceback" not in text and "unhandled error" not in text
