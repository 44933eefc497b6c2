"""`certplane check --probe` on targets that do not terminate TLS themselves: it asks each one, through its own
API (the target's observe(), as `pulumi refresh` does), what it holds, and compares with the inventory."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3

from providers.core.deploy import Binding, Bundle, get_target
from tests.support.pki import LocalCa
from tools.servers import free_port
from tools.servers.moto import DUMMY_ENV, MotoServer, create_https_listener, import_placeholder_certificate

from .helpers import entry, run_cli, write_inventory

NOW = dt.datetime.now(dt.timezone.utc)


def inventory(tmp_path: Path, bundle: Bundle, placements: list[dict[str, Any]]) -> Path:
    doc = entry(not_after=NOW + dt.timedelta(days=60), domains=("www.example.test",),
                targets=tuple(p["target"] for p in placements), bindings=placements)
    doc["fingerprint_sha256"] = bundle.fingerprint_sha256
    return write_inventory(tmp_path / "inv.json", {"www": doc})


def check(inv: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("check", "--inventory-file", str(inv), "--probe", *args, env=env, now=NOW)


def placement(target: str, kind: str, settings: dict[str, Any], live: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"binding_id": f"www--{target}", "target": target, "type": kind, "settings": settings,
            "server_names": ["www.example.test"], "sni": False, "live": live, **extra}


def test_a_directory_holds_the_certificate_then_another_then_none(tmp_path: Path, ca: LocalCa) -> None:
    settings = {"directory": str(tmp_path / "certs"), "formats": ["pem"]}
    target = get_target("files", settings)
    bundle = ca.bundle(["www.example.test"])
    live = target.deploy(Binding("www--disk"), bundle)
    inv = inventory(tmp_path, bundle, [placement("disk", "files", settings, live)])

    ok = check(inv)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "; 1 target holds it" in ok.stdout and "probed 0 endpoints, asked 1 target in" in ok.stdout

    other = ca.bundle(["www.example.test"])
    Path(live["fullchain_file"]).write_text(other.fullchain_pem)
    changed = check(inv, "--json")
    assert changed.returncode == 2
    finding, = json.loads(changed.stdout)["certificates"][0]["findings"]
    assert (finding["code"], finding["level"]) == ("target-mismatch", "critical")
    assert finding["message"] == (f"disk (files): holds another certificate (SHA-256 {other.fingerprint_sha256[:23]}"
                                  f"...) than the inventory's (SHA-256 {bundle.fingerprint_sha256[:23]}...)")
    held, = json.loads(changed.stdout)["targets"]
    assert held["held"] == {"default": other.fingerprint_sha256} and held["ok"] is True

    Path(live["fullchain_file"]).unlink()
    gone = check(inv)
    assert gone.returncode == 2
    assert "CRITICAL www  disk (files): holds no certificate" in gone.stdout.splitlines()


def test_a_load_balancer_listener_is_asked_through_the_aws_api(tmp_path: Path, ca: LocalCa,
                                                               moto: MotoServer) -> None:
    url = moto.endpoint_url
    listener = create_https_listener(url, "us-east-1", import_placeholder_certificate(url, "us-east-1"))["listener_arn"]
    settings = {"region": "us-east-1", "listener_arn": listener, "endpoint_url": url}
    bundle = ca.bundle(["www.example.test"])
    live = get_target("aws_elbv2", settings).deploy(Binding("www--alb"), bundle)
    inv = inventory(tmp_path, bundle, [placement("alb", "aws_elbv2", settings, live)])
    aws = dict(DUMMY_ENV)

    ok = check(inv, env=aws)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "; 1 target holds it" in ok.stdout

    elb = boto3.client("elbv2", region_name="us-east-1", endpoint_url=url)
    elb.modify_listener(ListenerArn=listener, Certificates=[{"CertificateArn": import_placeholder_certificate(
        url, "us-east-1")}])  # someone swapped the default by hand
    swapped = check(inv, env=aws)
    assert swapped.returncode == 2
    assert "CRITICAL www  alb (aws_elbv2): holds another certificate (SHA-256 " in swapped.stdout


def test_a_target_that_cannot_be_read_is_critical_in_one_line(tmp_path: Path, ca: LocalCa) -> None:
    settings = {"region": "us-east-1", "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                "listener/app/x/1/2", "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    bundle = ca.bundle(["www.example.test"])
    inv = inventory(tmp_path, bundle, [placement("alb", "aws_elbv2", settings,
                                                 {"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"})])
    result = check(inv, env={**DUMMY_ENV, "AWS_MAX_ATTEMPTS": "1"})
    assert result.returncode == 2
    line, = [ln for ln in result.stdout.splitlines() if ln.startswith("CRITICAL www")]
    assert line.startswith("CRITICAL www  alb (aws_elbv2): aws_elbv2: describe_listener_certificates: ")
    assert "Traceback" not in result.stdout + result.stderr


def test_a_directory_that_cannot_be_read_is_critical_in_one_line(tmp_path: Path, ca: LocalCa) -> None:
    not_a_directory = tmp_path / "certs"
    not_a_directory.write_text("a file where the directory should be")
    settings = {"directory": str(not_a_directory), "formats": ["pem"]}
    bundle = ca.bundle(["www.example.test"])
    inv = inventory(tmp_path, bundle, [placement("disk", "files", settings, {"name": "www"})])
    result = check(inv)
    assert result.returncode == 2, result.stdout + result.stderr
    line, = [ln for ln in result.stdout.splitlines() if ln.startswith("CRITICAL www")]
    assert line == f"CRITICAL www  disk (files): files: cannot read {not_a_directory}/www.fullchain.pem: Not a directory"
    assert "Traceback" not in result.stdout + result.stderr
