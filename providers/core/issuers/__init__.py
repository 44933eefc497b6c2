"""Issuers: one module per kind (settings, order and credentials models, the issuer, `PLUGIN`), listed once in
`REGISTRY`. `self_signed` needs no block in `certplane:issuers`: a certificate names it directly."""

from __future__ import annotations

from typing import Annotated, Any

from ..plugins import Registry
from . import self_signed
from .base import (AccountRequest, AdvisesRenewal, CaLevel, HasAccount, IssueRequest, Issued, Issuer, IssuerPlugin,
                   IssuerSettings, OrderSettings, Revokes, RunsCa)

REGISTRY: Registry[IssuerPlugin[Any, Any, Any]] = Registry.of_modules(__name__, [
    "private_ca",
    "acme",
    "self_signed",
    "aws_pca",
], noun="issuer type")

SELF_SIGNED = self_signed.KIND

IssuerSettingsField = Annotated[IssuerSettings, REGISTRY.validator(), REGISTRY.serializer()]
"""A `certplane:issuers.<name>` block as a model field (`type` picks the model that validates the rest)."""


__all__ = ["AccountRequest", "AdvisesRenewal", "CaLevel", "HasAccount", "IssueRequest", "Issued", "Issuer",
           "IssuerPlugin", "IssuerSettings", "IssuerSettingsField", "OrderSettings", "REGISTRY", "Revokes", "RunsCa",
           "SELF_SIGNED"]
