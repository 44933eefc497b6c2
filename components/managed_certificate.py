"""ManagedCertificate: key + issuer + renewal window (+ bindings), rendered in the configured formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from providers.acme_account import AcmeAccount
from providers.acme_certificate import AcmeCertificate
from providers.certificate import LocallySignedCertificate, SelfSignedCertificate
from providers.uploaded_certificate import UploadedCertificate

from .bindings import bind
from .config import SELF_SIGNED, AcmeIssuer, CertificateConfig
from .private_ca import PrivateCa

DEFAULT_VALIDITY_DAYS = 90

# Certificate outputs that are safe to publish (no secrets): the inventory is built from these.
PUBLIC_FIELDS = ("serial", "not_before", "not_after", "renewal_time", "fingerprint_sha256", "key_algorithm",
                 "issuer", "dns_names")


class ManagedCertificate(pulumi.ComponentResource):
    certificate: Any  # the dynamic resource holding the certificate

    def __init__(self, name: str, spec: CertificateConfig, *, base_dir: Path, ca: PrivateCa | None = None,
                 acme: tuple[AcmeIssuer, AcmeAccount] | None = None, targets: dict[str, dict[str, Any]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("certplane:index:ManagedCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.spec = spec
        common: dict[str, Any] = {
            "formats": spec.formats,
            "renew": spec.renew.model_dump(exclude_none=True) if spec.renew else None,
            "keystore_password": pulumi.Output.secret(spec.keystore_password) if spec.keystore_password else None,
        }
        if spec.upload is not None:
            up = spec.upload
            key = up.private_key if up.private_key else (base_dir / up.private_key_file).read_text()  # type: ignore[operator]
            self.certificate = UploadedCertificate(
                name, certificate_pem=(base_dir / up.certificate_file).read_text(),
                chain_pem=(base_dir / up.chain_file).read_text() if up.chain_file else "",
                private_key_pem=key, passphrase=up.passphrase, opts=child, **common,
            )
        else:
            shape: dict[str, Any] = {
                "key": spec.key.spec(), "reuse_key": spec.reuse_key, "dns_names": spec.domains,
                "ip_addresses": spec.ip_addresses, "client_auth": spec.client_auth,
                "common_name": spec.domains[0] if spec.domains else None,
                "validity_days": spec.validity_days or DEFAULT_VALIDITY_DAYS, **common,
            }
            if spec.issuer == SELF_SIGNED:
                self.certificate = SelfSignedCertificate(name, opts=child, **shape)
            elif ca is not None:
                if spec.validity_days is None:
                    shape["validity_days"] = min(DEFAULT_VALIDITY_DAYS, ca.validity_days)
                self.certificate = LocallySignedCertificate(
                    name, ca_cert_pem=ca.cert_pem, ca_private_key_pem=ca.private_key_pem,
                    ca_chain_pem=ca.chain_pem, opts=child, **shape,
                )
            elif acme is not None:
                self.certificate = _acme_certificate(name, spec, *acme, base_dir=base_dir, common=common, opts=child)
            else:
                raise ValueError(f"certificate {name}: issuer {spec.issuer!r} is not supported")
        self.bindings = bind(name, self.certificate, spec.bindings, targets or {}, parent=self, base_dir=base_dir)
        self.register_outputs({"serial": self.certificate.serial})

    def inventory_entry(self, issuer_name: str, targets: dict[str, dict[str, Any]]) -> pulumi.Output[dict[str, Any]]:
        """Plain data for dashboards and other stacks: never a secret. `targets` is `certplane:targets`; TLS
        endpoints (nginx listeners) are listed so `certplane check --probe` can verify what is served."""
        cert = self.certificate
        spec = self.spec

        def build(values: list[Any]) -> dict[str, Any]:
            from providers.core import certificates as x509util
            from providers.core import renewal

            fields = dict(zip(PUBLIC_FIELDS, values))
            not_after = x509util.parse_rfc3339(fields["not_after"])
            days = (not_after - renewal.now()).total_seconds() / 86400
            domains = spec.domains or fields["dns_names"] or []
            return {
                "domains": domains,
                "issuer": issuer_name,
                "issuer_dn": fields["issuer"],
                "serial": fields["serial"],
                "not_before": fields["not_before"],
                "not_after": fields["not_after"],
                "days_remaining": round(days, 1),
                "renewal_time": fields["renewal_time"],
                "fingerprint_sha256": fields["fingerprint_sha256"],
                "key_algorithm": fields["key_algorithm"],
                "targets": [b.target for b in spec.bindings],
                "endpoints": _endpoints(spec, targets, domains),
                "tags": dict(spec.tags),
            }

        return pulumi.Output.all(*[getattr(cert, f) for f in PUBLIC_FIELDS]).apply(build)

    def download(self) -> dict[str, Any]:
        cert = self.certificate
        out: dict[str, Any] = {
            "cert_pem": cert.cert_pem, "chain_pem": cert.chain_pem, "fullchain_pem": cert.fullchain_pem,
            "private_key_pem": pulumi.Output.secret(cert.private_key_pem),
        }
        if "pkcs12" in self.spec.formats:
            out["pkcs12_base64"] = pulumi.Output.secret(cert.pkcs12_base64)
        if "jks" in self.spec.formats:
            out["jks_base64"] = pulumi.Output.secret(cert.jks_base64)
        if "der" in self.spec.formats:
            out["cert_der_base64"] = cert.cert_der_base64
        if {"pkcs12", "jks"} & set(self.spec.formats):
            out["keystore_password"] = pulumi.Output.secret(cert.keystore_password)
        return out


def _endpoints(spec: CertificateConfig, targets: dict[str, dict[str, Any]], domains: list[str]) -> list[dict[str, Any]]:
    """Where a TLS client can check this certificate: each nginx binding's listener, once per server name."""
    out = []
    for binding in spec.bindings:
        target = targets.get(binding.target) or {}
        if target.get("type") != "nginx" or ":" not in str(target.get("listen", "")):
            continue
        host, _, port = str(target["listen"]).rpartition(":")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "*") else host.strip("[]")
        for name in binding.server_names or domains:
            sni = "certplane-probe" + name[1:] if name.startswith("*.") else name  # a name the wildcard covers
            out.append({"host": host, "port": int(port), "server_name": sni, "target": binding.target})
    return out


def _acme_certificate(name: str, spec: CertificateConfig, issuer: AcmeIssuer, account: AcmeAccount, *,
                      base_dir: Path, common: dict[str, Any], opts: pulumi.ResourceOptions) -> AcmeCertificate:
    challenge = spec.challenge or ("dns-01" if issuer.dns else "http-01")
    renew = common["renew"] or (issuer.renew.model_dump(exclude_none=True) if issuer.renew else None)
    return AcmeCertificate(
        name, directory_url=account.directory_url, account_key_pem=account.account_key_pem,
        account_url=account.account_url, domains=spec.domains, challenge=challenge,
        # DNS settings can hold credentials (TSIG secrets, AWS keys): always secret.
        dns=pulumi.Output.secret(issuer.dns) if challenge == "dns-01" else None,
        http01=issuer.http01 if challenge == "http-01" else None,
        key=spec.key.spec(), reuse_key=spec.reuse_key, profile=issuer.profile, renew=renew,
        formats=common["formats"], keystore_password=spec.keystore_password,
        revoke_on_destroy=issuer.revoke_on_destroy, ca_bundle=_path(issuer.ca_bundle, base_dir), opts=opts,
    )


def _path(value: str | None, base_dir: Path) -> str | None:
    return str((base_dir / value).resolve()) if value else None
