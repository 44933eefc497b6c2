"""Another stack consumes certplane's `inventory` output through `pulumi.StackReference` (real engine)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi import automation as auto

from .harness import ROOT, EngineProject

pytestmark = pytest.mark.integration

CONFIG = {
    "issuers": {"ca": {"type": "private_ca", "common_name": "Reference Root", "validity_days": 365}},
    "certificates": {
        "web": {"domains": ["web.example.test"], "issuer": "ca", "validity_days": 60, "tags": {"owner": "web"}},
        "lab": {"domains": ["lab.example.test"], "issuer": "self_signed", "validity_days": 10},
    },
}


def test_a_second_stack_reads_the_inventory(tmp_path):
    producer = EngineProject(tmp_path / "producer", CONFIG)
    assert producer.up().summary.result == "succeeded"
    inventory = producer.outputs()["inventory"]

    def consumer() -> None:
        ref = pulumi.StackReference(f"organization/certplane/{producer.stack_name}")
        inv = ref.get_output("inventory")

        def soonest(value: dict[str, Any]) -> str:
            return min(value, key=lambda name: value[name]["not_after"])

        pulumi.export("soonest", inv.apply(soonest))
        pulumi.export("domains", inv.apply(lambda v: sorted(d for e in v.values() for d in e["domains"])))
        pulumi.export("web_fingerprint", inv.apply(lambda v: v["web"]["fingerprint_sha256"]))

    work = tmp_path / "consumer"
    work.mkdir()
    stack = auto.create_stack(
        f"{producer.stack_name}-consumer", project_name="consumer", program=consumer,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work), env_vars=producer.env,
            pulumi_command=auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=True),
            project_settings=auto.ProjectSettings(name="consumer", runtime="python"),
        ),
    )
    try:
        result = stack.up(on_output=None, color="never")
        assert result.summary.result == "succeeded"
        outputs = {k: v.value for k, v in result.outputs.items()}
        assert outputs["soonest"] == "lab"
        assert outputs["domains"] == ["lab.example.test", "web.example.test"]
        assert outputs["web_fingerprint"] == inventory["web"]["fingerprint_sha256"]
        assert not result.outputs["web_fingerprint"].secret  # the inventory is plain data
    finally:
        stack.destroy(color="never")
        stack.workspace.remove_stack(stack.name)
        producer.destroy()
