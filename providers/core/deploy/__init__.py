"""Deploy targets: where TLS terminates. One module per kind, listed in one registry; each target validates
its own settings in its constructor (InvalidInputError naming the field)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DeployError, InvalidInputError
from .alibaba_slb import AlibabaSlbTarget
from .aws_elbv2 import AwsElbv2Target
from .base import DEFAULT, Binding, Bundle, DeployTarget
from .files import FilesTarget
from .nginx import NginxTarget

REGISTRY: dict[str, Callable[[Mapping[str, Any]], DeployTarget]] = {
    "nginx": NginxTarget,
    "files": FilesTarget,
    "aws_elbv2": AwsElbv2Target,
    "alibaba_slb": AlibabaSlbTarget,
}

# Settings that say *where* a binding lives: changing one moves the binding (create the new, then remove the old)
# instead of redeploying in place.
LOCATION_SETTINGS: dict[str, tuple[str, ...]] = {
    "nginx": ("conf_dir",),  # the files' paths; `conf` only says which main config to test and reload
    "files": ("directory",),
    "aws_elbv2": ("region", "listener_arn", "load_balancer_name", "listener_port", "endpoint_url"),
    "alibaba_slb": ("region", "load_balancer_id", "listener_port", "endpoint", "cas_endpoint", "slb_endpoint"),
}


def get_target(kind: str, settings: Mapping[str, Any]) -> DeployTarget:
    """The target for `kind`, its settings validated; unknown kinds name the known ones."""
    factory = REGISTRY.get(kind)
    if factory is None:
        raise InvalidInputError("type", f"unrecognized deploy target: {kind} (known: {', '.join(sorted(REGISTRY))})")
    return factory(settings)


__all__ = ["DEFAULT", "LOCATION_SETTINGS", "REGISTRY", "Binding", "Bundle", "DeployError", "DeployTarget", "get_target"]
