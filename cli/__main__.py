"""Entry point: `./certplane COMMAND [options]` (or `python -m cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # providers.core (the shared clock) lives at the repo root

import importlib  # noqa: E402
from types import ModuleType  # noqa: E402

from cli import EXIT_UNKNOWN, CliError  # noqa: E402

COMMANDS = ("inventory", "check", "report", "metrics", "plan", "audit")

EPILOG = """\
exit codes: 0 healthy, 1 warning, 2 critical, 3 could not check (bad option, missing stack...).
environment: CERTPLANE_NOW (RFC 3339) time-travels; CERTPLANE_STACK, CERTPLANE_PROJECT_DIR pick the stack
and project; the Pulumi backend and passphrase are the usual PULUMI_* variables (tools/env.sh sets the
embedded default); NO_COLOR disables colours."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 3: 2 means "critical" here
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNKNOWN, f"certplane: error: {message}\n")


def command_module(name: str) -> ModuleType:
    """A command's module, imported when that command runs: each pulls in what it alone needs (the deploy
    targets, pydantic, keystores), and a CLI that cron or a probe loop starts every minute should not pay for
    the others."""
    return importlib.import_module(f"cli.{name}")


def chosen_command(argv: list[str]) -> str | None:
    """The command named on the command line (its options are only built for it)."""
    return next((arg for arg in argv if arg in COMMANDS), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; a command's own options (and its --help text) only for the command in `argv` (None:
    every command's, e.g. for documentation)."""
    wanted = set(COMMANDS) if argv is None else {chosen_command(argv)}

    def module(name: str) -> ModuleType | None:
        return command_module(name) if name in wanted else None

    common = Parser(add_help=False)
    where = common.add_argument_group("which inventory")
    where.add_argument("--stack", metavar="NAME",
                       help="stack to read (default: $CERTPLANE_STACK, else the selected stack, else local)")
    where.add_argument("--cwd", metavar="DIR",
                       help="Pulumi project directory (default: $CERTPLANE_PROJECT_DIR, else this repo)")
    where.add_argument("--inventory-file", metavar="PATH",
                       help="read the inventory from a JSON file instead of a stack "
                            "(`pulumi stack output inventory --json`; - for stdin)")

    parser = Parser(prog="certplane", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                    description="certplane's operator view: what certificates we have, where they are served, "
                                "who owns them, which will hurt us next.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    inv = sub.add_parser("inventory", parents=[common], help="table of certificates, most urgent first",
                         description="Every certificate of the stack, most urgent (fewest days left) first.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fmt = inv.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout (spreadsheets)")

    check = module("check")
    chk = sub.add_parser("check", parents=[common], help="health check for cron/CI/monitoring; alerts once",
                         description=check.__doc__ if check else None, epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    if check:
        check.add_arguments(chk)

    rep = sub.add_parser("report", parents=[common], help="self-contained HTML report with an expiry timeline",
                         description="Write one self-contained HTML page (inline CSS and SVG, no network): "
                                     "an expiry timeline, what needs attention, certificates per target, "
                                     "key algorithms and issuers.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--html", required=True, metavar="PATH", help="where to write the page (- for stdout)")
    rep.add_argument("--warn-days", default="30,14,7,1", metavar="LIST",
                     help="thresholds that make a certificate a warning (default: 30,14,7,1)")
    rep.add_argument("--grace-days", type=float, default=1.0, metavar="DAYS",
                     help="renewal-overdue grace, as for check (default: 1)")

    metrics = module("metrics")
    met = sub.add_parser("metrics", parents=[common],
                         help="Prometheus metrics: a node_exporter textfile, stdout, or serve /metrics",
                         description=metrics.__doc__ if metrics else None,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog="exit codes: 0 written (or served until stopped), 3 could not read the inventory "
                                "(a bad option, a missing stack...; an existing --textfile is left as it was).\n"
                                "environment: CERTPLANE_NOW (RFC 3339) time-travels x509_cert_expired and "
                                "certplane_renewal_overdue; the stack and backend as for the other commands.")
    if metrics:
        metrics.add_arguments(met)

    # plan and audit read the stack's own files (no inventory), so they take a stack and a project only
    named = Parser(add_help=False)
    named.add_argument("--stack", metavar="NAME", help="the stack (default: $CERTPLANE_STACK, else local)")
    named.add_argument("--cwd", metavar="DIR",
                       help="Pulumi project directory (default: $CERTPLANE_PROJECT_DIR, else this repo)")

    plan = module("plan")
    pln = sub.add_parser("plan", parents=[named], help="what the next `pulumi up` would do, per certificate (for pull requests)",
                         description=plan.__doc__ if plan else None,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog="exit codes: 0 no changes, 2 changes, 1 cannot plan (an error, or a mandatory "
                                "policy stops it).")
    if plan:
        plan.add_arguments(pln)

    audit = module("audit")
    aud = sub.add_parser("audit", parents=[named], help="the audit trail of issues, renewals, deploys and revocations; --verify",
                         description=audit.__doc__ if audit else None,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    if audit:
        audit.add_arguments(aud)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    command = command_module(args.command)
    if args.command == "plan":
        try:
            return int(command.run(args, args.stack, args.cwd))
        except CliError as err:
            print(f"certplane: error: {err}", file=sys.stderr)
            return int(command.EXIT_ERROR)
    if args.command == "audit":
        try:
            return int(command.run(args))
        except CliError as err:
            print(f"certplane: error: {err}", file=sys.stderr)
            return EXIT_UNKNOWN
    from cli.stack import Source

    source = Source(stack=args.stack, project_dir=args.cwd, inventory_file=args.inventory_file)
    try:
        return int(command.run(args, source))
    except CliError as err:
        print(f"certplane: error: {err}", file=sys.stderr)
        return EXIT_UNKNOWN
    except KeyboardInterrupt:
        print("certplane: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `certplane inventory | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
