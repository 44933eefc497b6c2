"""PrivateCa: the CA hierarchy an issuer runs itself (a root, and optionally an intermediate), one key and one
CA certificate per level, each level signed by the one above; certificates are signed by the last level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from providers.certificate import Certificate
from providers.core.issuers import CaLevel, private_ca, self_signed
from providers.private_key import PrivateKey


class PrivateCa(pulumi.ComponentResource):
    """`credentials`: the signing CA's certificate, key (secret) and chain above it, as the private_ca issuer
    plug-in reads them. `root_cert_pem` for trust stores."""

    credentials: pulumi.Output[dict[str, Any]]
    root_cert_pem: pulumi.Output[str]

    def __init__(self, name: str, levels: Sequence[CaLevel], *, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("certplane:index:PrivateCa", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        above: dict[str, Any] | None = None
        for level in levels:
            key = PrivateKey(f"{name}-{level.suffix}-key", **level.key.as_dict(), opts=child)  # type: ignore[arg-type]
            cert = Certificate(
                f"{name}-{level.suffix}", **level.request.wire(), key_pem=key.private_key_pem,
                renew=level.renew.wire() if level.renew else None,
                issuer_type=private_ca.KIND if above else self_signed.KIND,
                issuer_credentials=pulumi.Output.secret(above) if above else None, opts=child)
            above = {"ca_cert_pem": cert.cert_pem, "ca_private_key_pem": key.private_key_pem,
                     "ca_chain_pem": cert.chain_pem}
            if level is levels[0]:
                self.root_cert_pem = cert.cert_pem
        assert above is not None, "a CA hierarchy has at least a root"
        self.credentials = pulumi.Output.secret(above)
        self.register_outputs({"root_cert_pem": self.root_cert_pem})
