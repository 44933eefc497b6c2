"""PrivateCa: the CA hierarchy an issuer runs itself (a root, and optionally an intermediate), one key and one
CA certificate per level, each level signed by the one above; certificates are signed by the last level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from providers import _custody
from providers.certificate import Certificate
from providers.core.issuers import CaLevel, private_ca, self_signed
from providers.private_key import PrivateKey


class PrivateCa(pulumi.ComponentResource):
    """`credentials`: the signing CA as a signer (`private_ca.signer_credentials`) and its key (secret), as the
    private_ca issuer plug-in reads them. `root_cert_pem` for trust stores; `trust` (plain data, no key): every
    level's PEM, fingerprint and expiry, for the stack's `issuers` output."""

    credentials: pulumi.Output[dict[str, Any]]
    root_cert_pem: pulumi.Output[str]
    trust: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, levels: Sequence[CaLevel], *, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("certplane:index:PrivateCa", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        above: pulumi.Output[dict[str, Any]] | None = None
        published: list[pulumi.Output[dict[str, Any]]] = []
        for level in levels:
            storage = _custody.wire(level.key_storage)
            key = PrivateKey(f"{name}-{level.suffix}-key", **level.key.as_dict(), key_storage=storage,  # type: ignore[arg-type]
                             opts=child)
            # A key kept out of state is named by its reference, and read from its store only to sign.
            given = {"key_ref": key.private_key_ref, "key_fingerprint": key.public_key_fingerprint_sha256,
                     "key_storage": storage} if storage \
                else {"key_pem": key.private_key_pem}
            cert = Certificate(
                f"{name}-{level.suffix}", **level.request.wire(), **given,
                renew=level.renew.wire() if level.renew else None,
                issuer_type=private_ca.KIND if above else self_signed.KIND,
                issuer_credentials=pulumi.Output.secret(above) if above else None, opts=child)
            signing = {"ca_key_ref": key.private_key_ref, "ca_key_storage": storage} if storage \
                else {"ca_private_key_pem": key.private_key_pem}
            # What the level below and every certificate it signs carry: the CA as a signer (its name, key
            # identifier, expiry, identity and served chain), never its whole certificate again.
            signer = pulumi.Output.all(cert.cert_pem, cert.chain_pem).apply(
                lambda pems: private_ca.signer_credentials(pems[0], pems[1]))
            above = pulumi.Output.all(signer, pulumi.Output.from_input(signing)).apply(
                lambda parts: {**parts[0], **parts[1]})
            if level is levels[0]:
                self.root_cert_pem = cert.cert_pem
            published.append(pulumi.Output.all(cert.cert_pem, cert.fingerprint_sha256, cert.not_after,
                                               cert.issuer).apply(
                lambda v, suffix=level.suffix: {"level": suffix, "cert_pem": v[0], "fingerprint_sha256": v[1],
                                                "not_after": v[2], "issuer": v[3]}))
        assert above is not None, "a CA hierarchy has at least a root"
        self.credentials = pulumi.Output.secret(above)
        self.trust = pulumi.Output.all(*published).apply(_trust)
        self.register_outputs({"root_cert_pem": self.root_cert_pem})


def _trust(levels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What clients and other stacks need to trust this CA: the root for trust stores, the chain a leaf is served
    with (the levels below the root), and each level's fingerprint and expiry (a CA that expires takes every
    certificate under it down)."""
    return {"type": private_ca.KIND, "root_pem": levels[0]["cert_pem"],
            "chain_pem": "".join(level["cert_pem"] for level in reversed(levels[1:])),
            "levels": [{k: v for k, v in level.items()} for level in levels],
            "not_after": min(level["not_after"] for level in levels)}
