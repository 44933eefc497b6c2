"""certplane's policy pack (Pulumi CrossGuard): `pulumi preview --policy-pack policy` and `./certplane plan`.

The rules are in rules.py; which are mandatory, advisory or disabled, and their settings, in config.json
beside this file (or a file given with `--policy-pack-config`, which Pulumi merges over it).
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(1, str(HERE.parent))  # the rules use certplane's core (certificates, the clock)

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

import rules  # noqa: E402


def _policy(name: str, description: str, check, settings: dict) -> ResourceValidationPolicy:  # noqa: ANN001
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        cert = rules.subject(args.resource_type, args.name, args.props)
        if cert is None:
            return
        for problem in check(cert, args.get_config()):
            report(problem)

    # Every setting config.json gives the rule is part of its schema (any JSON value: rules.py reads it).
    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    config_schema=PolicyConfigSchema(properties={k: {} for k in settings}))


def _config() -> dict:
    raw = json.loads((HERE / "config.json").read_text())
    return {name: (dict(value) if isinstance(value, dict) else {"enforcementLevel": value})
            for name, value in raw.items() if not name.startswith("//")}


CONFIG = _config()
PolicyPack(
    name="certplane",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_policy(name, description, check, {k: v for k, v in CONFIG.get(name, {}).items()
                                                 if k != "enforcementLevel"})
              for name, (description, check) in rules.RULES.items()],
    initial_config={name: {**value, "enforcementLevel": EnforcementLevel(value.get("enforcementLevel", "mandatory"))}
                    for name, value in CONFIG.items()},
)
