"""alibaba_slb: upload the bundle to Certificate Management Service (CAS `UploadUserCertificate`), register it
with Server Load Balancer (`UploadServerCertificate` by AliCloudCertificateId) and bind it to an HTTPS listener
(`SetLoadBalancerHTTPSListenerAttribute` ServerCertificateId) or, for SNI, to per-domain extensions.

Uses the official Tea SDKs (alibabacloud_cas20200407, alibabacloud_slb20140515; access and errors: _alibaba.py,
which also says how it is tested: against a local stub, no emulator exists). CAS has no re-import into the
same id, so renewal uploads anew, re-points the listener, then retires the previous certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from ..certificates import fingerprint_of_pem
from ..errors import DeployError, InvalidInputError
from ..validation import LOCATION, whole_number
from . import _alibaba, base
from ._alibaba import AlibabaAccess
from .base import DEFAULT, Binding, Bundle, TargetPlugin, TargetSettings

KIND = "alibaba_slb"


class AlibabaSlbSettings(TargetSettings, AlibabaAccess):
    """load_balancer_id, listener_port; optional endpoint (both APIs, e.g. a local stub), cas_endpoint,
    slb_endpoint; access (region, protocol, timeout_ms): _alibaba.AlibabaAccess."""

    load_balancer_id: Annotated[str, LOCATION]
    listener_port: Annotated[int, LOCATION, whole_number(1, 65535)]
    endpoint: Annotated[str | None, LOCATION] = None
    cas_endpoint: Annotated[str | None, LOCATION] = None
    slb_endpoint: Annotated[str | None, LOCATION] = None


class AlibabaSlbTarget(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: AlibabaSlbSettings) -> None:
        self.access = settings
        self.region = settings.region
        self.load_balancer_id = settings.load_balancer_id
        self.listener_port = settings.listener_port
        self.cas_endpoint = settings.cas_endpoint or settings.endpoint
        self.slb_endpoint = settings.slb_endpoint or settings.endpoint

    def check_binding(self, binding: Binding) -> None:
        if binding.sni and not binding.server_names:
            raise InvalidInputError("server_names", "an SNI binding on SLB needs the domains to extend")

    # --- clients, created per call ----------------------------------------------------------------------------

    def _config(self, endpoint: str | None) -> Any:
        return _alibaba.config(self.access, endpoint)

    def _cas(self, action: str, request: Callable[[Any], Any], call: Callable[[Any, Any], Any]) -> dict[str, Any]:
        from alibabacloud_cas20200407 import models  # type: ignore[import-untyped]
        from alibabacloud_cas20200407.client import Client  # type: ignore[import-untyped]

        return _alibaba.invoke(KIND, action, lambda: call(Client(self._config(self.cas_endpoint)), request(models)))

    def _slb(self, action: str, request: Callable[[Any], Any], call: Callable[[Any, Any], Any]) -> dict[str, Any]:
        from alibabacloud_slb20140515 import models  # type: ignore[import-untyped]
        from alibabacloud_slb20140515.client import Client  # type: ignore[import-untyped]

        return _alibaba.invoke(KIND, action, lambda: call(Client(self._config(self.slb_endpoint)), request(models)))

    # --- the verbs -------------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        self.check_binding(binding)
        old = dict(binding.live)
        name = f"certplane-{binding.binding_id}-{bundle.fingerprint_sha256.replace(':', '')[:12].lower()}"[:64]
        cert_id = self._cas("UploadUserCertificate", lambda m: m.UploadUserCertificateRequest(
            name=name, cert=bundle.fullchain_pem, key=bundle.key_pem),
            lambda c, r: c.upload_user_certificate(r))["CertId"]
        server_cert_id = self._slb("UploadServerCertificate", lambda m: m.UploadServerCertificateRequest(
            region_id=self.region, ali_cloud_certificate_id=str(cert_id), ali_cloud_certificate_name=name,
            ali_cloud_certificate_region_id=self.region),
            lambda c, r: c.upload_server_certificate(r))["ServerCertificateId"]
        replaced = old.get("replaced_server_certificate_id")
        if binding.sni:
            self._bind_domains(binding, server_cert_id)
        else:
            current = self._listener_certificate()
            if replaced is None and current and current != old.get("server_certificate_id"):
                replaced = current
            self._set_listener_certificate(server_cert_id)
        previous = None  # kept until the new one is verified (retire), so a rollback can point back at it
        if old.get("server_certificate_id") and old["server_certificate_id"] != server_cert_id:
            previous = {"server_certificate_id": old["server_certificate_id"], "cert_id": old.get("cert_id")}
        return {"cert_id": cert_id, "server_certificate_id": server_cert_id, "region": self.region,
                "load_balancer_id": self.load_balancer_id, "listener_port": self.listener_port,
                "replaced_server_certificate_id": replaced, "superseded": previous,
                "stale": list(old.get("stale") or [])}

    def retire(self, binding: Binding) -> dict[str, Any]:
        """Delete what the verified deploy superseded (and anything left from before) where SLB and CAS let us."""
        live = dict(binding.live)
        left = []
        for item in [*(live.get("stale") or []), *([live["superseded"]] if live.get("superseded") else [])]:
            try:
                self._retire(str(item["server_certificate_id"]), item.get("cert_id"))
            except DeployError:
                left.append(item)
        return {**live, "superseded": None, "stale": left}

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """Point the listener (or the SNI domains) back at the certificate the failed deploy superseded, which
        is still registered, then retire the new one; a first deploy is removed."""
        superseded = binding.live.get("superseded")
        if previous is None or not superseded:
            if previous is None:
                self.remove(binding)
            return
        back = str(superseded["server_certificate_id"])
        if binding.sni:
            self._bind_domains(binding, back)
        else:
            self._set_listener_certificate(back)
        ours = str(binding.live.get("server_certificate_id") or "")
        if ours and ours != back:
            try:
                self._retire(ours, binding.live.get("cert_id"))
            except DeployError:
                pass  # registered but unused: clutter, not a served certificate

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        ours = str(binding.live.get("server_certificate_id") or "")
        bound = self._bound(binding)
        for where, sc_id in bound.items():
            if sc_id != ours:
                raise DeployError(f"alibaba_slb: {self._where(where)} uses server certificate {sc_id or 'none'}, "
                                  f"expected {ours}")
        got = self._cas_fingerprint(binding.live.get("cert_id"))
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"alibaba_slb: CAS certificate {binding.live.get('cert_id')} holds "
                              f"{got or 'no certificate'}, expected {bundle.fingerprint_sha256}")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        ours = str(binding.live.get("server_certificate_id") or "")
        out: dict[str, str | None] = {}
        for where, sc_id in self._bound(binding).items():
            if not sc_id:
                out[where] = None
            elif sc_id == ours:
                out[where] = self._cas_fingerprint(binding.live.get("cert_id"))
            else:
                out[where] = self._cas_fingerprint(self._cas_id_of(sc_id))
        return out

    def remove(self, binding: Binding) -> None:
        ours = str(binding.live.get("server_certificate_id") or "")
        if not ours:
            return
        if binding.sni:
            for ext in self._domain_extensions():
                if ext.get("ServerCertificateId") == ours and ext.get("Domain") in binding.server_names:
                    self._slb("DeleteDomainExtension", lambda m: m.DeleteDomainExtensionRequest(
                        region_id=self.region, domain_extension_id=ext["DomainExtensionId"]),
                        lambda c, r: c.delete_domain_extension(r))
        elif self._listener_certificate() == ours:
            fallback = binding.live.get("replaced_server_certificate_id")
            if not fallback:
                raise DeployError(f"alibaba_slb: {ours} is the certificate of {self._where(DEFAULT)} and there is "
                                  "no earlier certificate to restore; bind another certificate first")
            self._set_listener_certificate(str(fallback))
        self._retire(ours, binding.live.get("cert_id"))
        self.retire(binding)  # whatever an unverified or interrupted deploy left registered

    # --- mechanics ------------------------------------------------------------------------------------------

    def _where(self, key: str) -> str:
        listener = f"listener {self.load_balancer_id}:{self.listener_port}"
        return listener if key == DEFAULT else f"{listener} domain {key}"

    def _listener_certificate(self) -> str | None:
        body = self._slb("DescribeLoadBalancerHTTPSListenerAttribute",
                         lambda m: m.DescribeLoadBalancerHTTPSListenerAttributeRequest(
                             region_id=self.region, load_balancer_id=self.load_balancer_id,
                             listener_port=self.listener_port),
                         lambda c, r: c.describe_load_balancer_httpslistener_attribute(r))
        return str(body.get("ServerCertificateId") or "") or None

    def _set_listener_certificate(self, server_cert_id: str) -> None:
        self._slb("SetLoadBalancerHTTPSListenerAttribute", lambda m: m.SetLoadBalancerHTTPSListenerAttributeRequest(
            region_id=self.region, load_balancer_id=self.load_balancer_id, listener_port=self.listener_port,
            server_certificate_id=server_cert_id), lambda c, r: c.set_load_balancer_httpslistener_attribute(r))

    def _domain_extensions(self) -> list[dict[str, Any]]:
        body = self._slb("DescribeDomainExtensions", lambda m: m.DescribeDomainExtensionsRequest(
            region_id=self.region, load_balancer_id=self.load_balancer_id, listener_port=self.listener_port),
            lambda c, r: c.describe_domain_extensions(r))
        return list((body.get("DomainExtensions") or {}).get("DomainExtension") or [])

    def _bind_domains(self, binding: Binding, server_cert_id: str) -> None:
        existing = {e.get("Domain"): e for e in self._domain_extensions()}
        for domain in binding.server_names:
            ext = existing.get(domain)
            if ext is None:
                self._slb("CreateDomainExtension", lambda m: m.CreateDomainExtensionRequest(
                    region_id=self.region, load_balancer_id=self.load_balancer_id, listener_port=self.listener_port,
                    domain=domain, server_certificate_id=server_cert_id), lambda c, r: c.create_domain_extension(r))
            elif ext.get("ServerCertificateId") != server_cert_id:
                self._slb("SetDomainExtensionAttribute", lambda m: m.SetDomainExtensionAttributeRequest(
                    region_id=self.region, domain_extension_id=ext["DomainExtensionId"],
                    server_certificate_id=server_cert_id), lambda c, r: c.set_domain_extension_attribute(r))

    def _bound(self, binding: Binding) -> dict[str, str | None]:
        """Where the binding should be served -> the server certificate id found there."""
        if not binding.sni:
            return {DEFAULT: self._listener_certificate()}
        by_domain = {e.get("Domain"): e.get("ServerCertificateId") for e in self._domain_extensions()}
        return {d: (str(by_domain[d]) if by_domain.get(d) else None) for d in binding.server_names}

    def _cas_id_of(self, server_cert_id: str) -> Any:
        body = self._slb("DescribeServerCertificates", lambda m: m.DescribeServerCertificatesRequest(
            region_id=self.region, server_certificate_id=server_cert_id),
            lambda c, r: c.describe_server_certificates(r))
        certs = (body.get("ServerCertificates") or {}).get("ServerCertificate") or []
        return certs[0].get("AliCloudCertificateId") if certs else None

    def _cas_fingerprint(self, cert_id: Any) -> str | None:
        if not cert_id:
            return None
        body = self._cas("GetUserCertificateDetail", lambda m: m.GetUserCertificateDetailRequest(
            cert_id=int(cert_id), cert_filter=True), lambda c, r: c.get_user_certificate_detail(r))
        return fingerprint_of_pem(body.get("Cert"))

    def _retire(self, server_cert_id: str, cert_id: Any) -> None:
        """Delete a certificate no listener uses any more: the SLB copy first, then the CAS original."""
        self._slb("DeleteServerCertificate", lambda m: m.DeleteServerCertificateRequest(
            region_id=self.region, server_certificate_id=server_cert_id),
            lambda c, r: c.delete_server_certificate(r))
        if cert_id:
            self._cas("DeleteUserCertificate", lambda m: m.DeleteUserCertificateRequest(cert_id=int(cert_id)),
                      lambda c, r: c.delete_user_certificate(r))


PLUGIN = TargetPlugin(KIND, AlibabaSlbSettings, AlibabaSlbTarget)
