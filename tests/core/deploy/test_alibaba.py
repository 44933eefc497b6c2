"""The alibaba_slb target through the official Tea SDK against a local stub (no Alibaba emulator exists)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import DEFAULT, Binding, get_target
from providers.core.errors import DeployError, InvalidInputError
from tests.support.alibaba_stub import AlibabaStub, ApiError
from tests.support.pki import LocalCa


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlibabaStub]:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-test-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-secret")
    server = AlibabaStub()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def target(stub: AlibabaStub) -> object:
    return get_target("alibaba_slb", {"region": "cn-hangzhou", "load_balancer_id": stub.lb,
                                      "listener_port": stub.port, "endpoint": stub.endpoint, "protocol": "http",
                                      "timeout_ms": 5000})


def preexisting(stub: AlibabaStub, ca: LocalCa) -> str:
    """The listener already serves a certificate made outside certplane."""
    original = ca.bundle(["old.example.test"], name="old")
    stub.cas[1] = {"Cert": original.fullchain_pem, "Key": original.key_pem, "Name": "old"}
    stub.server_certs["sc-original"] = {"ServerCertificateId": "sc-original", "AliCloudCertificateId": "1"}
    stub.listener_cert = "sc-original"
    return "sc-original"


def test_default_listener_certificate_renewal_and_removal(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    original = preexisting(stub, ca)
    binding = Binding("www--slb", ("www.example.test",))
    v1 = ca.bundle(["www.example.test"])
    live = t.deploy(binding, v1)  # type: ignore[attr-defined]
    assert stub.actions() == ["UploadUserCertificate", "UploadServerCertificate",
                              "DescribeLoadBalancerHTTPSListenerAttribute", "SetLoadBalancerHTTPSListenerAttribute"]
    assert {c[2] for c in stub.calls} == {"LTAI-test-id"}  # credentials from the default chain (environment)
    assert stub.listener_cert == live["server_certificate_id"] and live["replaced_server_certificate_id"] == original
    assert stub.cas[live["cert_id"]]["Cert"] == v1.fullchain_pem
    binding = binding.with_live(live)
    t.verify(binding, v1)  # type: ignore[attr-defined]
    assert t.observe(binding) == {DEFAULT: v1.fingerprint_sha256}  # type: ignore[attr-defined]

    # Renewal: CAS has no re-import, so a new certificate is uploaded and bound; the old one stays registered
    # until the new one is verified (a rollback points back at it), then is retired.
    v2 = ca.bundle(["www.example.test"])
    live2 = t.deploy(binding, v2)  # type: ignore[attr-defined]
    assert live2["replaced_server_certificate_id"] == original
    assert stub.listener_cert == live2["server_certificate_id"] != live["server_certificate_id"]
    assert live["server_certificate_id"] in stub.server_certs
    t.verify(binding.with_live(live2), v2)  # type: ignore[attr-defined]
    live2 = t.retire(binding.with_live(live2))  # type: ignore[attr-defined]
    assert live["server_certificate_id"] not in stub.server_certs and live["cert_id"] not in stub.cas
    assert live2["superseded"] is None and live2["stale"] == []

    # Removal: the original certificate goes back on the listener before ours is deleted.
    stub.calls.clear()
    t.remove(binding.with_live(live2))  # type: ignore[attr-defined]
    actions = stub.actions()
    assert actions.index("SetLoadBalancerHTTPSListenerAttribute") < actions.index("DeleteServerCertificate") \
        < actions.index("DeleteUserCertificate")
    assert stub.listener_cert == original and set(stub.server_certs) == {original} and set(stub.cas) == {1}


def test_a_renewal_that_fails_verification_points_back_at_the_certificate_it_superseded(stub: AlibabaStub,
                                                                                        ca: LocalCa) -> None:
    t = target(stub)
    preexisting(stub, ca)
    v1 = ca.bundle(["www.example.test"])
    binding = Binding("www--slb", ("www.example.test",))
    binding = binding.with_live(t.deploy(binding, v1))  # type: ignore[attr-defined]
    renewed = binding.with_live(t.deploy(binding, ca.bundle(["www.example.test"])))  # type: ignore[attr-defined]
    uploads = stub.actions().count("UploadUserCertificate")
    t.rollback(renewed, v1)  # type: ignore[attr-defined]
    assert stub.actions().count("UploadUserCertificate") == uploads  # no upload: the old one was still there
    assert stub.listener_cert == binding.live["server_certificate_id"]
    assert renewed.live["server_certificate_id"] not in stub.server_certs and renewed.live["cert_id"] not in stub.cas
    t.verify(binding, v1)  # type: ignore[attr-defined]


def test_sni_domain_extensions(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    preexisting(stub, ca)
    binding = Binding("api--slb", ("api.example.test", "api2.example.test"), sni=True)
    v1 = ca.bundle(["api.example.test", "api2.example.test"], name="api")
    live = t.deploy(binding, v1)  # type: ignore[attr-defined]
    assert sorted(e["Domain"] for e in stub.extensions.values()) == ["api.example.test", "api2.example.test"]
    assert {e["ServerCertificateId"] for e in stub.extensions.values()} == {live["server_certificate_id"]}
    assert stub.listener_cert == "sc-original"  # the default is untouched
    t.verify(binding.with_live(live), v1)  # type: ignore[attr-defined]
    assert t.observe(binding.with_live(live)) == {"api.example.test": v1.fingerprint_sha256,  # type: ignore[attr-defined]
                                                  "api2.example.test": v1.fingerprint_sha256}
    v2 = ca.bundle(["api.example.test", "api2.example.test"], name="api")
    live2 = t.deploy(binding.with_live(live), v2)  # type: ignore[attr-defined]
    assert stub.actions().count("CreateDomainExtension") == 2 and stub.actions().count("SetDomainExtensionAttribute") == 2
    t.verify(binding.with_live(live2), v2)  # type: ignore[attr-defined]
    t.remove(binding.with_live(live2))  # type: ignore[attr-defined]
    assert stub.extensions == {} and set(stub.server_certs) == {"sc-original"}


def test_drift_and_verify_failure(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    original = preexisting(stub, ca)
    binding = Binding("www--slb", ("www.example.test",))
    ours = ca.bundle(["www.example.test"])
    binding = binding.with_live(t.deploy(binding, ours))  # type: ignore[attr-defined]
    stub.listener_cert = original  # someone re-pointed the listener by hand
    old_fp = t.observe(binding)[DEFAULT]  # type: ignore[attr-defined]
    assert old_fp == fingerprint_of_pem(stub.cas[1]["Cert"]) != ours.fingerprint_sha256  # what the listener holds
    with pytest.raises(DeployError) as err:
        t.verify(binding, ours)  # type: ignore[attr-defined]
    assert str(err.value) == (f"alibaba_slb: listener {stub.lb}:{stub.port} uses server certificate {original}, "
                              f"expected {binding.live['server_certificate_id']}")


def test_api_errors_are_one_line_and_never_carry_the_key(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    stub.fail["SetLoadBalancerHTTPSListenerAttribute"] = ApiError("Forbidden.RAM", "User not authorized to operate.", 403)
    bundle = ca.bundle(["www.example.test"])
    with pytest.raises(DeployError) as err:
        t.deploy(Binding("www--slb", ("www.example.test",)), bundle)  # type: ignore[attr-defined]
    assert str(err.value) == "alibaba_slb: SetLoadBalancerHTTPSListenerAttribute: Forbidden.RAM: User not authorized to operate."
    # A transport error's text quotes the request URL, whose query string carries the key: it must not leak.
    down = get_target("alibaba_slb", {"region": "cn-hangzhou", "load_balancer_id": stub.lb, "listener_port": 443,
                                      "endpoint": "127.0.0.1:1", "protocol": "http", "timeout_ms": 500})
    with pytest.raises(DeployError) as err:
        down.deploy(Binding("www--slb", ("www.example.test",)), bundle)  # type: ignore[attr-defined]
    assert str(err.value) == ("alibaba_slb: UploadUserCertificate: cannot connect to the endpoint "
                              "(UnretryableException)")


@pytest.mark.parametrize(("raw", "message"), [
    ({"load_balancer_id": "lb-1", "listener_port": 443}, "region: is required"),
    ({"region": "cn-hangzhou", "listener_port": 443}, "load_balancer_id: is required"),
    ({"region": "cn-hangzhou", "load_balancer_id": "lb-1", "listener_port": 70000},
     "listener_port: must be a whole number from 1 to 65535"),
    ({"region": "cn-hangzhou", "load_balancer_id": "lb-1", "listener_port": 443, "protocol": "ftp"},
     "protocol: must be one of 'https' or 'http'"),
])
def test_bad_settings_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        get_target("alibaba_slb", raw)
    assert str(err.value) == message


# --- failed deploys leave no key behind, state ids stay true, rollbacks are read back, http stays on loopback ------

from providers.binding import _deploy_verified  # noqa: E402


def test_a_failed_deploy_deletes_what_it_uploaded(stub: AlibabaStub, ca: LocalCa) -> None:
    """The listener refuses the new certificate: what was uploaded (the key with it) is deleted again, and the
    message says nothing was changed. The same when SLB refuses to register the CAS upload."""
    t = target(stub)
    preexisting(stub, ca)
    stub.fail["SetLoadBalancerHTTPSListenerAttribute"] = ApiError("Forbidden.RAM", "User not authorized to operate.", 403)
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, Binding("www--slb", ("www.example.test",)), ca.bundle(["www.example.test"]), None)  # type: ignore[arg-type]
    assert set(stub.cas) == {1} and set(stub.server_certs) == {"sc-original"} and stub.listener_cert == "sc-original"
    assert str(err.value) == ("alibaba_slb: SetLoadBalancerHTTPSListenerAttribute: Forbidden.RAM: User not authorized "
                              "to operate. (nothing was changed)")

    del stub.fail["SetLoadBalancerHTTPSListenerAttribute"]
    stub.fail["UploadServerCertificate"] = ApiError("QuotaExceeded", "The server certificate quota is exceeded.")
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, Binding("www--slb", ("www.example.test",)), ca.bundle(["www.example.test"]), None)  # type: ignore[arg-type]
    assert set(stub.cas) == {1} and set(stub.server_certs) == {"sc-original"}
    assert str(err.value) == ("alibaba_slb: UploadServerCertificate: QuotaExceeded: The server certificate quota is "
                              "exceeded. (nothing was changed)")


class FailNth(dict):  # type: ignore[type-arg]
    """stub.fail that fails only the `n`th call of `action`."""

    def __init__(self, action: str, n: int, error: ApiError) -> None:
        super().__init__({action: error})
        self.action, self.n, self.seen = action, n, 0

    def __contains__(self, action: object) -> bool:
        if action != self.action:
            return False
        self.seen += 1
        return self.seen == self.n


def test_a_renewal_that_fails_half_way_through_the_domains_is_rolled_back(stub: AlibabaStub, ca: LocalCa) -> None:
    """SLB takes the new certificate for the first domain and refuses it for the second: the rollback learns what
    the deploy did, puts both domains back on the certificate state still names, and deletes the new upload."""
    t = target(stub)
    preexisting(stub, ca)
    binding = Binding("api--slb", ("api.example.test", "api2.example.test"), sni=True)
    v1 = ca.bundle(["api.example.test", "api2.example.test"], name="api")
    live = _deploy_verified(t, binding, v1, None)  # type: ignore[arg-type]
    cas_before, certs_before = set(stub.cas), set(stub.server_certs)
    stub.fail = FailNth("SetDomainExtensionAttribute", 2, ApiError("Throttling.User", "Request was denied due to "
                                                                   "user flow control.", 400))
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, binding.with_live(live), ca.bundle(["api.example.test", "api2.example.test"], name="api"),  # type: ignore[arg-type]
                         v1)
    assert str(err.value) == ("alibaba_slb: SetDomainExtensionAttribute: Throttling.User: Request was denied due to "
                              "user flow control. (previous certificate restored)")
    assert {e["ServerCertificateId"] for e in stub.extensions.values()} == {live["server_certificate_id"]}
    assert set(stub.cas) == cas_before and set(stub.server_certs) == certs_before
    t.verify(binding.with_live(live), v1)  # type: ignore[attr-defined]


def test_what_retire_could_not_delete_is_kept_as_just_what_is_left(stub: AlibabaStub, ca: LocalCa) -> None:
    """CAS refuses to delete the superseded original after SLB's copy is gone: state keeps the CAS id only (not
    an SLB id that no longer exists), and the next retire finishes the job."""
    t = target(stub)
    preexisting(stub, ca)
    binding = Binding("www--slb", ("www.example.test",))
    v1 = ca.bundle(["www.example.test"])
    live = _deploy_verified(t, binding, v1, None)  # type: ignore[arg-type]
    stub.fail["DeleteUserCertificate"] = ApiError("ServiceUnavailable", "The request has failed due to a temporary "
                                                  "failure of the server.", 503)
    live2 = _deploy_verified(t, binding.with_live(live), ca.bundle(["www.example.test"]), v1)  # type: ignore[arg-type]
    assert live["server_certificate_id"] not in stub.server_certs and live["cert_id"] in stub.cas
    assert live2["stale"] == [{"server_certificate_id": None, "cert_id": live["cert_id"]}]
    del stub.fail["DeleteUserCertificate"]
    live3 = t.retire(binding.with_live(live2))  # type: ignore[attr-defined]
    assert live3["stale"] == [] and live["cert_id"] not in stub.cas


def test_a_rollback_that_cannot_put_the_certificate_back_says_what_is_live(stub: AlibabaStub, ca: LocalCa) -> None:
    t = target(stub)
    preexisting(stub, ca)
    binding = Binding("www--slb", ("www.example.test",))
    v1 = ca.bundle(["www.example.test"])
    binding = binding.with_live(_deploy_verified(t, binding, v1, None))  # type: ignore[arg-type]
    renewed = binding.with_live(t.deploy(binding, ca.bundle(["www.example.test"])))  # type: ignore[attr-defined]
    stub.fail["SetLoadBalancerHTTPSListenerAttribute"] = ApiError("Forbidden.RAM", "User not authorized to operate.", 403)
    with pytest.raises(DeployError) as err:
        t.rollback(renewed, v1)  # type: ignore[attr-defined]
    new, old = renewed.live["server_certificate_id"], binding.live["server_certificate_id"]
    assert str(err.value) == ("alibaba_slb: SetLoadBalancerHTTPSListenerAttribute: Forbidden.RAM: User not authorized "
                              f"to operate.; alibaba_slb: after the rollback, listener {stub.lb}:{stub.port} uses {new} "
                              f"(certplane new certificate), not {old}: set it back by hand, or run `pulumi up` again")


@pytest.mark.parametrize(("extra", "field"), [
    ({}, "endpoint is not set, so Alibaba Cloud's own is called"),
    ({"endpoint": "slb.cn-hangzhou.aliyuncs.com"}, "endpoint slb.cn-hangzhou.aliyuncs.com is not on this machine"),
    ({"endpoint": "127.0.0.1:8080", "cas_endpoint": "10.0.0.7:80"}, "cas_endpoint 10.0.0.7:80 is not on this machine"),
])
def test_http_is_refused_off_loopback(extra: dict[str, object], field: str) -> None:
    """RPC parameters, the private key among them, travel in the URL: over http only to a stub on this machine."""
    with pytest.raises(InvalidInputError) as err:
        get_target("alibaba_slb", {"region": "cn-hangzhou", "load_balancer_id": "lb-1", "listener_port": 443,
                                   "protocol": "http", **extra})
    assert str(err.value) == (f"protocol: http sends every parameter, the private key among them, in clear text in "
                              f"the URL, and {field}: use https (http is only for a local stub on 127.0.0.1)")
    for loopback in ("127.0.0.1:8080", "[::1]:8080", "localhost:8080"):
        get_target("alibaba_slb", {"region": "cn-hangzhou", "load_balancer_id": "lb-1", "listener_port": 443,
                                   "protocol": "http", "endpoint": loopback})
    get_target("alibaba_slb", {"region": "cn-hangzhou", "load_balancer_id": "lb-1", "listener_port": 443, **extra})


def test_a_new_sni_binding_that_fails_verification_gives_each_domain_back_what_it_had(stub: AlibabaStub,
                                                                                     ca: LocalCa) -> None:
    """One domain already had an extension of its own: the rollback puts it back on that certificate (it does
    not delete the extension), removes the one the deploy added, and deletes the upload."""
    t = target(stub)
    preexisting(stub, ca)
    stub.extensions["de-theirs"] = {"DomainExtensionId": "de-theirs", "Domain": "api.example.test",
                                    "ServerCertificateId": "sc-original"}
    binding = Binding("api--slb", ("api.example.test", "api2.example.test"), sni=True)
    bundle = ca.bundle(["api.example.test", "api2.example.test"], name="api")
    verify = t.verify  # type: ignore[attr-defined]

    def fails(*_: object) -> None:
        raise DeployError("alibaba_slb: not served yet (simulated)")

    t.verify = fails  # type: ignore[attr-defined]
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, binding, bundle, None)  # type: ignore[arg-type]
    assert str(err.value) == "alibaba_slb: not served yet (simulated) (rolled back)"
    assert stub.extensions == {"de-theirs": {"DomainExtensionId": "de-theirs", "Domain": "api.example.test",
                                             "ServerCertificateId": "sc-original"}}
    assert set(stub.cas) == {1} and set(stub.server_certs) == {"sc-original"}
    t.verify = verify  # type: ignore[attr-defined]
