"""The README's day-to-day commands, run as written in a fresh shell, on the demo stack of a fresh copy of the
checkout (its servers on free ports: `make demo` would take the fixed ones)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.demo import demo_config
from tools.demo_upload import main as make_demo_upload
from tools.servers.moto import write_credentials

from .harness import ROOT

pytestmark = pytest.mark.integration


def readme_commands(section: str) -> list[str]:
    """The shell lines of the first ```sh block under `## <section>`, comments dropped."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", body, re.S)
    assert block, f"README has no ```sh block under ## {section}"
    lines = [re.split(r"\s{2,}#", line)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def fresh_checkout(dest: Path) -> Path:
    """The tracked files (as a clone has them) plus this machine's built tools (.venv, .tools)."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True,
                           timeout=60).stdout.decode().split("\0")
    for name in filter(None, files):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    for tool in (".venv", ".tools"):
        (dest / tool).symlink_to(ROOT / tool)
    return dest


def fresh_shell() -> dict[str, str]:
    """What a new login shell has: no AWS, Pulumi or certplane variables of the test run."""
    return {"HOME": os.environ.get("HOME", "/root"), "USER": os.environ.get("USER", "root"), "LANG": "C.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}


def sh(command: str, repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_every_day_to_day_command_works_as_written(tmp_path, demo_servers):
    nginx, moto_url = demo_servers.nginx, demo_servers.moto_url
    repo = fresh_checkout(tmp_path / "repo")
    config = demo_config(demo_servers, repo / ".certplane" / "lab-certs")
    (repo / "Pulumi.local.yaml").write_text(yaml.safe_dump({"config": {f"certplane:{k}": v for k, v in config.items()}}))
    make_demo_upload(str(repo / ".certplane" / "demo-upload"))
    credentials = write_credentials(repo / ".certplane" / "aws" / "credentials")
    env = fresh_shell()
    # What `make demo` does once its servers run.
    for step in ("tools/pulumi stack select local --create", "tools/pulumi up --yes --stack local"):
        done = sh(step, repo, env)
        assert done.returncode == 0, done.stdout + done.stderr
    try:
        commands = readme_commands("Day to day")
        assert len(commands) >= 8
        for command in commands:
            done = sh(command, repo, env)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stdout + done.stderr, command
        assert (repo / "report.html").stat().st_size > 10_000

        for command in readme_commands("On a pull request: plans, policy, audit"):
            done = sh(command, repo, env)
            planned = command.startswith(("./certplane plan", "CERTPLANE_NOW=2027-02-01T00:00:00Z ./certplane plan"))
            assert done.returncode in ((0, 2) if planned else (0,)), f"{command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stdout + done.stderr and "PRIVATE KEY" not in done.stdout, command
            if "--markdown" in command:  # the README's date is fixed; what renews by then depends on today
                assert "| certificate | plan |" in done.stdout, done.stdout
            if "--verify" in command:
                assert "intact" in done.stdout, done.stdout

        # Reading a binding that cannot reach its target fails in one line naming it and what to do.
        credentials.write_text("[someone-else]\naws_access_key_id = x\naws_secret_access_key = y\n")
        failed = sh("tools/pulumi refresh --stack local", repo, env)
        assert failed.returncode != 0
        out = failed.stdout + failed.stderr
        assert "Traceback" not in out
        assert re.search(r"reading a certificate binding \(binding (www|blog)--alb\): aws_elbv2: .*certplane-demo.*"
                         r"; `pulumi refresh` reads every resource: make it reachable and refresh again", out), out
    finally:
        write_credentials(credentials)
        sh("tools/pulumi destroy --yes --stack local", repo, env)
