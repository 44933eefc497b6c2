"""`./certplane audit`: the stack's audit trail (every issue, renewal, upload, deploy, removal and revocation,
and every failure of one), and with `--verify` the proof that no line was edited, deleted, inserted or moved.

The log is found by the same rule the program writes it with (providers/core/audit.py `resolve_log`): the
stack's `certplane:audit.path`, else $CERTPLANE_AUDIT_LOG, else beside the state of a file backend, else
`.certplane/audit/<stack>.jsonl` in the project. `--log PATH` reads another file (a copy, an archive).

exit codes: 0 listed / intact, 1 the log does not verify (the first bad line is named), 3 cannot read it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml

from providers.core.audit import AuditLog, resolve_log

from . import EXIT_OK, EXIT_WARNING, CliError
from .stack import DEFAULT_STACK, STACK_ENV, project_dir, stack_file_config

COLUMNS = ("seq", "time", "actor", "action", "resource", "serial", "outcome")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", metavar="PATH", help="read this log file instead of the stack's")
    parser.add_argument("--json", action="store_true", help="the records as a JSON array")
    parser.add_argument("--verify", action="store_true",
                        help="check the hash chain; exit 1 naming the first bad line")


def log_path(stack: str, work_dir: Path) -> Path:
    """The stack's log, by the rule the program uses (its stack file's `certplane:audit.path` first)."""
    project = _read_yaml(work_dir / "Pulumi.yaml").get("name") or work_dir.name
    audit = stack_file_config(work_dir, stack).get("certplane:audit")
    configured = audit.get("path") if isinstance(audit, dict) else None
    return resolve_log(configured if isinstance(configured, str) else None, stack=stack, project=str(project),
                       project_dir=work_dir)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as err:
        raise CliError(f"cannot read {path}: {err}") from None
    return doc if isinstance(doc, dict) else {}


def run(args: argparse.Namespace) -> int:
    if args.log:
        path = Path(args.log).expanduser()
    else:
        work_dir = project_dir(args.cwd)
        path = log_path(args.stack or os.environ.get(STACK_ENV) or DEFAULT_STACK, work_dir)
    log = AuditLog(path)
    if args.verify:
        verdict = log.verify()
        if not verdict.intact:
            print(f"audit log {path}: {verdict.problem}")
            return EXIT_WARNING
        print(f"audit log {path}: {verdict.lines} line(s), intact")
        return EXIT_OK
    try:
        records = list(log.records())
    except ValueError as err:
        raise CliError(f"audit log {path}: {err}; run with --verify") from None
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror}") from None
    if args.json:
        print(json.dumps(records, indent=2))
    elif not records:
        print(f"no audit records at {path} yet (`pulumi up` writes them)")
    else:
        print(_table(records))
    return EXIT_OK


def _table(records: list[dict[str, Any]]) -> str:
    rows = [[_cell(r, c) for c in COLUMNS] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    for record, row in zip(records, rows, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        where = record.get("target") or record.get("issuer")
        if where or record.get("detail"):
            lines.append("      " + "; ".join(str(x) for x in (where, record.get("detail")) if x))
    return "\n".join(lines)


def _cell(record: dict[str, Any], column: str) -> str:
    value = record.get(column)
    if column == "serial" and isinstance(value, str) and len(value) > 16:
        return value[:16] + "…"
    return "" if value is None else str(value)


__all__ = ["add_arguments", "log_path", "run"]
