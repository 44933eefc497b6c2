"""certplane: read the typed stack config and build the certificate fleet."""

import sys
from pathlib import Path

import pulumi

from components import _sdk_debug, _source_positions
from components.config import NAMESPACE, ConfigProblems, parse_fleet, plain_secrets
from components.fleet import Fleet

_source_positions.install()  # before any resource: each one's stack trace in state keeps the program's frames only
_sdk_debug.install()  # the SDK's ~5 blocking debug round trips per resource: only with CERTPLANE_SDK_DEBUG=1

def read_config() -> dict[str, object]:
    config, raw, bad = pulumi.Config(NAMESPACE), {}, []
    for key in ("issuers", "certificates", "targets", "audit"):
        try:
            raw[key] = config.get_object(key) or {}
        except (ValueError, pulumi.ConfigTypeError):  # a plain string, not a YAML mapping
            bad.append(f"{NAMESPACE}:{key}: must be a mapping of names to settings")
    reissue_before = config.get("reissue_before")  # an RFC 3339 instant (docs/RENEWAL.md)
    if reissue_before:
        raw["reissue_before"] = reissue_before
    if bad:
        raise ConfigProblems(bad)
    return raw


try:
    fleet_config = parse_fleet(read_config(), base_dir=Path.cwd())
except ConfigProblems as problems:
    for line in problems.lines:
        pulumi.log.error(line)
    sys.exit(32)  # "already explained to the user": the engine reports no traceback

secret_keys = {f"{NAMESPACE}:{k}" for k in ("issuers", "certificates", "targets")
               if pulumi.runtime.is_config_secret(f"{NAMESPACE}:{k}")}


async def main() -> pulumi.Inputs:
    """The fleet, declared while its first registrations are already on their way (Fleet.declare)."""
    fleet = await Fleet("certplane", fleet_config, base_dir=Path.cwd(),
                        plain_secrets=plain_secrets(fleet_config, secret_keys), streamed=True).declare()
    return {"inventory": fleet.inventory, "certificates": fleet.certificates, "issuers": fleet.issuers_trust}


pulumi.run(main)
