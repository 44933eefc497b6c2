"""Secrets at rest, after the whole demo stack is up: no private key, keystore password or credential in plain
text in `stack export`, the engine's output, the audit trail or the state files; every file on disk that holds
key material (nginx, HAProxy, the files target, the passphrase, the demo's AWS profile) is readable by its
owner only."""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import PASSPHRASE, EngineProject
from tests.support.demo import demo_config
from tools.demo_upload import main as make_demo_upload
from tools.servers.moto import DUMMY_ENV, write_credentials

pytestmark = pytest.mark.integration
KEY_MARKERS = (b"PRIVATE KEY-----",)
SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value in a checkpoint


def secret_values(deployment: dict[str, Any]) -> set[str]:
    """Every secret's plain text in a `--show-secrets` export (the Automation API's), as distinctive pieces."""
    found: set[str] = set()

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            is_secret = SIG in value
            for k, v in value.items():
                if k != SIG:
                    walk(v, secret or is_secret)
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif isinstance(value, str) and secret and len(value) >= 8:
            found.add(_piece(value))

    for resource in deployment.get("resources") or []:
        walk(resource.get("outputs") or {}, False)
    return found


def _piece(value: str) -> str:
    """A run of the value distinctive enough to search for (a PEM key: a line of its body). A secret's plaintext
    in an export is the JSON text of the value (`"-----BEGIN…\\n…"`): decoded first, or every key of one type
    would give the same first 40 characters (their PKCS#8 header), and the count of distinct secrets would vary
    with the keys' random lengths."""
    if value.startswith('"'):
        with contextlib.suppress(ValueError):
            decoded = json.loads(value)
            value = decoded if isinstance(decoded, str) else value
    lines = [ln for ln in value.splitlines() if ln and not ln.startswith("-----")]
    return lines[len(lines) // 2] if len(lines) > 2 else value[:40]


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


def test_no_secret_in_plain_text_and_every_key_file_is_the_owners_only(tmp_path: Path, demo_servers) -> None:
    project = EngineProject(tmp_path, demo_config(demo_servers, tmp_path / "lab-certs"))
    make_demo_upload(str(project.dir / ".certplane" / "demo-upload"))
    write_credentials(project.dir / ".certplane" / "aws" / "credentials")
    aws = {key: "" for key in DUMMY_ENV}
    try:
        up = project.up(env=aws)
        revealed = json.loads(json.dumps(project.stack.export_stack().deployment))
        secrets = secret_values(revealed) | {PASSPHRASE}
        assert len(secrets) > 20  # keys, passwords, keystores of every certificate, the ACME account key

        audit = project.backend / "certplane-audit"
        texts = {"stack export": project.export_text(), "up output": up.stdout + up.stderr,
                 "audit trail": "".join(p.read_text() for p in audit.rglob("*.jsonl")),
                 "state files": "".join(p.read_text(errors="replace") for p in project.backend.rglob("*.json*"))}
        for where, text in texts.items():
            assert "PRIVATE KEY-----" not in text, where
            leaked = [s[:12] + "…" for s in secrets if s in text]
            assert not leaked, f"{where} holds secrets in plain text: {leaked}"

        servers = [demo_servers.nginx.conf_dir, demo_servers.haproxy.workdir, tmp_path / "lab-certs",
                   project.dir / ".certplane"]
        holding = []
        for path in files_under(*servers):
            data = path.read_bytes()
            if any(m in data for m in KEY_MARKERS) or any(s.encode() in data for s in secrets):
                holding.append(path)
                mode = stat.S_IMODE(path.stat().st_mode)
                assert mode & 0o077 == 0, f"{path} holds key material and is mode {mode:o}"
        kinds = {p.suffix for p in holding}
        assert {".key", ".pem"} <= kinds, holding  # the files target's keys, nginx's and HAProxy's PEMs
    finally:
        project.destroy()
