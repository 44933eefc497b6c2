"""certplane: read the typed stack config and build the certificate fleet."""

import sys
from pathlib import Path

import pulumi

from components.config import NAMESPACE, ConfigProblems, parse_fleet
from components.fleet import Fleet

config = pulumi.Config(NAMESPACE)
raw = {key: config.get_object(key) or {} for key in ("issuers", "certificates", "targets")}
try:
    fleet_config = parse_fleet(raw, base_dir=Path.cwd())
except ConfigProblems as problems:
    for line in problems.lines:
        pulumi.log.error(line)
    sys.exit(32)  # "already explained to the user": the engine reports no traceback

fleet = Fleet("certplane", fleet_config, base_dir=Path.cwd())
pulumi.export("inventory", fleet.inventory)
pulumi.export("certificates", fleet.certificates)
