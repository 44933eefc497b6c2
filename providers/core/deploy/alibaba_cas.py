"""alibaba_cas: deploy through Certificate Management Service deployment jobs, the way the service itself puts a
certificate on CLB, ALB, NLB, CDN, DCDN, WAF and the rest: one job for the configured cloud resources.

    UploadUserCertificate (a versioned name: names are unique per account)
    CreateDeploymentJob (JobType user; the job starts in `editing`)
    UpdateDeploymentJobStatus -> pending (it runs now)
    DescribeDeploymentJob until success or error (bounded by poll_timeout)
    on error: CreateRollbackTask for every worker that did deploy, wait for them, delete the job and the
              uploaded certificate (a failed job leaves no key behind)

The certificate each resource had before the first deploy (the workers' ResourceCertId) is kept in state. A
renewal keeps the certificate it replaced until the new one is verified (a rollback deploys it back, with no
upload), then deletes it once no resource uses it; removing the binding deploys the earlier certificates back
by the same kind of job, then deletes ours. Official SDK alibabacloud_cas20200407;
access and errors, and how it is tested (a local stub: no emulator exists): _alibaba.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from ..errors import DeployError, InvalidInputError
from ..validation import LOCATION, number, whole_number
from . import _alibaba, base
from ._alibaba import AlibabaAccess
from .base import Binding, Bundle, TargetPlugin, TargetSettings

KIND = "alibaba_cas"
RUNNING = ("pending", "scheduling", "processing")
_MAX_PAGES = 200


class AlibabaCasSettings(TargetSettings, AlibabaAccess):
    """resource_ids (CAS cloud-resource ids, from ListCloudResources or the console's deployment page),
    contact_ids (notified about the job, as CAS requires); optional endpoint (default cas.aliyuncs.com),
    poll_interval and poll_timeout (s); access (region, protocol, timeout_ms): _alibaba.AlibabaAccess."""

    resource_ids: Annotated[tuple[Annotated[int, whole_number(1, 2**63 - 1)], ...], LOCATION, Field(min_length=1)]
    contact_ids: Annotated[tuple[Annotated[int, whole_number(1, 2**63 - 1)], ...], Field(min_length=1)]
    endpoint: Annotated[str | None, LOCATION] = None
    poll_interval: Annotated[float, number(0, 600)] = 10.0
    poll_timeout: Annotated[float, number(1, 86400)] = 1800.0


class AlibabaCasTarget(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: AlibabaCasSettings) -> None:
        self.settings = settings
        self.resource_ids = tuple(sorted(set(settings.resource_ids)))

    def _cas(self, action: str, request: Callable[[Any], Any], call: Callable[[Any, Any], Any]) -> dict[str, Any]:
        from alibabacloud_cas20200407 import models  # type: ignore[import-untyped]
        from alibabacloud_cas20200407.client import Client  # type: ignore[import-untyped]

        endpoint = self.settings.endpoint or "cas.aliyuncs.com"
        return _alibaba.invoke(KIND, action, lambda: call(Client(_alibaba.config(self.settings, endpoint)),
                                                          request(models)))

    def check_binding(self, binding: Binding) -> None:
        if binding.sni:
            raise InvalidInputError("sni", "a CAS deployment job deploys to the resources it names: leave sni unset")

    # --- the verbs -------------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        self.check_binding(binding)
        old = dict(binding.live)
        cert_id = self._upload(binding, bundle)
        try:
            workers = self._run_job(binding, cert_id)
        except JobStillRunning:
            raise  # it may yet deploy the upload: keep it
        except DeployError:
            with contextlib.suppress(DeployError):
                self._delete_certificate(cert_id)  # a failed job leaves no uploaded key behind
            raise
        before = old.get("previous_cert_ids") or {str(w["ResourceId"]): w.get("ResourceCertId") for w in workers}
        return {"cert_id": cert_id, "resource_ids": list(self.resource_ids), "previous_cert_ids": before,
                "replaced_cert_id": old.get("cert_id") if old.get("cert_id") != cert_id else None,
                "stale_cert_ids": list(old.get("stale_cert_ids") or [])}

    def retire(self, binding: Binding) -> dict[str, Any]:
        """The certificate the verified deploy replaced, and any left from before, deleted where unused."""
        live = dict(binding.live)
        stale = [c for c in [*(live.get("stale_cert_ids") or []), live.get("replaced_cert_id")]
                 if c and c != live.get("cert_id")]
        return {**live, "replaced_cert_id": None, "stale_cert_ids": self._delete_unused(stale)}

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """Back to the certificate state holds: the one the failed deploy replaced (still in CAS, so no upload),
        deployed back where the new one went; then the new one is deleted. A first deploy is removed."""
        live = binding.live
        if previous is None:
            if live.get("cert_id"):
                self.remove(binding)
            return
        back_to, ours = live.get("replaced_cert_id") or live.get("cert_id"), live.get("cert_id")
        if not back_to:
            return
        attached = self._attached()
        moved = tuple(r for r in self.resource_ids if attached.get(_label(r)) != back_to)
        if moved:
            if self._fingerprint(back_to) is None:
                raise DeployError(f"alibaba_cas: certificate {back_to}, the one to go back to, is gone from CAS; "
                                  "the resources keep the new one")
            self._run_job(binding, int(back_to), resources=moved)
        if ours and ours != back_to:
            self._delete_unused([ours])

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        ours = binding.live.get("cert_id")
        for label, cert_id in self._attached().items():
            if cert_id != ours:
                raise DeployError(f"alibaba_cas: {label} uses certificate {cert_id or 'none'}, expected {ours}")
        got = self._fingerprint(ours)
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"alibaba_cas: CAS certificate {ours} holds {got or 'no certificate'}, "
                              f"expected {bundle.fingerprint_sha256}")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        fingerprints: dict[Any, str | None] = {}
        out: dict[str, str | None] = {}
        for label, cert_id in self._attached().items():
            if cert_id not in fingerprints:
                fingerprints[cert_id] = self._fingerprint(cert_id)
            out[label] = fingerprints[cert_id]
        return out

    def remove(self, binding: Binding) -> None:
        """Deploy each resource's certificate from before back (one job per certificate), then delete ours."""
        ours = binding.live.get("cert_id")
        if not ours:
            return
        before: dict[str, Any] = dict(binding.live.get("previous_cert_ids") or {})
        attached = self._attached()
        still_ours = [r for r in self.resource_ids if attached.get(_label(r)) == ours]
        bare = [r for r in still_ours if not before.get(str(r))]
        if bare:
            raise DeployError(f"alibaba_cas: {_label(bare[0])} had no certificate before certplane's, and a "
                              "deployment job cannot take one away; deploy another certificate to it, then remove "
                              "again")
        by_cert: dict[int, list[int]] = {}
        for resource in still_ours:
            by_cert.setdefault(int(before[str(resource)]), []).append(resource)
        for cert_id, resources in sorted(by_cert.items()):
            self._run_job(binding, cert_id, resources=tuple(resources))
        stale = [*(binding.live.get("stale_cert_ids") or []), binding.live.get("replaced_cert_id")]
        self._delete_unused([c for c in stale if c])
        if int(ours) in self._delete_unused([ours]):
            raise DeployError(f"alibaba_cas: certificate {ours} could not be deleted from CAS (is it used by a cloud "
                              "resource certplane did not deploy it to?); detach it there, then remove again")

    # --- mechanics ------------------------------------------------------------------------------------------

    def _upload(self, binding: Binding, bundle: Bundle) -> int:
        """Names are unique per account: the binding, the certificate's fingerprint and the time make one."""
        stamp = format(int(time.time() * 1000), "x")
        name = f"certplane-{binding.binding_id}-{bundle.fingerprint_sha256.replace(':', '')[:10].lower()}-{stamp}"
        body = self._cas("UploadUserCertificate", lambda m: m.UploadUserCertificateRequest(
            name=name[-64:], cert=bundle.fullchain_pem, key=bundle.key_pem),
            lambda c, r: c.upload_user_certificate(r))
        return int(body["CertId"])

    def _run_job(self, binding: Binding, cert_id: int, *, resources: tuple[int, ...] | None = None) \
            -> list[dict[str, Any]]:
        """Create, start and wait for one deployment job; its workers when it succeeds. On error, roll back the
        workers that did deploy, delete the job, and raise one line naming what failed."""
        targets = resources or self.resource_ids
        job = int(self._cas("CreateDeploymentJob", lambda m: m.CreateDeploymentJobRequest(
            name=f"certplane {binding.binding_id} {cert_id}"[:64], job_type="user", cert_ids=str(cert_id),
            resource_ids=",".join(map(str, targets)),
            contact_ids=",".join(map(str, self.settings.contact_ids))),
            lambda c, r: c.create_deployment_job(r))["JobId"])
        self._cas("UpdateDeploymentJobStatus", lambda m: m.UpdateDeploymentJobStatusRequest(
            job_id=job, status="pending"), lambda c, r: c.update_deployment_job_status(r))
        status = self._wait(job)
        workers = self._workers(job)
        if status == "success":
            return workers
        failed = [w for w in workers if w.get("Status") == "error"]
        rolled = self._roll_back(job, [w for w in workers if w.get("Status") == "success"])
        with contextlib.suppress(DeployError):
            self._cas("DeleteDeploymentJob", lambda m: m.DeleteDeploymentJobRequest(job_id=job),
                      lambda c, r: c.delete_deployment_job(r))
        where = ", ".join(_label(w.get("ResourceId")) for w in failed) or "its resources"
        raise DeployError(f"alibaba_cas: deployment job {job} failed on {where}; {rolled} resource(s) that took "
                          f"the certificate were rolled back")

    def _wait(self, job: int) -> str:
        deadline = time.monotonic() + self.settings.poll_timeout
        status = "pending"
        for _ in range(1_000_000):  # bounded by the deadline; the count only guards a clock that stands still
            status = str(self._cas("DescribeDeploymentJob", lambda m: m.DescribeDeploymentJobRequest(job_id=job),
                                   lambda c, r: c.describe_deployment_job(r)).get("Status") or "")
            if status not in RUNNING:
                return status
            if time.monotonic() > deadline:
                break
            time.sleep(self.settings.poll_interval)
        if status == "pending":  # not started yet: take it back to editing so it never runs behind our back
            with contextlib.suppress(DeployError):
                self._cas("UpdateDeploymentJobStatus", lambda m: m.UpdateDeploymentJobStatusRequest(
                    job_id=job, status="editing"), lambda c, r: c.update_deployment_job_status(r))
                raise DeployError(f"alibaba_cas: deployment job {job} did not start within "
                                  f"{self.settings.poll_timeout:g} s and was taken back to editing; run again")
        raise JobStillRunning(f"alibaba_cas: deployment job {job} is still {status} after "
                              f"{self.settings.poll_timeout:g} s; see it in the CAS console, then run again")

    def _workers(self, job: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            body = self._cas("ListWorkerResource", lambda m: m.ListWorkerResourceRequest(
                job_id=job, current_page=page, show_size=50), lambda c, r: c.list_worker_resource(r))
            data = list(body.get("Data") or [])
            out.extend(data)
            if len(data) < 50 or len(out) >= int(body.get("Total") or 0):
                break
        return out

    def _roll_back(self, job: int, deployed: list[dict[str, Any]]) -> int:
        """CreateRollbackTask per worker that deployed; wait (bounded) until each is rolled back."""
        if not deployed:
            return 0
        for worker in deployed:
            self._cas("CreateRollbackTask", lambda m: m.CreateRollbackTaskRequest(
                job_id=job, worker_id=int(worker["Id"])), lambda c, r: c.create_rollback_task(r))
        ids = {w["Id"] for w in deployed}
        deadline = time.monotonic() + self.settings.poll_timeout
        for _ in range(1_000_000):
            states = {w["Id"]: w.get("Status") for w in self._workers(job) if w["Id"] in ids}
            if all(s in ("rollback_success", "rollback_error") for s in states.values()):
                failed = [i for i, s in states.items() if s == "rollback_error"]
                if failed:
                    raise DeployError(f"alibaba_cas: deployment job {job} failed and rolling back worker "
                                      f"{failed[0]} failed too; see the job in the CAS console")
                return len(states)
            if time.monotonic() > deadline:
                raise DeployError(f"alibaba_cas: deployment job {job} failed and its rollback did not finish within "
                                  f"{self.settings.poll_timeout:g} s; see the job in the CAS console")
            time.sleep(self.settings.poll_interval)
        return 0

    def _attached(self) -> dict[str, Any]:
        """`resource <id>` -> the CAS certificate id each configured resource has now (ListCloudResources)."""
        found: dict[int, Any] = {}
        for page in range(1, _MAX_PAGES + 1):
            body = self._cas("ListCloudResources", lambda m: m.ListCloudResourcesRequest(
                cloud_name="aliyun", current_page=page, show_size=50), lambda c, r: c.list_cloud_resources(r))
            data = list(body.get("Data") or [])
            for item in data:
                found[int(item.get("Id") or 0)] = item.get("CertId")
            if len(data) < 50 or len(found) >= int(body.get("Total") or 0):
                break
        missing = [r for r in self.resource_ids if r not in found]
        if missing:
            raise DeployError(f"alibaba_cas: no cloud resource {missing[0]} in CAS (ListCloudResources)")
        return {_label(r): (int(found[r]) if found[r] else None) for r in self.resource_ids}

    def _fingerprint(self, cert_id: Any) -> str | None:
        from ..certificates import fingerprint_of_pem

        if not cert_id:
            return None
        body = self._cas("GetUserCertificateDetail", lambda m: m.GetUserCertificateDetailRequest(
            cert_id=int(cert_id), cert_filter=True), lambda c, r: c.get_user_certificate_detail(r))
        return fingerprint_of_pem(body.get("Cert"))

    def _delete_certificate(self, cert_id: int) -> None:
        self._cas("DeleteUserCertificate", lambda m: m.DeleteUserCertificateRequest(cert_id=int(cert_id)),
                  lambda c, r: c.delete_user_certificate(r))

    def _delete_unused(self, cert_ids: list[Any]) -> list[int]:
        """Delete each; those CAS will not delete (still in use, or any other refusal) stay listed, to be tried
        again next time. Never raises: what is left is clutter in the account, not a failed deploy."""
        left: list[int] = []
        for cert_id in dict.fromkeys(int(c) for c in cert_ids):
            try:
                self._delete_certificate(cert_id)
            except _alibaba.ApiError as err:
                if err.code not in ("NotFound", "CertNotFound"):
                    left.append(cert_id)
        return left


class JobStillRunning(DeployError):
    """A deployment job that outlived poll_timeout while running: it may still deploy its certificate."""


def _label(resource_id: Any) -> str:
    return f"resource {resource_id}"


PLUGIN = TargetPlugin(KIND, AlibabaCasSettings, AlibabaCasTarget)
