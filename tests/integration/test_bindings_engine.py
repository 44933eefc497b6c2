"""Listener bindings on the real engine with a real nginx: deploy, renewal rotation, drift on refresh."""

from __future__ import annotations

import re
import time

import pytest

from providers.core.tls import served_fingerprint
from tools.servers.nginx import NginxServer

from .harness import EngineProject, changed_steps, from_now

pytestmark = pytest.mark.integration


def config(nginx: NginxServer) -> dict:
    return {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Edge Root", "intermediate": True}},
        "certificates": {
            "www": {"domains": ["www.example.test", "example.test"], "issuer": "ca", "validity_days": 30,
                    "bindings": [{"target": "edge"}]},
            "api": {"domains": ["api.example.test"], "issuer": "ca", "validity_days": 90,
                    "bindings": [{"target": "edge"}]},
        },
        "targets": {"edge": {"type": "nginx", **nginx.target_settings()}},
    }


def served(nginx: NginxServer, name: str) -> str | None:
    host, port = nginx.listen.rsplit(":", 1)
    return served_fingerprint(host, int(port), name)


def test_deploy_rotate_on_renewal_and_repair_drift(tmp_path, nginx):
    project = EngineProject(tmp_path, config(nginx))
    try:
        project.up()
        inv = project.outputs()["inventory"]
        for name in ("www.example.test", "example.test"):
            assert served(nginx, name) == inv["www"]["fingerprint_sha256"]
        assert served(nginx, "api.example.test") == inv["api"]["fingerprint_sha256"]
        assert inv["www"]["endpoints"][0]["server_name"] == "www.example.test"

        # Renewal: the certificate is re-issued and its binding follows in the same `up`.
        day25 = {"CERTPLANE_NOW": from_now(25)}
        preview = project.preview(env=day25)
        assert changed_steps(preview) == {"update": 2}  # www and its binding
        # The plan names what changes: the certificate's own properties (a new key: reuse_key is off), and for
        # the binding only the certificate it will serve; nothing else (its server names did not change).
        lines = {ln.split()[2]: ln for ln in preview.stdout.splitlines() if ln.startswith(" ~ ")}
        assert lines["www"].endswith("update [diff: ~cert_pem,fingerprint_sha256,not_after,not_before,"
                                     "private_key_pem,renewal_time,serial]"), preview.stdout
        assert lines["www--edge"].endswith("update [diff: ~cert_pem]"), preview.stdout
        assert "binding www--edge: deploying www's new certificate to edge (nginx)" in preview.stdout
        project.up(env=day25)
        renewed = project.outputs()["inventory"]
        assert renewed["www"]["fingerprint_sha256"] != inv["www"]["fingerprint_sha256"]
        assert served(nginx, "www.example.test") == renewed["www"]["fingerprint_sha256"]
        assert served(nginx, "api.example.test") == inv["api"]["fingerprint_sha256"]

        # Drift: someone puts another certificate in place by hand; refresh reports it, up repairs it.
        certs = nginx.conf_dir / "certplane" / "certs"
        api_chain = (certs / "api--edge.fullchain.pem").read_text()
        api_key = (certs / "api--edge.key.pem").read_text()
        (certs / "www--edge.fullchain.pem").write_text(api_chain)
        (certs / "www--edge.key.pem").write_text(api_key)
        nginx.reload()
        for _ in range(100):  # the reload is asynchronous: wait (bounded) until the hand-placed one is served
            if served(nginx, "www.example.test") == inv["api"]["fingerprint_sha256"]:
                break
            time.sleep(0.05)
        refresh = project.stack.refresh(color="never")
        assert re.search(r"certplane: .*www\.example\.test serves .*, expected .*; the next `pulumi up` "
                         r"redeploys it", refresh.stdout), refresh.stdout
        after_refresh = project.export_text()
        assert "PRIVATE KEY-----" not in after_refresh and api_key.splitlines()[1] not in after_refresh
        assert changed_steps(project.preview()) == {"update": 1}
        project.up()
        assert served(nginx, "www.example.test") == renewed["www"]["fingerprint_sha256"]
        assert changed_steps(project.preview()) == {}

        state = project.export_text()
        assert "PRIVATE KEY-----" not in state and api_key.splitlines()[1] not in state
    finally:
        project.destroy()
    assert not (nginx.conf_dir / "certplane" / "www--edge.conf").exists()


def test_a_target_that_serves_nothing_any_more_is_redeployed(tmp_path):
    """Drift to *nothing served* (a file deleted by hand, a listener emptied): the engine drops null values inside
    maps before state reaches the provider again, so it must not be recorded as null, or no `up` would see it."""
    certs = tmp_path / "certs"
    project = EngineProject(tmp_path, {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Drift Root"}},
        "certificates": {"app": {"domains": ["app.example.test"], "issuer": "ca", "bindings": [{"target": "disk"}]}},
        "targets": {"disk": {"type": "files", "directory": str(certs), "formats": ["pem"]}},
    })
    try:
        project.up()
        fullchain = certs / "app.fullchain.pem"
        expected = fullchain.read_text()
        fullchain.unlink()
        refresh = project.stack.refresh(color="never")
        assert "serves no certificate" in refresh.stdout, refresh.stdout
        assert changed_steps(project.preview()) == {"update": 1}
        project.up()
        assert fullchain.read_text() == expected
        assert changed_steps(project.preview()) == {}
    finally:
        project.destroy()
