"""Fleet: every issuer and certificate of a stack, built from its validated config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from providers.acme_account import AcmeAccount

from .config import SELF_SIGNED, AcmeIssuer, FleetConfig, PrivateCaIssuer
from .managed_certificate import ManagedCertificate, _path
from .private_ca import PrivateCa


class Fleet(pulumi.ComponentResource):
    inventory: pulumi.Output[dict[str, Any]]
    certificates: dict[str, dict[str, Any]]
    cas: dict[str, PrivateCa]

    def __init__(self, name: str, config: FleetConfig, *, base_dir: Path,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("certplane:index:Fleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cas = {
            issuer_name: PrivateCa(issuer_name, spec, opts=child)
            for issuer_name, spec in config.issuers.items()
            if isinstance(spec, PrivateCaIssuer)
        }
        # One ACME account per ACME issuer, created once and reused by every order of that issuer.
        self.accounts = {
            issuer_name: (spec, AcmeAccount(
                f"{issuer_name}-account", directory_url=spec.directory_url, email=spec.email,
                ca_bundle=_path(spec.ca_bundle, base_dir), eab_kid=spec.eab.kid if spec.eab else None,
                eab_hmac_key=pulumi.Output.secret(spec.eab.hmac_key) if spec.eab else None,
                key=spec.account_key.spec(), opts=child))
            for issuer_name, spec in config.issuers.items()
            if isinstance(spec, AcmeIssuer)
        }
        self.managed: dict[str, ManagedCertificate] = {}
        entries: dict[str, Any] = {}
        for cert_name, spec in config.certificates.items():
            managed = ManagedCertificate(cert_name, spec, ca=self.cas.get(spec.issuer or ""),
                                         acme=self.accounts.get(spec.issuer or ""), targets=config.targets,
                                         base_dir=base_dir, opts=child)
            self.managed[cert_name] = managed
            issuer_label = "upload" if spec.upload else (spec.issuer or SELF_SIGNED)
            entries[cert_name] = managed.inventory_entry(issuer_label, config.targets)
        self.inventory = pulumi.Output.from_input(entries)
        self.certificates = {n: m.download() for n, m in self.managed.items()}
        self.register_outputs({})
