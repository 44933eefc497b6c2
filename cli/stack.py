"""Where the inventory comes from: a stack's outputs read through the Automation API, or a JSON file.

The workspace is the project directory (`--cwd`, $CERTPLANE_PROJECT_DIR, default: this repo). The backend,
passphrase and Pulumi home come from the environment exactly as for `pulumi` itself (`./certplane` sources
tools/env.sh, so the embedded default applies unless you chose another backend). Any stack of the backend can be
read, including ones this tool did not create. The read is `pulumi stack export` (the public
`Workspace.export_stack`): unlike `select_stack` it does not change which stack is selected for the user's next
`pulumi up`, and it decrypts nothing (the engine still checks the stack's passphrase, as for any command).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import CliError
from .model import Certificate, parse_inventory, parse_issuers

ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIR_ENV = "CERTPLANE_PROJECT_DIR"
STACK_ENV = "CERTPLANE_STACK"
DEFAULT_STACK = "local"
OUTPUT_NAME = "inventory"
ISSUERS_OUTPUT = "issuers"  # each private CA's levels (components/private_ca.py): listed beside the leaves


@dataclass(frozen=True)
class Source:
    stack: str | None
    project_dir: str | None
    inventory_file: str | None


@dataclass(frozen=True)
class Loaded:
    stack: str
    project_dir: Path
    certificates: list[Certificate]
    now: dt.datetime


def project_dir(arg: str | None) -> Path:
    path = Path(arg or os.environ.get(PROJECT_DIR_ENV) or ROOT).expanduser().resolve()
    if not (path / "Pulumi.yaml").is_file() and not (path / "Pulumi.yml").is_file():
        raise CliError(f"no Pulumi project in {path} (Pulumi.yaml missing); use --cwd DIR or ${PROJECT_DIR_ENV}")
    return path


def _workspace(work_dir: Path) -> Any:
    from pulumi import automation as auto

    tools = ROOT / ".tools"
    if (tools / "bin" / "pulumi").is_file():
        command = auto.PulumiCommand(root=str(tools), skip_version_check=True)
    else:  # a user-installed engine on PATH
        try:
            command = auto.PulumiCommand(skip_version_check=True)
        except Exception:  # noqa: BLE001 - the SDK raises a bare Exception when the binary is missing
            raise CliError("the Pulumi engine is not installed; run `make bootstrap` first") from None
    return auto.LocalWorkspace(work_dir=str(work_dir), pulumi_command=command)


def _engine_error(err: Exception) -> str:
    text = getattr(err, "stderr", "") or str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        _, found, rest = line.partition("error:")
        if found:
            return rest.strip()
    return lines[-1] if lines else type(err).__name__


def _backend() -> str:
    return os.environ.get("PULUMI_BACKEND_URL") or "the backend you are logged in to"


def stack_file_config(work_dir: Path, stack: str) -> dict[str, Any]:
    """The `config:` mapping of the stack's own file (`Pulumi.<stack>.yaml`, as committed), read without the
    engine: plain settings only (secrets there are ciphertext). Empty when there is no such file; CliError, one
    line, when it cannot be read."""
    import yaml

    name = stack.rsplit("/", 1)[-1]
    path = next((p for p in (work_dir / f"Pulumi.{name}.yaml", work_dir / f"Pulumi.{name}.yml") if p.is_file()),
                None)
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CliError(f"cannot read {path.name}: {err}") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    return config if isinstance(config, dict) else {}


def read_stack_inventory(stack_name: str | None, work_dir: Path) -> tuple[str, Any, Any]:
    """(stack name, raw `inventory` output, raw `issuers` output or None) of a stack; one clear CliError line for
    every failure."""
    from pulumi import automation as auto

    ws = _workspace(work_dir)
    if not stack_name:
        try:
            current = ws.stack()
        except auto.CommandError:
            current = None
        stack_name = current.name if current else DEFAULT_STACK
    # `stack output` without --show-secrets: the inventory is plain data, so nothing is decrypted to read it
    # (the Automation API's export and outputs calls both pass --show-secrets).
    command = [ws.pulumi_command.command, "stack", "output", "--json", "--stack", stack_name]
    try:
        done = subprocess.run(command, cwd=work_dir, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CliError(f"cannot read stack {stack_name!r}: {err}") from None
    if done.returncode != 0:
        message = _engine_error(RuntimeError(done.stderr or done.stdout))
        if "no stack named" in message or "not found" in message:
            raise CliError(f"stack {stack_name!r} does not exist in {_backend()} (project {work_dir}); "
                           f"list the stacks with `tools/pulumi stack ls`") from None
        raise CliError(f"cannot read stack {stack_name!r}: {message}") from None
    try:
        outputs = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise CliError(f"cannot read stack {stack_name!r}: the engine printed no JSON") from None
    if OUTPUT_NAME not in outputs:
        raise CliError(f"stack {stack_name!r} has no `{OUTPUT_NAME}` output yet; run `pulumi up --stack {stack_name}`")
    value = outputs[OUTPUT_NAME]
    if value == "[secret]":
        raise CliError(f"stack {stack_name!r}: the `{OUTPUT_NAME}` output is a secret; it must be plain data")
    return stack_name, value, outputs.get(ISSUERS_OUTPUT)


def read_inventory_file(path: str) -> tuple[Any, Any]:
    """(inventory, issuers or None) of a file: `pulumi stack output inventory --json`, the whole `pulumi stack
    output --json` (which has the `issuers` too), or our own --json."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as err:
        raise CliError(f"--inventory-file {path}: {err.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"--inventory-file {path}: not JSON ({err.msg} at line {err.lineno})") from None
    issuers = None
    if isinstance(doc, dict) and isinstance(doc.get(OUTPUT_NAME), dict):
        issuers = doc.get(ISSUERS_OUTPUT)
        doc = doc[OUTPUT_NAME]
    if isinstance(doc, dict) and isinstance(doc.get("certificates"), list):  # our --json lists the CAs itself
        doc = {c["name"]: c for c in doc["certificates"] if isinstance(c, dict) and "name" in c}
    return doc, issuers


def load(source: Source) -> Loaded:
    from providers.core import clock
    from providers.core.errors import CertplaneError

    try:
        now = clock.now()
    except CertplaneError as err:
        raise CliError(str(err)) from None
    if source.inventory_file:
        raw, issuers = read_inventory_file(source.inventory_file)
        stack = source.stack or f"file:{Path(source.inventory_file).name}"
        work_dir = Path(source.project_dir or os.environ.get(PROJECT_DIR_ENV) or ROOT).resolve()
    else:
        work_dir = project_dir(source.project_dir)
        stack, raw, issuers = read_stack_inventory(source.stack or os.environ.get(STACK_ENV), work_dir)
    return Loaded(stack=stack, project_dir=work_dir, certificates=parse_inventory(raw) + parse_issuers(issuers),
                  now=now)
