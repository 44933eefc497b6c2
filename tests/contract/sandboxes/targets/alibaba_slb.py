from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import Binding
from tests.contract.sandboxes.targets.common import TargetBox
from tests.support.alibaba_stub import AlibabaStub


@contextmanager
def open(request: Any) -> Iterator[TargetBox]:  # noqa: A001
    """No Alibaba Cloud emulator exists: a local stub of the documented RPC API (tests/support/alibaba_stub.py)."""
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-secret")
    ca = request.getfixturevalue("ca")
    stub = AlibabaStub()
    original = ca.bundle(["old.example.test"], name="old")
    stub.cas[1] = {"Cert": original.fullchain_pem, "Key": original.key_pem, "Name": "old"}
    stub.server_certs["sc-original"] = {"ServerCertificateId": "sc-original", "AliCloudCertificateId": "1"}
    stub.listener_cert = "sc-original"

    def served(_binding: Binding) -> str | None:
        cert_id = stub.server_certs.get(stub.listener_cert or "", {}).get("AliCloudCertificateId")
        return fingerprint_of_pem(stub.cas.get(int(cert_id), {}).get("Cert")) if cert_id else None

    stub.start()
    try:
        yield TargetBox(settings={"region": "cn-hangzhou", "load_balancer_id": stub.lb, "listener_port": stub.port,
                                  "endpoint": stub.endpoint, "protocol": "http", "timeout_ms": 5000},
                        binding=Binding("www--slb", ("www.example.test",)), served=served,
                        before=original.fingerprint_sha256)
    finally:
        stub.stop()
