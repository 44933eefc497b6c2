"""A small stand-in for Alibaba Cloud's CAS and SLB RPC APIs, for tests only.

No Alibaba Cloud emulator exists (none on PyPI or elsewhere), so this stub speaks the wire shape the Tea SDK
uses: POST /, the action in `x-acs-action`, the API version in `x-acs-version`, parameters in the query string,
a JSON reply. It keeps just enough state (certificates, one HTTPS listener, domain extensions) to check what the
adapter did; it does not check signatures or model every error of the real service.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

VERSIONS = {"UploadUserCertificate": "2020-04-07", "GetUserCertificateDetail": "2020-04-07",
            "DeleteUserCertificate": "2020-04-07"}
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

    def dispatch(self, action: str, p: dict[str, str]) -> dict[str, Any]:
        if action == "UploadUserCertificate":
            if not p.get("Cert", "").startswith("-----BEGIN CERTIFICATE-----") or "PRIVATE KEY" not in p.get("Key", ""):
                raise ApiError("InvalidCert", "The certificate or key is not PEM.")
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
            if any(str(sc["AliCloudCertificateId"]) == str(cert_id) for sc in self.server_certs.values()):
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
