"""ManagedCertificate: one `certplane:certificates` entry: the certificate (from its issuer, or uploaded), its
bindings, its inventory entry and its downloads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from providers import _custody
from providers.certificate import Certificate
from providers.core import clock
from providers.core.deploy import TargetSettings
from providers.core.validation import SECRET, marked
from providers.uploaded_certificate import UploadedCertificate

from ._sealed import Sealed, seal, unseal
from .bindings import bind, endpoints, observed_by_api
from .config import CertificateConfig
from .issuers import IssuerHandle

# Certificate outputs that are safe to publish (no secrets): the inventory is built from these.
PUBLIC_FIELDS = ("serial", "not_before", "not_after", "renewal_time", "fingerprint_sha256", "key_algorithm",
                 "issuer", "dns_names")


class ManagedCertificate(pulumi.ComponentResource):
    certificate: Any  # the dynamic resource holding the certificate

    def __init__(self, name: str, spec: CertificateConfig, *, base_dir: Path, issuer: IssuerHandle | None,
                 targets: Mapping[str, TargetSettings], policy_facts: Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("certplane:index:ManagedCertificate", name, None, opts)
        self.cert_name = name
        child = pulumi.ResourceOptions(parent=self)
        self.spec = spec
        # the root of a private CA: what a leaf served alone (a CA without an intermediate) is checked against
        self.root_cert_pem = issuer.ca.root_cert_pem if issuer is not None and issuer.ca is not None else None
        common: dict[str, Any] = {
            "formats": list(spec.formats), "renew": spec.renew.wire() if spec.renew else None,
            "keystore_password": spec.keystore_password,
            # What the policy pack checks that the certificate itself does not carry (never a secret).
            "policy_facts": dict(policy_facts or {}),
        }
        if spec.upload is not None:
            up = spec.upload
            key = up.private_key if up.private_key else (base_dir / str(up.private_key_file)).read_text()
            self.certificate = UploadedCertificate(
                name, certificate_pem=(base_dir / up.certificate_file).read_text(),
                chain_pem=(base_dir / up.chain_file).read_text() if up.chain_file else "",
                private_key_pem=key, passphrase=up.passphrase, opts=child, **common)
            domains: Any = self.certificate.dns_names  # from the file: known once the bundle is checked
        else:
            assert issuer is not None, "config validation names every certificate's issuer"
            self.certificate = _issued(name, spec, issuer, common, child)
            domains = list(spec.domains)
        self.key_storage = _custody.wire(spec.key_storage) if spec.upload is None else None
        self.bindings = bind(name, self.certificate, spec.bindings, targets, domains, parent=self,
                             key_storage=self.key_storage)
        # Registered, and with nothing: the engine skips the checkpoint rewrite of a component whose outputs did
        # not change (pulumi/pulumi#15976), and a `serial` here changed with every issuance, so each certificate
        # created or renewed cost one more rewrite of the whole checkpoint (create at N=100: 15.2 -> 11.1 s).
        # Nothing read it; the certificate resource and the inventory carry the serial.
        self.register_outputs({})

    def inventory_entry(self, issuer_name: str, targets: Mapping[str, TargetSettings]) -> pulumi.Output[Sealed]:
        """Plain data for dashboards and other stacks: never a secret. TLS endpoints (targets that terminate TLS
        themselves) and the other bindings (targets to ask through their API) are listed so `certplane check
        --probe` can verify what is served. Sealed (components/_sealed.py): the fleet gathers every entry into
        the `inventory` output without the SDK lifting each field into an Output of its own."""
        from providers.core import certificates as x509util

        spec = self.spec

        def parsed(pem: str | None) -> list[Any]:
            try:
                return x509util.load_certificates(pem or "")
            except ValueError:
                return []

        def earliest_expiry(leaf_not_after: str, leaf: list[Any], chain: list[Any]) -> tuple[str, str | None]:
            """(RFC 3339 not_after, subject) of the certificate that expires first among the leaf (its
            `not_after` output) and its served chain; the leaf wins a tie. What does not parse is skipped (the
            leaf's expiry stands, with no subject when the leaf's PEM does not parse)."""
            earliest = clock.parse_rfc3339(leaf_not_after)
            subject = (leaf[0].subject.rfc4514_string() or None) if leaf else None
            for cert in chain:
                if cert.not_valid_after_utc < earliest:
                    earliest, subject = cert.not_valid_after_utc, cert.subject.rfc4514_string() or None
            return clock.rfc3339(earliest), subject

        def build(values: list[Any]) -> dict[str, Any]:
            fields = dict(zip(PUBLIC_FIELDS, values[:-4]))
            cert_pem, chain_pem, root_pem, placements = *values[-4:-1], unseal(values[-1])
            leaf, chain = parsed(cert_pem)[:1], parsed(chain_pem)
            chain_not_after, chain_subject = earliest_expiry(fields["not_after"], leaf, chain)
            days = clock.days_between(clock.now(), clock.parse_rfc3339(chain_not_after))
            domains = list(spec.domains or fields["dns_names"] or [])
            root = parsed(root_pem)[:1]
            served = (x509util.verified_bundle_digest(leaf + chain, domains, anchor=root[0] if root else None)
                      if leaf else None)
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
                "endpoints": endpoints(spec.bindings, targets, domains),
                "bindings": placements,
                "tags": dict(spec.tags),
                # the served chain stops working when its first certificate expires (an intermediate may
                # expire before the leaf): days_remaining counts to it
                "chain_not_after": chain_not_after,
                "chain_earliest_subject": chain_subject,
                # what a TLS endpoint serving this certificate sends (leaf, chain), checked here: `check --probe`
                # accepts exactly these bytes without checking them again
                **({"served_sha256": served} if served else {}),
            }

        domains = list(spec.domains) or self.certificate.dns_names
        placed = pulumi.Output.from_input(domains).apply(
            lambda names: seal(observed_by_api(self.cert_name, spec.bindings, self.bindings, targets,
                                               list(names or []))))
        return seal(pulumi.Output.all(*[getattr(self.certificate, f) for f in PUBLIC_FIELDS],
                                      self.certificate.cert_pem, self.certificate.chain_pem, self.root_cert_pem,
                                      placed).apply(build))

    def download(self) -> dict[str, Any]:
        cert = self.certificate
        out: dict[str, Any] = {"cert_pem": cert.cert_pem, "chain_pem": cert.chain_pem,
                               "fullchain_pem": cert.fullchain_pem}
        if self.key_storage:  # kept out of state: where it is, never the key
            out["private_key_ref"] = cert.private_key_ref
        else:
            out["private_key_pem"] = pulumi.Output.secret(cert.private_key_pem)
        if "pkcs12" in self.spec.formats:
            out["pkcs12_base64"] = pulumi.Output.secret(cert.pkcs12_base64)
        if "jks" in self.spec.formats:
            out["jks_base64"] = pulumi.Output.secret(cert.jks_base64)
        if "der" in self.spec.formats:
            out["cert_der_base64"] = cert.cert_der_base64
        if {"pkcs12", "jks"} & set(self.spec.formats):
            out["keystore_password"] = pulumi.Output.secret(cert.keystore_password)
        return out


def _issued(name: str, spec: CertificateConfig, issuer: IssuerHandle, common: dict[str, Any],
            opts: pulumi.ResourceOptions) -> Certificate:
    """The certificate from its issuer's plug-in: the request, and the issuer's order for it, split into plain
    and secret settings so a reviewer reads the plain ones in a preview."""
    plugin = issuer.plugin
    request = spec.request(plugin.default_validity_days(issuer.settings))
    renew = spec.renew or plugin.default_renewal(issuer.settings)
    order = plugin.order_for(issuer.settings, issuer=issuer.name, challenge=spec.challenge).wire()
    secret = set(marked(plugin.order, SECRET))
    return Certificate(
        name, **request.wire(), **_key_inputs(spec),
        **{**common, "renew": renew.wire() if renew else None}, reissue_before=spec.reissue_before,
        issuer_type=plugin.kind,
        issuer_settings={k: v for k, v in order.items() if k not in secret},
        issuer_secrets={k: v for k, v in order.items() if k in secret} or None,
        issuer_credentials=issuer.credentials, opts=opts)


def _key_inputs(spec: CertificateConfig) -> dict[str, Any]:
    """What the certificate is told about its key: a CSR (and the key, a secret, when given with it), or the
    key to make, whether to keep it across renewals, and where it is kept (only when out of state, so a
    certificate keeping its key in state carries exactly the inputs it had before key storage existed)."""
    if spec.csr is not None:
        given = {"key_pem": pulumi.Output.secret(spec.csr.private_key)} if spec.csr.private_key else {}
        return {"csr_pem": spec.csr.pem, "key": None, **given}
    storage = _custody.wire(spec.key_storage)
    return {"key": spec.key.as_dict(), "reuse_key": spec.reuse_key, **({"key_storage": storage} if storage else {})}
