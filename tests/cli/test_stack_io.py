"""The CLI reads a real stack's outputs through the Automation API (real engine, temp project and backend)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.integration.harness import EngineProject

from .helpers import run_cli

pytestmark = pytest.mark.integration

CONFIG = {
    "issuers": {"ca": {"type": "private_ca", "common_name": "CLI Test Root", "validity_days": 365}},
    "certificates": {
        "web": {"domains": ["web.example.test", "example.test"], "issuer": "ca", "validity_days": 60,
                "tags": {"owner": "web-team"}},
        "api": {"domains": ["api.example.test"], "issuer": "ca", "validity_days": 20, "tags": {"owner": "api-team"}},
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProject]:
    engine = EngineProject(tmp_path_factory.mktemp("stack-io"), CONFIG)
    assert engine.up().summary.result == "succeeded"
    yield engine
    engine.destroy()


def cli_env(project: EngineProject, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in project.env.items() if k != "PATH"}
    env.update(extra)
    return env


def test_inventory_json_from_a_stack_it_did_not_create(project):
    result = run_cli("inventory", "--json", "--stack", project.stack_name, "--cwd", str(project.dir),
                     env=cli_env(project))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stack"] == project.stack_name
    names = [c["name"] for c in doc["certificates"]]
    assert names == ["api", "web", "ca/root"]  # most urgent (fewest days left) first; the CA's root lasts longest
    api, web, root = doc["certificates"]
    # The private CA is listed with its own expiry, read from the stack's `issuers` output.
    trust = project.outputs()["issuers"]["ca"]["levels"][0]
    assert root["kind"] == "ca" and root["issuer"] == "ca" and root["domains"] == []
    assert root["fingerprint_sha256"] == trust["fingerprint_sha256"] and root["not_after"] == trust["not_after"]
    assert api["kind"] == web["kind"] == "certificate"
    assert api["domains"] == ["api.example.test"] and web["domains"] == ["web.example.test", "example.test"]
    assert 19.9 <= api["days_remaining"] <= 20.1 and 59.9 <= web["days_remaining"] <= 60.1
    assert api["owner"] == "api-team" and api["issuer"] == "ca"
    stack_inventory = project.outputs()["inventory"]
    assert api["fingerprint_sha256"] == stack_inventory["api"]["fingerprint_sha256"]
    assert api["serial"] == stack_inventory["api"]["serial"]


def test_project_dir_and_stack_from_the_environment(project):
    env = cli_env(project, CERTPLANE_PROJECT_DIR=str(project.dir), CERTPLANE_STACK=project.stack_name)
    result = run_cli("check", "--json", env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stack"] == project.stack_name and doc["status"] == "ok"
    table = run_cli("inventory", env=env)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["CERTIFICATE", "DOMAINS", "ISSUER", "EXPIRES", "DAYS", "LEFT", "RENEWS",
                                "TARGETS", "OWNER"]
    assert lines[1].split()[0] == "api" and lines[2].split()[:4] == ["web", "web.example.test,", "example.test", "ca"]
    assert lines[3].split()[:5] == ["ca/root", "CA", "CN=CLI", "Test", "Root"], lines
    assert "\x1b[" not in table.stdout  # not a terminal: no colours


def test_time_travel_on_a_real_stack(project):
    result = run_cli("check", "--stack", project.stack_name, "--cwd", str(project.dir), env=cli_env(
        project, CERTPLANE_NOW="2099-01-01T00:00:00Z"))
    assert result.returncode == 2
    assert re.search(r"^CRITICAL api +EXPIRED", result.stdout, re.M), result.stdout
    # The CA's root outlives both leaves, and by 2099 it has expired too: its own line, by its own expiry.
    assert re.search(r"^CRITICAL ca/root +EXPIRED", result.stdout, re.M), result.stdout


def test_missing_stack_is_one_clear_line(project):
    result = run_cli("inventory", "--stack", "nope", "--cwd", str(project.dir), env=cli_env(project))
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (f"certplane: error: stack 'nope' does not exist in file://{project.backend} "
                             f"(project {project.dir}); list the stacks with `tools/pulumi stack ls`\n")


def test_reading_the_inventory_decrypts_nothing(project):
    """The inventory is plain data: a wrong passphrase (or none) does not stop `certplane` reading it."""
    env = cli_env(project, PULUMI_CONFIG_PASSPHRASE="not the passphrase")
    result = run_cli("inventory", "--json", "--stack", project.stack_name, "--cwd", str(project.dir), env=env)
    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY" not in result.stdout
    assert {c["name"] for c in json.loads(result.stdout)["certificates"]} == {"api", "web", "ca/root"}


def test_missing_project_dir_is_one_clear_line(tmp_path, project):
    result = run_cli("inventory", "--cwd", str(tmp_path), env=cli_env(project))
    assert result.returncode == 3
    assert result.stderr == (f"certplane: error: no Pulumi project in {tmp_path} (Pulumi.yaml missing); "
                             f"use --cwd DIR or $CERTPLANE_PROJECT_DIR\n")


def test_csv_export(project):
    result = run_cli("inventory", "--csv", "--stack", project.stack_name, "--cwd", str(project.dir),
                     env=cli_env(project))
    assert result.returncode == 0
    header, first, second, root = result.stdout.splitlines()
    assert header.split(",")[:4] == ["name", "domains", "issuer", "issuer_dn"]
    assert first.startswith("api,api.example.test,ca,") and second.startswith("web,web.example.test example.test,ca,")
    assert root.startswith("ca/root,,ca,CN=CLI Test Root,") and root.endswith(",ca")
    assert "\r" not in result.stdout  # plain \n line ends, whatever the platform
