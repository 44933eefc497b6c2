"""Component wiring with Pulumi mocks (no engine): what the demo config turns into, resource by resource."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.config import parse_fleet
from providers._wire import from_wire
from providers.core import deploy
from tests.support.demo import demo_raw_config, expected_counts
from tools.demo_upload import main as make_demo_upload

DYNAMIC = "pulumi-python:dynamic/certplane:"
NOT_AFTER = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")


def secret(value: Any) -> Any:
    """The value inside a Pulumi secret, asserting it is one (mocks see the wire's secret envelope)."""
    assert isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == \
        "1b47061264138c4ac30d75fd1eb44270", f"not a secret: {value!r}"
    return value["value"]


class Recorder(pulumi.runtime.Mocks):
    """Records every resource; gives certificate resources the few outputs components read."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources[(args.typ, args.name)] = dict(args.inputs)
        outputs = dict(args.inputs)
        if args.typ.endswith(("Certificate", "UploadedCertificate")):
            outputs.update(cert_pem="CERT", chain_pem="", private_key_pem="KEY", serial="01",
                           not_before="2026-01-01T00:00:00Z", not_after=NOT_AFTER, renewal_time=NOT_AFTER,
                           fingerprint_sha256="AA", key_algorithm="ECDSA-P-256", issuer="CN=x",
                           dns_names=list(args.inputs.get("domains") or ["legacy.example.test"]),
                           keystore_password="pw")
        if args.typ.endswith("AcmeAccount"):
            outputs.update(account_key_pem="ACCOUNT-KEY", account_url="https://ca.example.test/acct/1")
        if args.typ.endswith("PrivateKey"):
            outputs.update(private_key_pem="CA-KEY")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        return {}

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: inputs for (typ, name), inputs in self.resources.items() if typ == DYNAMIC + kind}


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, Any]:
    make_demo_upload(str(tmp_path / ".certplane" / "demo-upload"))
    return demo_raw_config()


def build(config: dict[str, Any], base_dir: Path) -> tuple[Recorder, Any]:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, preview=False)
    from components.fleet import Fleet

    fleet = Fleet("certplane", parse_fleet(config, base_dir=base_dir), base_dir=base_dir)
    return recorder, fleet


@pulumi.runtime.test
def test_the_demo_config_becomes_typed_resources(demo: dict[str, Any], tmp_path: Path) -> Any:
    recorder, fleet = build(demo, tmp_path)

    def check(values: list[Any]) -> None:
        inventory = values[0]
        dynamic = {typ for typ, _ in recorder.resources if typ.startswith("pulumi-python")}
        assert dynamic and all(t.startswith(DYNAMIC) for t in dynamic), dynamic  # a type token for each
        assert len(recorder.resources) == expected_counts(demo)["resources"] - 1  # the stack is not a mock resource

        certs = recorder.of("Certificate")
        for name, spec in demo["certificates"].items():
            if "upload" in spec:
                assert name in recorder.of("UploadedCertificate")
                continue
            issuer_type = "self_signed" if spec["issuer"] == "self_signed" else demo["issuers"][spec["issuer"]]["type"]
            assert certs[name]["issuer_type"] == issuer_type
            assert certs[name]["domains"] == spec["domains"]
        assert certs["shop"]["issuer_settings"]["challenge"] == "dns-01"
        assert secret(certs["shop"]["issuer_secrets"])["dns"]["provider"] == "challtestsrv"  # may hold credentials
        assert certs["blog"]["issuer_settings"]["challenge"] == "http-01" and not certs["blog"].get("issuer_secrets")
        assert secret(certs["blog"]["issuer_credentials"]) == {"account_key_pem": "ACCOUNT-KEY",
                                                              "account_url": "https://ca.example.test/acct/1"}
        assert secret(certs["www"]["issuer_credentials"])["ca_private_key_pem"] == "CA-KEY"
        assert certs["internal-root"]["issuer_type"] == "self_signed" and certs["internal-root"]["is_ca"]
        assert certs["internal-intermediate"]["issuer_type"] == "private_ca"

        bindings = recorder.of("CertificateBinding")
        assert {b["target"] for b in bindings.values()} == set(demo["targets"])
        www_site = bindings["www--site"]
        assert secret(www_site["private_key_pem"]) == "KEY" and secret(www_site["keystore_password"]) == "pw"
        assert www_site["server_names"] == ["www.example.test", "example.test"]
        assert www_site["target_type"] == "nginx"
        site = deploy.parse_settings("nginx", from_wire(www_site["target_settings"]))
        assert site.conf_dir == str((tmp_path / ".certplane" / "nginx" / "snippets").resolve())  # project-relative
        assert site.mode == "snippet"  # type: ignore[attr-defined]
        edge = deploy.parse_settings("nginx", from_wire(bindings["api--edge"]["target_settings"]))
        assert edge.mode == "server"  # type: ignore[attr-defined]
        assert bindings["api--edge"]["server_names"] == ["api.example.test"]  # the domains, known at preview

        # The inventory lists TLS endpoints for the targets that terminate TLS themselves (nginx, HAProxy).
        assert [(e["port"], e["server_name"]) for e in inventory["shop"]["endpoints"]] == [
            (8443, "certplane-probe.shop.example.test"), (8443, "shop.example.test"),
            (9443, "certplane-probe.shop.example.test"), (9443, "shop.example.test")]
        assert inventory["lab"]["endpoints"] == [] and inventory["lab"]["issuer"] == "self_signed"

    registered = [b.id for m in fleet.managed.values() for b in m.bindings]  # the last to register
    return pulumi.Output.all(fleet.inventory, *registered).apply(check)
