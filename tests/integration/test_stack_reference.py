"""Another stack consumes certplane's `inventory` output through `pulumi.StackReference` (real engine)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from pathlib import Path
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


def verified_handshake(tmp: Path, fullchain: str, key: str, root_pem: str, name: str) -> str:
    """Serve `fullchain` on 127.0.0.1 and connect trusting only `root_pem`, with hostname checking; the served
    leaf's SHA-256 fingerprint (colon-separated hex, as the inventory has it)."""
    import hashlib

    (tmp / "chain.pem").write_text(fullchain)
    (tmp / "key.pem").write_text(key)
    (tmp / "key.pem").chmod(0o600)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp / "chain.pem", tmp / "key.pem")
    client_ctx = ssl.create_default_context(cadata=root_pem)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
            tls.sendall(b"x")
        thread.join(timeout=10)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


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
        pulumi.export("ca_root", ref.get_output("issuers").apply(lambda v: v["ca"]["root_pem"]))

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

        # Trust anchors out: the consumer installs the producer's private root from the `issuers` output and
        # verifies a real TLS endpoint serving `web` with it (hostname checked).
        root_pem = outputs["ca_root"]
        assert "PRIVATE KEY" not in json.dumps(producer.outputs()["issuers"])
        assert not result.outputs["ca_root"].secret
        web = producer.outputs()["certificates"]["web"]
        assert verified_handshake(tmp_path, web["fullchain_pem"], web["private_key_pem"], root_pem,
                                  "web.example.test") == inventory["web"]["fingerprint_sha256"]
    finally:
        stack.destroy(color="never")
        stack.workspace.remove_stack(stack.name)
        producer.destroy()
