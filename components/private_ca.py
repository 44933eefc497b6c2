"""PrivateCa: a root (and optional intermediate) run by the stack, for internal names (ACM PCA, step-ca)."""

from __future__ import annotations

from typing import Any

import pulumi

from providers.certificate import LocallySignedCertificate, SelfSignedCertificate
from providers.private_key import PrivateKey

from .config import PrivateCaIssuer


class PrivateCa(pulumi.ComponentResource):
    """Outputs for issuing: `cert_pem` and secret `private_key_pem` of the issuing CA (the intermediate when
    there is one), `chain_pem` (what sits above it, minus the root) and `root_cert_pem` for trust stores."""

    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    chain_pem: pulumi.Output[str]
    root_cert_pem: pulumi.Output[str]
    validity_days: int

    def __init__(self, name: str, spec: PrivateCaIssuer, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("certplane:index:PrivateCa", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        common: dict[str, Any] = {"organization": spec.organization, "renew": _renew(spec)}
        constraints = spec.name_constraints.permitted_dns_domains if spec.name_constraints else []
        root_key = PrivateKey(f"{name}-root-key", **spec.key.spec(), opts=child)
        root = SelfSignedCertificate(
            f"{name}-root", key_pem=root_key.private_key_pem, common_name=spec.common_name, is_ca=True,
            validity_days=spec.validity_days, path_length=spec.path_length if not spec.intermediate else None,
            permitted_dns_domains=[] if spec.intermediate else constraints, opts=child, **common,
        )
        self.root_cert_pem = root.cert_pem
        self.validity_days = spec.validity_days
        if spec.intermediate:
            int_key = PrivateKey(f"{name}-intermediate-key", **spec.key.spec(), opts=child)
            intermediate = LocallySignedCertificate(
                f"{name}-intermediate", key_pem=int_key.private_key_pem,
                common_name=f"{spec.common_name} Intermediate"[:64], is_ca=True, path_length=0,
                validity_days=spec.intermediate_validity_days or max(1, spec.validity_days // 2),
                permitted_dns_domains=constraints, ca_cert_pem=root.cert_pem,
                ca_private_key_pem=root_key.private_key_pem, opts=child, **common,
            )
            self.cert_pem = intermediate.cert_pem
            self.private_key_pem = pulumi.Output.secret(int_key.private_key_pem)
            self.chain_pem = intermediate.chain_pem
        else:
            self.cert_pem = root.cert_pem
            self.private_key_pem = pulumi.Output.secret(root_key.private_key_pem)
            self.chain_pem = pulumi.Output.from_input("")
        self.register_outputs({"cert_pem": self.cert_pem, "root_cert_pem": self.root_cert_pem})


def _renew(spec: PrivateCaIssuer) -> dict[str, Any] | None:
    return spec.renew.model_dump(exclude_none=True) if spec.renew else None
