"""Drive the real Pulumi engine through the Automation API on a throwaway copy of the project.

Each `EngineProject` copies the program (Pulumi.yaml, __main__.py, components/, providers/) into a temp dir,
points it at the repo's .venv, and uses a temp `file://` backend and passphrase (or the backend URL and
secrets provider a test gives): tests never touch the developer's `local` stack or state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("__main__.py", "components", "providers")
PASSPHRASE = "certplane-tests-passphrase"


def engine_env(home: Path, backend: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The embedded default environment of tools/env.sh, pointed at a temp home and backend."""
    env = {
        "PATH": f"{ROOT / '.tools' / 'bin'}:{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_DISABLE_REGISTRY_RESOLVE": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }
    env.update(extra or {})
    return env


class EngineProject:
    """A temp copy of certplane with its own stack. `config` is the `certplane:*` mapping, keyed without the
    namespace (`{"issuers": {...}, "certificates": {...}}`); `secrets` are set as secret config values."""

    def __init__(self, base: Path, config: dict[str, Any], *, secrets: dict[str, str] | None = None,
                 files: dict[str, str] | None = None, stack_name: str | None = None, program: Path = ROOT,
                 backend_url: str | None = None, secrets_provider: str | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.dir = base / "project"
        self.dir.mkdir(parents=True)
        self.use_program(program)
        project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        project["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")
        (self.dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
        for rel, text in (files or {}).items():
            path = self.dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.home = base / "pulumi-home"
        self.backend = base / "state"
        self.home.mkdir()
        self.backend.mkdir()
        # Another backend (postgres://, s3://) and secrets provider (awskms://) instead of the temp file://
        # backend and the passphrase; extra_env for what they need (e.g. AWS credentials).
        self.env = engine_env(self.home, self.backend,
                              {**({"PULUMI_BACKEND_URL": backend_url} if backend_url else {}), **(extra_env or {})})
        self.stack_name = stack_name or f"t{uuid.uuid4().hex[:8]}"
        ws = auto.LocalWorkspace(
            work_dir=str(self.dir),
            env_vars=self.env,
            pulumi_command=auto.PulumiCommand(root=str(ROOT / ".tools"), skip_version_check=False),
            secrets_provider=secrets_provider,
        )
        self.stack = auto.Stack.create(self.stack_name, ws)
        self.set_config(config, secrets or {})

    def use_program(self, program: Path) -> None:
        """Put the program (__main__.py, components/, providers/) from `program` in place of the current one:
        this checkout's by default, or an older release's to test upgrades."""
        for name in PROJECT_FILES:
            src, dest = program / name, self.dir / name
            if dest.is_dir():
                shutil.rmtree(dest)
            if src.is_dir():
                shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dest)

    def set_config(self, config: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
        """Write `certplane:*` as YAML objects (as a user writes Pulumi.<stack>.yaml), then set each secret
        with `--path --secret`, e.g. {"certplane:certificates.legacy.upload.private_key": PEM}."""
        stack_file = self.dir / f"Pulumi.{self.stack_name}.yaml"
        doc = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
        doc = doc or {}
        doc["config"] = {f"certplane:{k}": v for k, v in config.items()}
        stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        for key, value in (secrets or {}).items():
            self.stack.set_config(key, auto.ConfigValue(value, secret=True), path=True)

    @contextmanager
    def environment(self, extra: dict[str, str] | None) -> Iterator[None]:
        """Run with extra env vars (e.g. CERTPLANE_NOW for time travel) for one operation."""
        ws = self.stack.workspace
        saved = dict(ws.env_vars)
        ws.env_vars.update(extra or {})
        try:
            yield
        finally:
            ws.env_vars.clear()
            ws.env_vars.update(saved)

    def up(self, env: dict[str, str] | None = None) -> auto.UpResult:
        with self.environment(env):
            return self.stack.up(on_output=None, color="never", suppress_outputs=True)

    def preview(self, env: dict[str, str] | None = None) -> auto.PreviewResult:
        with self.environment(env):
            return self.stack.preview(color="never", diff=False)

    def destroy(self) -> auto.DestroyResult:
        return self.stack.destroy(color="never")

    def outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self.stack.outputs().items()}

    def state_text(self) -> str:
        """The raw state file text as stored by the file backend (secrets must be ciphertext here)."""
        files = list(self.backend.rglob(f"{self.stack_name}.json"))
        return "\n".join(f.read_text() for f in files)

    def cli(self, *args: str) -> str:
        """Run the project's `pulumi` on this stack (for what the Automation API does differently)."""
        out = subprocess.run(["pulumi", *args, "--stack", self.stack_name], cwd=self.dir,
                             env={**os.environ, **self.env}, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def export_text(self) -> str:
        """`pulumi stack export` as a user runs it (the Automation API's export adds --show-secrets)."""
        return self.cli("stack", "export")


def program_at(commit: str, dest: Path) -> Path:
    """The program files as they were at `commit` of this repository (needs the history: a full clone)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, *PROJECT_FILES],
                             capture_output=True, timeout=60)
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {commit}: {archive.stderr.decode().strip()} (a shallow clone lacks the "
                           "history this test needs: fetch it with `git fetch --unshallow`)")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
    return dest


def from_now(days: float) -> str:
    """An RFC 3339 instant `days` from the real now: what $CERTPLANE_NOW time-travels to. Certificates are
    always signed at the real time, so renewal tests count from today."""
    import datetime as dt

    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def changed_steps(preview: auto.PreviewResult) -> dict[str, int]:
    """Operation counts other than `same` (e.g. {"update": 3})."""
    return {op: n for op, n in (preview.change_summary or {}).items() if op != "same" and n}
