"""Fleet: every issuer and certificate of a stack, built from its validated config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from .config import SELF_SIGNED, FleetConfig, PrivateCaIssuer
from .managed_certificate import ManagedCertificate
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
        self.managed: dict[str, ManagedCertificate] = {}
        entries: dict[str, Any] = {}
        for cert_name, spec in config.certificates.items():
            managed = ManagedCertificate(cert_name, spec, issuer=self.cas.get(spec.issuer or ""),
                                         base_dir=base_dir, opts=child)
            self.managed[cert_name] = managed
            issuer_label = "upload" if spec.upload else (spec.issuer or SELF_SIGNED)
            entries[cert_name] = managed.inventory_entry(issuer_label, [b.target for b in spec.bindings])
        self.inventory = pulumi.Output.from_input(entries)
        self.certificates = {n: m.download() for n, m in self.managed.items()}
        self.register_outputs({})
