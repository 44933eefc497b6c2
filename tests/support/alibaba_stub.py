"""A small stand-in for Alibaba Cloud's CAS and SLB RPC APIs, for tests only.

No Alibaba Cloud emulator exists (none on PyPI or elsewhere), so this stub speaks the wire shape the Tea SDK
uses: POST /, the action in `x-acs-action`, the API version in `x-acs-version`, parameters in the query string,
a JSON reply. It keeps just enough state (certificates, one HTTPS listener, domain extensions; CAS cloud
resources and deployment jobs with their documented states) to check what the adapters did; it does not check
signatures or model every error of the real service.

Deployment jobs, as the CAS API documents them: CreateDeploymentJob makes a job in `editing`;
UpdateDeploymentJobStatus(pending) starts it; each DescribeDeploymentJob moves it one step, pending ->
scheduling -> processing -> success (or error, when a resource in `failing_resources` is in it). A job's
workers (ListWorkerResource), one per resource, carry the certificate each resource had before
(ResourceCertId); CreateRollbackTask(JobId, WorkerId) puts that one back (worker rollback -> rollback_success).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CAS_VERSION = "2020-04-07"
VERSIONS = {action: CAS_VERSION for action in (
    "UploadUserCertificate", "GetUserCertificateDetail", "DeleteUserCertificate", "ListCloudResources",
    "CreateDeploymentJob", "UpdateDeploymentJobStatus", "DescribeDeploymentJob", "ListWorkerResource",
    "CreateRollbackTask", "DeleteDeploymentJob")}
JOB_STEPS = {"pending": "scheduling", "scheduling": "processing"}
SLB_VERSION = "2014-05-15"


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class AlibabaStub:
    def __init__(self, load_balancer_id: str = "lb-stub", listener_port: int = 443) -> None:
        self.lb, self.port = load_balancer_id, listener_port
        self.cas: dict[int, dict[str, str]] = {}
        self.server_certs: dict[str, dict[str, Any]] = {}
        self.listener_cert: str | None = None
        self.extensions: dict[str, dict[str, str]] = {}
        self.resources: dict[int, dict[str, Any]] = {}  # CAS cloud resources (ListCloudResources), by Id
        self.jobs: dict[int, dict[str, Any]] = {}
        self.failing_resources: set[int] = set()  # a job that includes one of these ends in `error`
        self.stuck = False  # jobs never leave `processing`
        self.calls: list[tuple[str, dict[str, str], str]] = []  # (action, params, access key id)
        self.fail: dict[str, ApiError] = {}
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def actions(self) -> list[str]:
        return [c[0] for c in self.calls]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length") or 0))
                action = self.headers.get("x-acs-action") or ""
                params = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                cred = re.search(r"Credential=([^,]+)", self.headers.get("Authorization") or "")
                try:
                    expected = VERSIONS.get(action, SLB_VERSION)
                    if self.headers.get("x-acs-version") != expected:
                        raise ApiError("InvalidVersion", f"{action} expects version {expected}")
                    with stub._lock:
                        stub.calls.append((action, params, cred.group(1) if cred else ""))
                        if action in stub.fail:
                            raise stub.fail[action]
                        body = stub.dispatch(action, params)
                    status = 200
                except ApiError as err:
                    body, status = {"Code": err.code, "Message": err.message}, err.status
                out = json.dumps({"RequestId": "stub-request", **body}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

    # --- the API, as far as the adapter uses it -------------------------------------------------------------

    def _listener(self, p: dict[str, str]) -> None:
        if p.get("LoadBalancerId") != self.lb or p.get("ListenerPort") != str(self.port):
            raise ApiError("InvalidParameter", f"The specified listener {p.get('LoadBalancerId')}:"
                                               f"{p.get('ListenerPort')} does not exist.")

    def _server_cert(self, sc_id: str | None) -> None:
        if sc_id not in self.server_certs:
            raise ApiError("ServerCertificateId.NotFound", f"The specified ServerCertificateId {sc_id} does not exist.")

    def add_resource(self, product: str, domain: str, cert_id: int | None) -> int:
        """A cloud resource CAS can deploy to (a CLB/ALB listener, a CDN domain, a WAF site)."""
        resource_id = next(self._ids)
        self.resources[resource_id] = {"Id": resource_id, "CloudName": "aliyun", "CloudProduct": product,
                                       "Domain": domain, "RegionId": "cn-hangzhou", "InstanceId": f"i-{resource_id}",
                                       "CertId": cert_id, "EnableHttps": 1}
        return resource_id

    def _job(self, p: dict[str, str]) -> dict[str, Any]:
        job = self.jobs.get(int(p.get("JobId", "0")))
        if job is None:
            raise ApiError("JobNotFound", "The deployment job does not exist.")
        return job

    def _advance(self, job: dict[str, Any]) -> None:
        """One step of the job (what time does between two looks at it)."""
        if job["Status"] in JOB_STEPS:
            job["Status"] = JOB_STEPS[job["Status"]]
        elif job["Status"] == "processing" and not self.stuck:
            for worker in job["workers"]:
                if worker["ResourceId"] in self.failing_resources:
                    worker["Status"] = "error"
                else:
                    self.resources[worker["ResourceId"]]["CertId"] = job["cert_id"]
                    worker["Status"] = "success"
            job["Status"] = "error" if any(w["Status"] == "error" for w in job["workers"]) else "success"
        self._advance_rollbacks(job)

    def _advance_rollbacks(self, job: dict[str, Any]) -> None:
        for worker in job["workers"]:
            if worker["Status"] == "rollback":
                self.resources[worker["ResourceId"]]["CertId"] = worker["ResourceCertId"]
                worker["Status"] = "rollback_success"

    def _cas_jobs(self, action: str, p: dict[str, str]) -> dict[str, Any]:
        if action == "ListCloudResources":
            page, size = int(p.get("CurrentPage", "1")), int(p.get("ShowSize", "20"))
            everything = sorted(self.resources.values(), key=lambda r: r["Id"])
            return {"Total": len(everything), "CurrentPage": page, "ShowSize": size,
                    "Data": everything[(page - 1) * size: page * size]}
        if action == "CreateDeploymentJob":
            for key in ("Name", "JobType", "CertIds", "ResourceIds", "ContactIds"):
                if not p.get(key):
                    raise ApiError("MissingParameter", f"{key} is mandatory for this action.")
            cert_ids = [int(c) for c in p["CertIds"].split(",")]
            if any(c not in self.cas for c in cert_ids):
                raise ApiError("CertNotFound", "The certificate does not exist.")
            resource_ids = [int(r) for r in p["ResourceIds"].split(",")]
            missing = [r for r in resource_ids if r not in self.resources]
            if missing:
                raise ApiError("ResourceNotFound", f"The cloud resource {missing[0]} does not exist.")
            job_id = next(self._ids)
            self.jobs[job_id] = {"Id": job_id, "Name": p["Name"], "JobType": p["JobType"], "Status": "editing",
                                 "cert_id": cert_ids[0], "workers": [
                                     {"Id": next(self._ids), "JobId": job_id, "ResourceId": r, "CertId": cert_ids[0],
                                      "ResourceCertId": self.resources[r]["CertId"], "Status": "editing",
                                      "CloudProduct": self.resources[r]["CloudProduct"]} for r in resource_ids]}
            return {"JobId": job_id}
        if action == "UpdateDeploymentJobStatus":
            job = self._job(p)
            if p.get("Status") not in ("pending", "editing", "scheduling"):
                raise ApiError("InvalidParameter.Status", "Status must be pending, scheduling or editing.")
            if job["Status"] not in ("editing", "pending", "scheduling"):
                raise ApiError("InvalidStatus", f"The job is {job['Status']}.")
            job["Status"] = p["Status"]
            for worker in job["workers"]:
                worker["Status"] = p["Status"]
            return {}
        if action == "DescribeDeploymentJob":
            job = self._job(p)
            self._advance(job)
            return {"Id": job["Id"], "Name": job["Name"], "JobType": job["JobType"], "Status": job["Status"],
                    "Rollback": int(any(w["Status"].startswith("rollback") for w in job["workers"]))}
        if action == "ListWorkerResource":
            job = self._job(p)
            answer = {"Total": len(job["workers"]), "Data": [dict(w) for w in job["workers"]]}
            self._advance_rollbacks(job)  # a rollback asked for is seen running once, then done
            return answer
        if action == "CreateRollbackTask":
            job = self._job(p)
            worker = next((w for w in job["workers"] if str(w["Id"]) == p.get("WorkerId")), None)
            if worker is None or worker["Status"] != "success":
                raise ApiError("InvalidWorker", "Only a successful worker can be rolled back.")
            worker["Status"] = "rollback"
            return {"Data": worker["Id"]}
        if action == "DeleteDeploymentJob":
            job = self._job(p)
            if job["Status"] in ("scheduling", "processing"):
                raise ApiError("InvalidStatus", "A running job cannot be deleted.")
            del self.jobs[job["Id"]]
            return {}
        raise ApiError("InvalidAction.NotFound", f"Specified api {action} is not found.", 404)

    def dispatch(self, action: str, p: dict[str, str]) -> dict[str, Any]:
        if action in VERSIONS and action not in ("UploadUserCertificate", "GetUserCertificateDetail",
                                                  "DeleteUserCertificate"):
            return self._cas_jobs(action, p)
        if action == "UploadUserCertificate":
            if not p.get("Cert", "").startswith("-----BEGIN CERTIFICATE-----") or "PRIVATE KEY" not in p.get("Key", ""):
                raise ApiError("InvalidCert", "The certificate or key is not PEM.")
            if any(c["Name"] == p.get("Name") for c in self.cas.values()):
                raise ApiError("NameRepeat", "The certificate name already exists.")
            cert_id = next(self._ids)
            self.cas[cert_id] = {"Cert": p["Cert"], "Key": p["Key"], "Name": p.get("Name", "")}
            return {"CertId": cert_id}
        if action == "GetUserCertificateDetail":
            cert = self.cas.get(int(p.get("CertId", "0")))
            if cert is None:
                raise ApiError("NotFound", "The certificate does not exist.")
            out = {"Id": int(p["CertId"]), "Cert": cert["Cert"], "Name": cert["Name"]}
            if p.get("CertFilter") != "true":
                out["Key"] = cert["Key"]
            return out
        if action == "DeleteUserCertificate":
            cert_id = int(p.get("CertId", "0"))
            if any(str(sc["AliCloudCertificateId"]) == str(cert_id) for sc in self.server_certs.values()) or \
                    any(r["CertId"] == cert_id for r in self.resources.values()):
                raise ApiError("CertInUse", "The certificate is used by a cloud product.")
            self.cas.pop(cert_id, None)
            return {}
        if action == "UploadServerCertificate":
            if int(p.get("AliCloudCertificateId", "0")) not in self.cas:
                raise ApiError("AliCloudCertificate.NotFound", "The CAS certificate does not exist.")
            sc_id = f"sc-{next(self._ids)}"
            self.server_certs[sc_id] = {"ServerCertificateId": sc_id,
                                        "AliCloudCertificateId": p["AliCloudCertificateId"],
                                        "AliCloudCertificateName": p.get("AliCloudCertificateName")}
            return {"ServerCertificateId": sc_id}
        if action == "DescribeServerCertificates":
            certs = [c for i, c in self.server_certs.items() if i == p.get("ServerCertificateId")]
            return {"ServerCertificates": {"ServerCertificate": certs}}
        if action == "DeleteServerCertificate":
            sc_id = p.get("ServerCertificateId")
            in_use = sc_id == self.listener_cert or any(e["ServerCertificateId"] == sc_id
                                                        for e in self.extensions.values())
            if in_use:
                raise ApiError("ResourceInUse", f"The server certificate {sc_id} is in use.")
            self.server_certs.pop(str(sc_id), None)
            return {}
        if action == "DescribeLoadBalancerHTTPSListenerAttribute":
            self._listener(p)
            return {"ListenerPort": self.port, "ServerCertificateId": self.listener_cert or ""}
        if action == "SetLoadBalancerHTTPSListenerAttribute":
            self._listener(p)
            self._server_cert(p.get("ServerCertificateId"))
            self.listener_cert = p["ServerCertificateId"]
            return {}
        if action == "DescribeDomainExtensions":
            self._listener(p)
            return {"DomainExtensions": {"DomainExtension": list(self.extensions.values())}}
        if action == "CreateDomainExtension":
            self._listener(p)
            self._server_cert(p.get("ServerCertificateId"))
            if any(e["Domain"] == p.get("Domain") for e in self.extensions.values()):
                raise ApiError("DomainExtensionExist", "The domain extension already exists.")
            ext_id = f"de-{next(self._ids)}"
            self.extensions[ext_id] = {"DomainExtensionId": ext_id, "Domain": p["Domain"],
                                       "ServerCertificateId": p["ServerCertificateId"]}
            return {"DomainExtensionId": ext_id, "ListenerPort": self.port}
        if action == "SetDomainExtensionAttribute":
            self._server_cert(p.get("ServerCertificateId"))
            ext = self.extensions.get(p.get("DomainExtensionId", ""))
            if ext is None:
                raise ApiError("DomainExtensionNotFound", "The domain extension does not exist.")
            ext["ServerCertificateId"] = p["ServerCertificateId"]
            return {}
        if action == "DeleteDomainExtension":
            self.extensions.pop(p.get("DomainExtensionId", ""), None)
            return {}
        raise ApiError("InvalidAction.NotFound", f"Specified api {action} is not found.", 404)
