"""The alibaba_cas target (CAS deployment jobs) through the official Tea SDK against a local stub of the
documented API and job states (no Alibaba Cloud emulator exists: tests/support/alibaba_stub.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import Binding, get_target
from providers.core.deploy.alibaba_cas import AlibabaCasTarget
from providers.core.errors import DeployError, InvalidInputError
from tests.support.alibaba_stub import AlibabaStub
from tests.support.pki import LocalCa


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch, ca: LocalCa) -> Iterator[AlibabaStub]:
    """A CLB listener and a CDN domain that already serve a certificate uploaded outside certplane."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-secret")
    server = AlibabaStub()
    original = ca.bundle(["www.example.test"], name="original")
    server.cas[1] = {"Cert": original.fullchain_pem, "Key": original.key_pem, "Name": "original"}
    server.add_resource("SLB", "lb-1:443", 1)
    server.add_resource("CDN", "www.example.test", 1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def resource_ids(stub: AlibabaStub) -> list[int]:
    return sorted(stub.resources)


def target(stub: AlibabaStub, **extra: Any) -> AlibabaCasTarget:
    t = get_target("alibaba_cas", {"region": "cn-hangzhou", "resource_ids": resource_ids(stub), "contact_ids": [7],
                                   "endpoint": stub.endpoint, "protocol": "http", "timeout_ms": 5000,
                                   "poll_interval": 0.01, "poll_timeout": 5, **extra})
    assert isinstance(t, AlibabaCasTarget)
    return t


def on_resources(stub: AlibabaStub) -> set[Any]:
    return {r["CertId"] for r in stub.resources.values()}


def test_a_job_deploys_renews_and_removal_puts_the_earlier_certificate_back(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    first = ca.bundle(["www.example.test"])
    binding = Binding("www--cas").with_live(t.deploy(Binding("www--cas"), first))
    cert_id = binding.live["cert_id"]
    assert on_resources(stub) == {cert_id}
    assert binding.live["previous_cert_ids"] == {str(r): 1 for r in resource_ids(stub)}
    # The documented sequence: upload, a job in editing, moved to pending, watched until it is done.
    actions = stub.actions()
    assert actions[:3] == ["UploadUserCertificate", "CreateDeploymentJob", "UpdateDeploymentJobStatus"]
    create = next(p for a, p, _ in stub.calls if a == "CreateDeploymentJob")
    assert (create["JobType"], create["ResourceIds"], create["ContactIds"], create["CertIds"]) == \
        ("user", ",".join(map(str, resource_ids(stub))), "7", str(cert_id))
    assert next(p for a, p, _ in stub.calls if a == "UpdateDeploymentJobStatus")["Status"] == "pending"
    assert actions.count("DescribeDeploymentJob") >= 3  # pending -> scheduling -> processing -> success
    t.verify(binding, first)
    assert t.observe(binding) == {f"resource {r}": first.fingerprint_sha256 for r in resource_ids(stub)}
    # Only the upload carries the key.
    assert [a for a, p, _ in stub.calls if any("PRIVATE KEY" in v for v in p.values())] == ["UploadUserCertificate"]

    renewed = ca.bundle(["www.example.test"])
    again = binding.with_live(t.deploy(binding, renewed))
    assert again.live["cert_id"] != cert_id and on_resources(stub) == {again.live["cert_id"]}
    assert cert_id in stub.cas  # kept until the new one is verified: a rollback would deploy it back
    t.verify(again, renewed)
    again = again.with_live(t.retire(again))  # what the binding provider does once verify passed
    assert cert_id not in stub.cas  # the certificate it replaced, no longer used, is gone
    assert again.live["previous_cert_ids"] == binding.live["previous_cert_ids"]
    names = [c["Name"] for c in stub.cas.values()]
    assert len(names) == len(set(names))  # versioned names: unique per account
    t.verify(again, renewed)

    t.remove(again)
    assert on_resources(stub) == {1}
    assert set(stub.cas) == {1}
    t.remove(again)  # idempotent


def test_a_failed_job_is_rolled_back_and_leaves_no_uploaded_key(stub: AlibabaStub, ca: LocalCa) -> None:
    clb, cdn = resource_ids(stub)
    stub.failing_resources = {cdn}
    t = target(stub)
    with pytest.raises(DeployError) as err:
        t.deploy(Binding("www--cas"), ca.bundle(["www.example.test"]))
    message = str(err.value)
    assert "\n" not in message and "PRIVATE KEY" not in message
    assert message.startswith("alibaba_cas: deployment job ")
    assert message.endswith(f"failed on resource {cdn}; 1 resource(s) that took the certificate were rolled back")
    assert "CreateRollbackTask" in stub.actions()
    assert on_resources(stub) == {1}  # the CLB that did take it is back on its certificate
    assert set(stub.cas) == {1}  # the uploaded certificate (and its key) is deleted
    assert not stub.jobs  # and the failed job


def test_a_renewal_whose_job_fails_leaves_state_and_resources_on_the_certificate_before(stub: AlibabaStub,
                                                                                       ca: LocalCa) -> None:
    t = target(stub)
    first = ca.bundle(["www.example.test"])
    binding = Binding("www--cas").with_live(t.deploy(Binding("www--cas"), first))
    stub.failing_resources = {resource_ids(stub)[1]}
    with pytest.raises(DeployError):
        t.deploy(binding, ca.bundle(["www.example.test"]))
    t.rollback(binding, first)  # the provider's next step, with the live facts state still holds
    assert on_resources(stub) == {binding.live["cert_id"]}
    assert set(stub.cas) == {1, binding.live["cert_id"]}  # nothing uploaded is left, nothing in state is gone
    t.verify(binding, first)


def test_a_renewal_that_fails_verification_goes_back_without_an_upload(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    first = ca.bundle(["www.example.test"])
    binding = Binding("www--cas").with_live(t.deploy(Binding("www--cas"), first))
    renewed = binding.with_live(t.deploy(binding, ca.bundle(["www.example.test"])))
    clb = resource_ids(stub)[0]
    stub.resources[clb]["CertId"] = 1  # someone points the CLB elsewhere before verify looks
    with pytest.raises(DeployError):
        t.verify(renewed, ca.bundle(["www.example.test"]))
    uploads = stub.actions().count("UploadUserCertificate")
    t.rollback(renewed, first)
    assert stub.actions().count("UploadUserCertificate") == uploads  # the certificate in state, deployed back
    assert on_resources(stub) == {binding.live["cert_id"]}
    assert renewed.live["cert_id"] not in stub.cas
    t.verify(binding, first)


def test_a_job_that_does_not_finish_is_one_line_and_takes_nothing_along(stub: AlibabaStub, ca: LocalCa) -> None:
    stub.stuck = True
    t = target(stub, poll_timeout=1, poll_interval=0.05)
    with pytest.raises(DeployError) as err:
        t.deploy(Binding("www--cas"), ca.bundle(["www.example.test"]))
    assert str(err.value).endswith("is still processing after 1 s; see it in the CAS console, then run again")
    assert on_resources(stub) == {1}
    assert len(stub.cas) == 2  # the running job may still deploy its upload: it is not deleted under it


def test_removal_refuses_to_strip_a_resource_that_had_no_certificate(stub: AlibabaStub, ca: LocalCa) -> None:
    bare = stub.add_resource("WAF", "api.example.test", None)
    t = target(stub, resource_ids=[bare])
    binding = Binding("api--cas").with_live(t.deploy(Binding("api--cas"), ca.bundle(["api.example.test"])))
    with pytest.raises(DeployError) as err:
        t.remove(binding)
    assert str(err.value) == (f"alibaba_cas: resource {bare} had no certificate before certplane's, and a "
                              "deployment job cannot take one away; deploy another certificate to it, then remove "
                              "again")
    assert stub.resources[bare]["CertId"] == binding.live["cert_id"]


def test_drift_a_resource_someone_pointed_elsewhere(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    ours = ca.bundle(["www.example.test"])
    binding = Binding("www--cas").with_live(t.deploy(Binding("www--cas"), ours))
    clb, _ = resource_ids(stub)
    stub.resources[clb]["CertId"] = 1
    observed = t.observe(binding)
    assert observed[f"resource {clb}"] == fingerprint_of_pem(stub.cas[1]["Cert"]) != ours.fingerprint_sha256
    with pytest.raises(DeployError) as err:
        t.verify(binding, ours)
    assert str(err.value) == f"alibaba_cas: resource {clb} uses certificate 1, expected {binding.live['cert_id']}"


def test_an_unknown_resource_fails_before_anything_stays_behind(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub, resource_ids=[999999])
    with pytest.raises(DeployError) as err:
        t.deploy(Binding("www--cas"), ca.bundle(["www.example.test"]))
    assert str(err.value) == ("alibaba_cas: CreateDeploymentJob: ResourceNotFound: The cloud resource 999999 does "
                              "not exist.")
    assert set(stub.cas) == {1}


@pytest.mark.parametrize(("raw", "message"), [
    ({"region": "cn-hangzhou", "contact_ids": [1]}, "resource_ids: is required"),
    ({"region": "cn-hangzhou", "resource_ids": [], "contact_ids": [1]}, "resource_ids: must list at least 1"),
    ({"region": "cn-hangzhou", "resource_ids": [1]}, "contact_ids: is required"),
    ({"region": "Hangzhou", "resource_ids": [1], "contact_ids": [1]},
     "region: 'Hangzhou' is not a region id like cn-hangzhou"),
    ({"region": "cn-hangzhou", "resource_ids": ["lb-1"], "contact_ids": [1]},
     "resource_ids.0: must be a whole number from 1 to 9223372036854775807"),
])
def test_bad_settings_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        get_target("alibaba_cas", raw)
    assert str(err.value) == message


def test_sni_means_nothing_to_a_job() -> None:
    t = get_target("alibaba_cas", {"region": "cn-hangzhou", "resource_ids": [1], "contact_ids": [1]})
    with pytest.raises(InvalidInputError) as err:
        t.check_binding(Binding("x--cas", sni=True))
    assert str(err.value) == "sni: a CAS deployment job deploys to the resources it names: leave sni unset"
