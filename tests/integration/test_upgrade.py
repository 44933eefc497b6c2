"""A stack made by the release before the typed providers and type tokens (every resource a
`pulumi-python:dynamic:Resource`, flat certificate inputs) upgrades in place: no replacement, no re-issue, the
same certificates served; then refresh and destroy work on state that still carries the old providers."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.demo import demo_config, demo_raw_config
from tools.demo_upload import main as make_demo_upload
from tools.servers.moto import DUMMY_ENV

from .harness import ROOT, EngineProject, changed_steps, program_at

pytestmark = pytest.mark.integration
BEFORE_TYPE_TOKENS = "4d6d05cf5fb34ee4fd7949fe12b5f24b10971f7f"  # the last commit with the previous state format
LEGACY_TYPE = "pulumi-python:dynamic:Resource"


def resources(project: EngineProject) -> list[dict]:
    return json.loads(project.export_text())["deployment"]["resources"]


def test_a_stack_from_the_previous_release_upgrades_with_no_replacement(tmp_path, demo_servers):
    nginx, moto_url = demo_servers.nginx, demo_servers.moto_url
    legacy_config = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE_TYPE_TOKENS}:Pulumi.local.yaml"],
                                   capture_output=True, text=True, timeout=60, check=True).stdout
    config = demo_config(demo_servers, tmp_path / "lab-certs", demo_raw_config(legacy_config))
    project = EngineProject(tmp_path, config, program=program_at(BEFORE_TYPE_TOKENS, tmp_path / "legacy"))
    make_demo_upload(str(project.dir / ".certplane" / "demo-upload"))
    aws = dict(DUMMY_ENV)
    try:
        project.up(env=aws)
        before = project.outputs()["inventory"]
        dynamic = [r["type"] for r in resources(project) if "dynamic" in r["type"]]
        assert dynamic and set(dynamic) == {LEGACY_TYPE}

        project.use_program(ROOT)
        # The one config change the upgrade asks for (README, "Upgrading"): nginx's default mode is now
        # `snippet`, so a target of whole server blocks says `mode: server`.
        config["targets"]["edge"]["mode"] = "server"
        project.set_config(config)
        # `make demo` refreshes first: the engine then diffs what it read against the inputs the old release
        # left in state, in the old shape. Nothing is due, nothing is re-issued, nothing fails.
        with project.environment(aws):
            refresh = project.stack.refresh(color="never")
        assert "re-issuing" not in refresh.stdout and "error" not in refresh.stdout.lower(), refresh.stdout
        assert "PRIVATE KEY-----" not in project.state_text()  # a refresh writes no secret under a new name
        preview = project.preview(env=aws)
        assert changed_steps(preview) == {}, preview.stdout
        up = project.up(env=aws)
        assert set(up.summary.resource_changes or {}) <= {"same"}, up.summary.resource_changes
        after = project.outputs()["inventory"]
        assert {n: e["serial"] for n, e in after.items()} == {n: e["serial"] for n, e in before.items()}
        assert {n: e["fingerprint_sha256"] for n, e in after.items()} == \
            {n: e["fingerprint_sha256"] for n, e in before.items()}
        upgraded = resources(project)
        assert not [r for r in upgraded if r["type"] == LEGACY_TYPE]
        assert {r["type"] for r in upgraded if "dynamic" in r["type"]} == {
            f"pulumi-python:dynamic/certplane:{kind}" for kind in
            ("PrivateKey", "Certificate", "UploadedCertificate", "AcmeAccount", "CertificateBinding")}

        # Nothing changed in the outputs, so refresh and destroy run the providers pickled by the old release:
        # their module paths still load, and today's code reads the state they wrote.
        with project.environment(aws):
            refresh = project.stack.refresh(color="never")
        assert "error" not in refresh.stdout.lower(), refresh.stdout
        assert changed_steps(project.preview(env=aws)) == {}
    finally:
        project.destroy()
    assert not any((nginx.conf_dir / "certplane").glob("*.conf"))
