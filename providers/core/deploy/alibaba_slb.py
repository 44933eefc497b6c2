"""alibaba_slb: upload the bundle to Certificate Management Service (CAS `UploadUserCertificate`), register it
with Server Load Balancer (`UploadServerCertificate` by AliCloudCertificateId) and bind it to an HTTPS listener
(`SetLoadBalancerHTTPSListenerAttribute` ServerCertificateId) or, for SNI, to per-domain extensions.

Uses the official Tea SDKs (alibabacloud_cas20200407, alibabacloud_slb20140515; access and errors: _alibaba.py,
which also says how it is tested: against a local stub, no emulator exists). CAS has no re-import into the
same id, so renewal uploads anew, re-points the listener, then retires the previous certificate.

Ids in state stay true: the certificate a renewal replaces is deleted only once the new one is verified
(retire), and what could not be deleted yet is kept as just the part that is left (`stale`). A deploy that
fails before the listener took the new certificate deletes what it uploaded (the key with it) and says nothing
was changed; one that fails after hands the rollback the ids of what it did (errors.DeployFailed). A
rollback reads the listener back and raises unless the previous certificate is where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from ..certificates import fingerprint_of_pem
from ..errors import DeployError, DeployFailed, InvalidInputError
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

    def endpoints(self) -> dict[str, str | None]:
        return {"cas_endpoint" if self.cas_endpoint else "endpoint": self.cas_endpoint or self.endpoint,
                "slb_endpoint" if self.slb_endpoint else "endpoint": self.slb_endpoint or self.endpoint}


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
        try:
            cert_id = self._cas("UploadUserCertificate", lambda m: m.UploadUserCertificateRequest(
                name=name, cert=bundle.fullchain_pem, key=bundle.key_pem),
                lambda c, r: c.upload_user_certificate(r))["CertId"]
        except DeployError as err:
            raise DeployFailed(str(err), nothing_changed=True) from None
        server_cert_id: str | None = None
        try:
            server_cert_id = str(self._slb("UploadServerCertificate", lambda m: m.UploadServerCertificateRequest(
                region_id=self.region, ali_cloud_certificate_id=str(cert_id), ali_cloud_certificate_name=name,
                ali_cloud_certificate_region_id=self.region),
                lambda c, r: c.upload_server_certificate(r))["ServerCertificateId"])
            extensions = self._domain_extensions() if binding.sni else []
            before = self._bound(binding, extensions)  # what each place used before: a rollback puts it back
        except DeployError as err:
            raise self._dropped(server_cert_id, cert_id, err) from None
        replaced = old.get("replaced_server_certificate_id")
        current = before.get(DEFAULT)
        if not binding.sni and replaced is None and current and current != old.get("server_certificate_id"):
            replaced = current
        superseded = None  # kept until the new one is verified (retire), so a rollback can point back at it
        if old.get("server_certificate_id") and old["server_certificate_id"] != server_cert_id:
            superseded = {"server_certificate_id": old["server_certificate_id"], "cert_id": old.get("cert_id")}
        stale = [*(old.get("stale") or []), *([old["superseded"]] if old.get("superseded") else [])]
        live = {"cert_id": cert_id, "server_certificate_id": server_cert_id, "region": self.region,
                "load_balancer_id": self.load_balancer_id, "listener_port": self.listener_port,
                "replaced_server_certificate_id": replaced, "superseded": superseded, "stale": stale,
                "bound_before": before}
        try:
            if binding.sni:
                self._bind_domains(binding, server_cert_id, extensions)
            else:
                self._set_listener_certificate(server_cert_id)
        except DeployError as err:
            raise self._failed_bind(binding, live, before, err) from None
        return live

    def _failed_bind(self, binding: Binding, live: dict[str, Any], before: dict[str, str | None],
                     err: DeployError) -> DeployFailed:
        """Read the listener back: as it was -> delete what was uploaded, nothing changed; else (or unreadable)
        -> the ids of what the deploy did, for the rollback."""
        try:
            unchanged = self._bound(binding) == before
        except DeployError:
            unchanged = False
        if not unchanged:
            return DeployFailed(str(err), live=live)
        return self._dropped(str(live["server_certificate_id"]), live["cert_id"], err)

    def _dropped(self, server_cert_id: str | None, cert_id: Any, err: DeployError) -> DeployFailed:
        """A deploy failed before the listener took what it uploaded: delete the upload (and the key with it)."""
        left = self._retire(server_cert_id, cert_id)
        if left is None:
            return DeployFailed(str(err), nothing_changed=True)
        what = " and ".join(f"{label} {left[key]}" for key, label in (("server_certificate_id", "server certificate"),
                                                                        ("cert_id", "CAS certificate")) if left[key])
        return DeployFailed(f"{err}; what it uploaded could not be deleted ({left['error']}): delete {what} by hand",
                            nothing_changed=True)

    def retire(self, binding: Binding) -> dict[str, Any]:
        """Delete what the verified deploy superseded (and anything left from before) where SLB and CAS let us;
        what is left is kept as just the part that is still there."""
        live = dict(binding.live)
        left = []
        for item in [*(live.get("stale") or []), *([live["superseded"]] if live.get("superseded") else [])]:
            rest = self._retire(item.get("server_certificate_id"), item.get("cert_id"))
            if rest is not None:
                left.append({"server_certificate_id": rest["server_certificate_id"], "cert_id": rest["cert_id"]})
        return {**live, "superseded": None, "stale": left, "bound_before": None}

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """Point the listener (or the SNI domains) back at the certificate the failed deploy superseded, which
        is still registered (a domain the deploy added loses its extension again), read it back, then retire
        the new one; a first deploy is removed (its SNI domains first back on what they used before). Raises,
        saying what is live, unless the read-back confirms it."""
        live = binding.live
        ours = str(live.get("server_certificate_id") or "")
        superseded = live.get("superseded")
        before: dict[str, Any] = dict(live.get("bound_before") or {})
        if previous is None and not (binding.sni and before):
            self.remove(binding)
            return
        if previous is None:  # a new SNI binding: each domain back on what it used before (none: no extension)
            try:
                self._put_back(binding, before)
                now = self._bound(binding)
            except DeployError as err:
                raise DeployError(f"{err}; {self._left(binding, before, ours)}") from None
            if any(now.get(w) != sc_id for w, sc_id in before.items()):
                raise DeployError(self._unconfirmed(now, before, ours))
            self.remove(binding)  # nothing uses ours now: this deletes it (and what was left from before)
            return
        back = str(superseded["server_certificate_id"]) if superseded else None
        if not back and not before:
            return  # nothing this deploy is known to have changed
        # the listener goes back on the superseded certificate, a domain on what it used before (none: no extension)
        want = {w: (back if back and (w == DEFAULT or sc_id == back) else sc_id) for w, sc_id in before.items()} \
            if before else ({d: back for d in binding.server_names} if binding.sni else {DEFAULT: back})
        try:
            self._put_back(binding, want)
            now = self._bound(binding)
        except DeployError as err:
            raise DeployError(f"{err}; {self._left(binding, want, ours)}") from None
        if any(now.get(w) != sc_id for w, sc_id in want.items()):
            raise DeployError(self._unconfirmed(now, want, ours))
        if superseded:
            got = self._cas_fingerprint(superseded.get("cert_id"))
            if got != previous.fingerprint_sha256:
                raise DeployError(f"alibaba_slb: after the rollback, CAS certificate {superseded.get('cert_id')} holds "
                                  f"{got or 'no certificate'}, not the previous certificate "
                                  f"{previous.fingerprint_sha256}; run `pulumi up` again")
        left = self._retire(ours, live.get("cert_id")) if ours and ours != back else None
        if left is not None:  # unused, but it holds a key: say so rather than leave it unnoticed
            raise DeployError(f"alibaba_slb: the previous certificate is back, but the new upload could not be deleted "
                              f"({left['error']}): delete server certificate {left['server_certificate_id'] or '-'} "
                              f"and CAS certificate {left['cert_id'] or '-'} by hand")

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
        left = self._retire(ours, binding.live.get("cert_id"))
        if left is not None:
            raise DeployError(str(left["error"]))
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

    def _bind_domains(self, binding: Binding, server_cert_id: str, extensions: list[dict[str, Any]]) -> None:
        existing = {e.get("Domain"): e for e in extensions}
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

    def _put_back(self, binding: Binding, want: dict[str, str | None]) -> None:
        """Each place back on the server certificate in `want`; a domain that had none loses its extension."""
        if DEFAULT in want and not binding.sni:
            if want[DEFAULT] and self._listener_certificate() != want[DEFAULT]:
                self._set_listener_certificate(str(want[DEFAULT]))
            return
        for ext in self._domain_extensions():
            domain = ext.get("Domain")
            if domain not in want or ext.get("ServerCertificateId") == want[domain]:
                continue
            if want[domain] is None:
                self._slb("DeleteDomainExtension", lambda m: m.DeleteDomainExtensionRequest(
                    region_id=self.region, domain_extension_id=ext["DomainExtensionId"]),
                    lambda c, r: c.delete_domain_extension(r))
            else:
                self._slb("SetDomainExtensionAttribute", lambda m: m.SetDomainExtensionAttributeRequest(
                    region_id=self.region, domain_extension_id=ext["DomainExtensionId"],
                    server_certificate_id=want[domain]), lambda c, r: c.set_domain_extension_attribute(r))

    def _left(self, binding: Binding, want: dict[str, str | None], ours: str) -> str:
        try:
            return self._unconfirmed(self._bound(binding), want, ours)
        except DeployError as err:
            return (f"alibaba_slb: what {self._where(DEFAULT)} uses after the rollback could not be read back ({err}): "
                    "check it, then run `pulumi up` again")

    def _unconfirmed(self, now: dict[str, str | None], want: dict[str, str | None], ours: str) -> str:
        wrong = [f"{self._where(w)} uses {now.get(w) or 'none'}{' (certplane new certificate)' if now.get(w) == ours else ''}"
                 f", not {sc_id or 'none'}" for w, sc_id in sorted(want.items()) if now.get(w) != sc_id]
        return (f"alibaba_slb: after the rollback, {'; '.join(wrong)}: set it back by hand, or run `pulumi up` "
                "again")

    def _bound(self, binding: Binding, extensions: list[dict[str, Any]] | None = None) -> dict[str, str | None]:
        """Where the binding should be served -> the server certificate id found there."""
        if not binding.sni:
            return {DEFAULT: self._listener_certificate()}
        found = self._domain_extensions() if extensions is None else extensions
        by_domain = {e.get("Domain"): e.get("ServerCertificateId") for e in found}
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

    def _retire(self, server_cert_id: str | None, cert_id: Any) -> dict[str, Any] | None:
        """Delete a certificate no listener uses any more: the SLB copy first (unless it is gone already), then
        the CAS original. None when both are gone, else what is left, with the error, under `error`."""
        try:
            if server_cert_id and self._server_certificate_exists(server_cert_id):
                self._slb("DeleteServerCertificate", lambda m: m.DeleteServerCertificateRequest(
                    region_id=self.region, server_certificate_id=server_cert_id),
                    lambda c, r: c.delete_server_certificate(r))
            server_cert_id = None
            if cert_id:
                self._cas("DeleteUserCertificate", lambda m: m.DeleteUserCertificateRequest(cert_id=int(cert_id)),
                          lambda c, r: c.delete_user_certificate(r))
        except DeployError as err:
            return {"server_certificate_id": server_cert_id, "cert_id": cert_id, "error": str(err)}
        return None

    def _server_certificate_exists(self, server_cert_id: str) -> bool:
        body = self._slb("DescribeServerCertificates", lambda m: m.DescribeServerCertificatesRequest(
            region_id=self.region, server_certificate_id=server_cert_id),
            lambda c, r: c.describe_server_certificates(r))
        certs = (body.get("ServerCertificates") or {}).get("ServerCertificate") or []
        return any(c.get("ServerCertificateId") == server_cert_id for c in certs)


PLUGIN = TargetPlugin(KIND, AlibabaSlbSettings, AlibabaSlbTarget)
