"""The resources an issuer needs of its own, created once per `certplane:issuers` entry and shared by its
certificates: what the stack provisions is chosen by the capabilities of the issuer's settings (a CA hierarchy
it runs, an account it registers), never by the issuer's name. An issuer with neither (a cloud CA reached with
settings alone) needs nothing here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from providers.core.issuers import REGISTRY, HasAccount, IssuerPlugin, IssuerSettings, RunsCa

from .private_ca import PrivateCa


@dataclass(frozen=True)
class IssuerHandle:
    """What a certificate needs from its issuer: the plug-in, its settings, and the credentials (a Pulumi
    secret Output) its resources produce, or None."""

    name: str
    plugin: IssuerPlugin[Any, Any, Any]
    settings: IssuerSettings
    credentials: pulumi.Output[dict[str, Any]] | None = None
    ca: PrivateCa | None = None


def provision(name: str, settings: IssuerSettings, *, parent: pulumi.Resource) -> IssuerHandle:
    plugin = REGISTRY.plugin_of(settings)
    child = pulumi.ResourceOptions(parent=parent)
    if isinstance(settings, RunsCa):
        ca = PrivateCa(name, settings.levels(), opts=child)
        return IssuerHandle(name, plugin, settings, ca.credentials, ca)
    if isinstance(settings, HasAccount):
        # Imported here: the account's provider brings the ACME client (requests, josepy, dnspython; ~0.2 s)
        # into every program, and a stack without an ACME issuer has no use for it.
        from providers.acme_account import AcmeAccount

        request = settings.account()
        # An existing account's key (a secret, like eab_hmac_key): only when given, so an account of the stack's
        # own keeps exactly the inputs it had (no diff on upgrade).
        key_pem = getattr(request, "key_pem", None)
        shared = {"account_key_pem": key_pem, "shared": True} if key_pem else {}
        account = AcmeAccount(
            f"{name}-account", directory_url=request.directory_url, email=request.email,
            ca_bundle=request.ca_bundle, eab_kid=request.eab_kid, eab_hmac_key=request.eab_hmac_key,
            key=request.key.as_dict(), **shared, opts=child)
        credentials = pulumi.Output.all(account.account_key_pem, account.account_url).apply(
            lambda values: {"account_key_pem": values[0], "account_url": values[1]})
        return IssuerHandle(name, plugin, settings, pulumi.Output.secret(credentials))
    return IssuerHandle(name, plugin, settings)
