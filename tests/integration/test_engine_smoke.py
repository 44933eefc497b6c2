"""The real engine end to end: up -> preview reports no changes -> destroy, on a temp stack and backend."""

from __future__ import annotations

import pytest

from .harness import EngineProject, changed_steps

pytestmark = pytest.mark.integration

CONFIG = {
    "issuers": {"ca": {"type": "private_ca", "common_name": "Smoke Root", "validity_days": 365}},
    "certificates": {
        "lab": {"domains": ["lab.example.test"], "issuer": "self_signed", "validity_days": 30},
        "web": {"domains": ["web.example.test"], "issuer": "ca"},
    },
}


def test_up_then_preview_is_clean_then_destroy(tmp_path):
    project = EngineProject(tmp_path, CONFIG)
    up = project.up()
    assert up.summary.result == "succeeded"
    assert up.summary.resource_changes.get("create", 0) >= 5
    outputs = project.outputs()
    assert set(outputs["inventory"]) == {"lab", "web"}
    assert outputs["inventory"]["web"]["domains"] == ["web.example.test"]

    assert changed_steps(project.preview()) == {}
    again = project.up()
    assert again.summary.resource_changes.get("update", 0) == 0

    down = project.destroy()
    assert down.summary.result == "succeeded"
    assert down.summary.resource_changes.get("delete", 0) == up.summary.resource_changes["create"]
