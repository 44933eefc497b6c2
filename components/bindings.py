"""Bindings: serve a managed certificate at its configured targets, one CertificateBinding per (certificate,
target). Called from ManagedCertificate with the certificate's dynamic resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from providers.binding import CertificateBinding, binding_id

from .config import BindingConfig
from .targets import resolve_target


def bind(cert_name: str, certificate: Any, bindings: list[BindingConfig], targets: dict[str, dict[str, Any]],
         parent: pulumi.Resource, base_dir: Path | None = None) -> list[CertificateBinding]:
    """Create the bindings of `cert_name`. `certificate` has outputs cert_pem, chain_pem, private_key_pem,
    fingerprint_sha256 (and dns_names, keystore_password when available); `targets` is the raw
    `certplane:targets` mapping. Server names default to the certificate's DNS names; relative paths in target
    settings are relative to `base_dir` (default: the current directory, which is the Pulumi project's)."""
    root = base_dir or Path.cwd()
    out = []
    for spec in bindings:
        raw = targets.get(spec.target)
        if raw is None:
            raise ValueError(f"certificate {cert_name}: binding to unknown target {spec.target!r}")
        kind, settings = resolve_target(raw, root)
        names: Any = list(spec.server_names) if spec.server_names else getattr(certificate, "dns_names", [])
        password = getattr(certificate, "keystore_password", None)
        out.append(CertificateBinding(
            binding_id(cert_name, spec.target),
            certificate=cert_name, target=spec.target, target_type=kind, target_settings=settings,
            server_names=names, sni=spec.sni,
            cert_pem=certificate.cert_pem, chain_pem=certificate.chain_pem,
            private_key_pem=pulumi.Output.secret(certificate.private_key_pem),
            fingerprint_sha256=certificate.fingerprint_sha256,
            keystore_password=pulumi.Output.secret(password) if password is not None else None,
            opts=pulumi.ResourceOptions(parent=parent),
        ))
    return out
