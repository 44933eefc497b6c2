"""Bindings: serve a managed certificate at its configured targets, one CertificateBinding per (certificate,
target). Called from ManagedCertificate with the certificate's dynamic resource."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from providers.binding import CertificateBinding, binding_id
from providers.core import deploy
from providers.core.deploy import TargetSettings

from .config import BindingConfig


def bind(cert_name: str, certificate: Any, bindings: Sequence[BindingConfig], targets: Mapping[str, TargetSettings],
         domains: Any, parent: pulumi.Resource, key_storage: dict[str, Any] | None = None) -> list[CertificateBinding]:
    """The bindings of `cert_name`. Server names default to `domains`: the configured ones (known in every
    preview, so a renewal shows no name change), or an upload's, read from its certificate. A key kept out of
    state (`key_storage`) reaches a binding as its reference, read from the store at deploy."""
    key = ({"private_key_ref": certificate.private_key_ref, "key_storage": key_storage} if key_storage
           else {"private_key_pem": certificate.private_key_pem})
    out = []
    for spec in bindings:
        settings = targets[spec.target]
        out.append(CertificateBinding(
            binding_id(cert_name, spec.target),
            certificate=cert_name, target=spec.target, target_type=deploy.REGISTRY.plugin_of(settings).kind,
            target_settings=settings.wire(), server_names=list(spec.server_names) if spec.server_names else domains,
            sni=spec.sni,
            cert_pem=certificate.cert_pem, chain_pem=certificate.chain_pem,
            **key, keystore_password=certificate.keystore_password,
            opts=pulumi.ResourceOptions(parent=parent),
        ))
    return out


def endpoints(bindings: Sequence[BindingConfig], targets: Mapping[str, TargetSettings],
              domains: Sequence[str]) -> list[dict[str, Any]]:
    """Where a TLS client can check this certificate: every binding whose target terminates TLS itself."""
    out = []
    for spec in bindings:
        target = deploy.build(targets[spec.target])
        if isinstance(target, deploy.ServesTls):
            for endpoint in target.endpoints(spec.server_names or domains):
                out.append({"host": endpoint.host, "port": endpoint.port, "server_name": endpoint.server_name,
                            "target": spec.target})
    return out


def observed_by_api(cert_name: str, bindings: Sequence[BindingConfig], resources: Sequence[CertificateBinding],
                    targets: Mapping[str, TargetSettings], domains: Sequence[str]) -> pulumi.Output[list[dict[str, Any]]]:
    """The bindings whose target does not terminate TLS itself (a load balancer, a CDN, a directory), with what
    `certplane check --probe` needs to ask that target what it holds: its kind, settings (never secret) and the
    live facts the deploy returned (ARNs, ids, paths)."""
    items = []
    for spec, resource in zip(bindings, resources):
        settings = targets[spec.target]
        if isinstance(deploy.build(settings), deploy.ServesTls):
            continue
        fixed = {"binding_id": binding_id(cert_name, spec.target), "target": spec.target,
                 "type": deploy.REGISTRY.plugin_of(settings).kind, "settings": settings.wire(),
                 "server_names": list(spec.server_names or domains), "sni": spec.sni}
        items.append(resource.live.apply(lambda live, fixed=fixed: {**fixed, "live": dict(live or {})}))
    return pulumi.Output.all(*items).apply(list)
