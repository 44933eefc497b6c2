"""The embedded default environment: offline, generated passphrase in a 0600 file, the stamped engine."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from tools.langhost.pulumi_language_python import pinned_engine_version  # noqa: E402


def sourced(script: str, root: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["CERTPLANE_ROOT"] = str(root)
    env["PULUMI_ACCESS_TOKEN"] = "must-be-unset"
    out = subprocess.run(["bash", "-c", f". {ROOT}/tools/env.sh && {script}"], env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout


def test_passphrase_is_generated_once_with_owner_only_permissions(tmp_path):
    first = sourced('echo "$PULUMI_CONFIG_PASSPHRASE_FILE"', tmp_path).strip()
    passfile = Path(first)
    assert passfile == tmp_path / ".certplane" / "passphrase"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    secret = passfile.read_text()
    assert len(secret) >= 40
    sourced("true", tmp_path)
    assert passfile.read_text() == secret  # generated on first use only


def test_offline_defaults_and_local_file_backend(tmp_path):
    out = sourced('echo "$PULUMI_BACKEND_URL|$PULUMI_SKIP_UPDATE_CHECK|'
                  '$PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION|${PULUMI_ACCESS_TOKEN:-unset}"', tmp_path)
    assert out.strip() == f"file://{tmp_path}/.state|true|true|unset"


def test_a_login_chosen_backend_wins_over_the_default(tmp_path):
    home = tmp_path / ".pulumi-home"
    home.mkdir()
    (home / "credentials.json").write_text('{"current": "s3://bucket", "accessTokens": {}}')
    assert sourced('echo "${PULUMI_BACKEND_URL:-none}"', tmp_path).strip() == "none"


def test_tools_pulumi_runs_the_stamped_engine():
    out = subprocess.run([str(ROOT / "tools" / "pulumi"), "version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == pinned_engine_version()  # the version tools/bootstrap.sh builds
