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
    """No Alibaba Cloud emulator exists: a local stub of the documented RPC API and job states."""
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-secret")
    original = request.getfixturevalue("ca").bundle(["www.example.test"], name="old")
    stub = AlibabaStub()
    stub.cas[1] = {"Cert": original.fullchain_pem, "Key": original.key_pem, "Name": "old"}
    resource = stub.add_resource("SLB", "lb-1:443", 1)

    def served(_binding: Binding) -> str | None:
        return fingerprint_of_pem(stub.cas.get(stub.resources[resource]["CertId"] or 0, {}).get("Cert"))

    stub.start()
    try:
        yield TargetBox(settings={"region": "cn-hangzhou", "resource_ids": [resource], "contact_ids": [1],
                                  "endpoint": stub.endpoint, "protocol": "http", "timeout_ms": 5000,
                                  "poll_interval": 0.01, "poll_timeout": 5},
                        binding=Binding("www--cas"), served=served, before=original.fingerprint_sha256)
    finally:
        stub.stop()
