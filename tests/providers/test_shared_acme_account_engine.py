"""A shared ACME account on the real engine: a stack made before `account_key_pem` existed upgrades with no diff;
giving it its own account's key (to share the account with other stacks) only marks the account shared (no
replacement, no re-issue), and destroying the stack leaves the account valid. Two stacks sharing one account at
once: tests/reliability/test_concurrent_stacks.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from providers.core import keys
from providers.core.acme import client as acme_client
from tests.integration.harness import ROOT, EngineProject, changed_steps, program_at
from tests.reliability.harness import PebbleLog
from tests.support.acme import challtestsrv_dns
from tools.servers.pebble import PebbleServer

pytestmark = pytest.mark.integration
BEFORE_SHARED_ACCOUNTS = "ea1f17fdd845dd36c58b58ba6a5f75519cc8307e"  # the last commit without account_key_pem
KEY_PATH = "certplane:issuers.pebble.account_key_pem"


def config(server: PebbleServer, name: str) -> dict[str, Any]:
    issuer = {"type": "acme", "directory_url": server.directory_url, "email": "ops@example.test",
              "ca_bundle": str(server.ca_bundle_path), "profile": "default",
              "dns": {**challtestsrv_dns(server), "propagation_check": False}}
    return {"issuers": {"pebble": issuer},
            "certificates": {"www": {"domains": [f"{name}.shared-account.example.test"], "issuer": "pebble"}}}


def account(project: EngineProject) -> dict[str, Any]:
    """The AcmeAccount's state, secrets decrypted (the Automation API's export shows them)."""
    deployment = project.stack.export_stack().deployment
    found = [r for r in deployment["resources"] if r["type"].endswith(":AcmeAccount")]
    assert len(found) == 1, found
    return dict(found[0]["outputs"])


def plain(value: Any) -> Any:
    """A value of an exported state: a secret is an envelope whose `plaintext` is the value as JSON."""
    return json.loads(value["plaintext"]) if isinstance(value, dict) and "plaintext" in value else value


def test_an_existing_stack_upgrades_with_no_diff_then_shares_its_account(tmp_path: Path, pebble: PebbleServer):
    log = PebbleLog(pebble.workdir / "pebble.log")
    first = EngineProject(tmp_path / "first", config(pebble, "first"),
                          program=program_at(BEFORE_SHARED_ACCOUNTS, tmp_path / "before"))
    try:
        first.up()
        before = account(first)
        assert "shared" not in before
        serial = first.outputs()["inventory"]["www"]["serial"]

        first.use_program(ROOT)  # today's program, the same config: nothing to do
        assert changed_steps(first.preview()) == {}

        # The team shares this stack's account: its own key, given as a secret.
        key_pem = plain(before["account_key_pem"])
        keys.load_private_key(key_pem)
        first.set_config(config(pebble, "first"), {KEY_PATH: key_pem})
        preview = first.preview()
        # The account is updated in place (marked shared), nothing replaced or re-issued. The certificate shows
        # an update in the preview only: its credentials are the account's outputs, unknown until it is updated.
        assert changed_steps(preview) == {"update": 2}, preview.stdout
        assert "AcmeAccount pebble-account update [diff: ~shared]" in preview.stdout, preview.stdout
        assert "re-issuing" not in preview.stdout, preview.stdout
        assert "account_key_pem is this account's own key; it is shared from now on" in preview.stdout
        assert key_pem.splitlines()[1] not in preview.stdout
        up = first.up()
        assert (up.summary.resource_changes or {}).get("update") == 1, up.stdout  # the account only
        after = account(first)
        assert after["account_url"] == before["account_url"] and plain(after["shared"]) is True
        assert first.outputs()["inventory"]["www"]["serial"] == serial  # nothing re-issued
        assert changed_steps(first.preview()) == {}

        first.destroy()
        first = None  # type: ignore[assignment]
        conn = acme_client.Connection(pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
        client = acme_client.connect(conn, keys.load_private_key(key_pem), before["account_url"])
        assert acme_client.account_status(client, before["account_url"]) == "valid"
        assert log.counts()["accounts"] == 1  # the one registration, by the release before
    finally:
        if first is not None:
            first.destroy()
