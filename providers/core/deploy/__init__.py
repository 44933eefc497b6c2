"""Deploy targets: where TLS terminates. One module per kind (settings model, target class, `PLUGIN`), listed
once in `REGISTRY`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from ..plugins import Registry
from ..validation import first_problem, location_of
from .base import (DEFAULT, Binding, Bundle, DeployTarget, Endpoint, RetiresReplaced, ServesTls, TargetPlugin,
                   TargetSettings)

REGISTRY: Registry[TargetPlugin] = Registry.of_modules(__name__, [
    "nginx",
    "haproxy",
    "files",
    "aws_elbv2",
    "aws_cloudfront",
    "alibaba_slb",
    "alibaba_cas",
], noun="deploy target")

TargetSettingsField = Annotated[TargetSettings, REGISTRY.validator(), REGISTRY.serializer()]
"""A `certplane:targets.<name>` block as a model field (`type` picks the model that validates the rest)."""


def parse_settings(kind: str, raw: Any, *, context: Mapping[str, Any] | None = None) -> TargetSettings:
    """`kind`'s settings validated from `raw` (no `type` key); raises InvalidInputError (first problem)."""
    if isinstance(raw, TargetSettings):
        return raw
    plugin = REGISTRY.get(kind)
    settings = first_problem(lambda: REGISTRY.validate({**dict(raw or {}), REGISTRY.key: plugin.kind},
                                                       context=context))
    assert isinstance(settings, TargetSettings)
    return settings


def build(settings: TargetSettings) -> DeployTarget:
    return REGISTRY.plugin_of(settings).build(settings)


def get_target(kind: str, raw: Any) -> DeployTarget:
    """The target for `kind`, built from validated settings; unknown kinds name the known ones."""
    return build(parse_settings(kind, raw))


__all__ = ["DEFAULT", "REGISTRY", "Binding", "Bundle", "DeployTarget", "Endpoint", "RetiresReplaced", "ServesTls",
           "TargetPlugin",
           "TargetSettings", "TargetSettingsField", "build", "get_target", "location_of", "parse_settings"]
