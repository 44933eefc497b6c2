"""The demo's own stack config (Pulumi.local.yaml) end to end on the real engine, with the demo's servers on free
ports instead of the fixed ones: ACME (DNS-01 wildcard, HTTP-01) from Pebble, private CA, self-signed and
uploaded certificates, bound to nginx (SNI), an ALB on moto and a directory; every endpoint probed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml

from tools.demo_upload import main as make_demo_upload
from tools.servers.moto import DUMMY_ENV, create_https_listener, import_placeholder_certificate
from tools.servers.nginx import NginxServer
from tools.servers.pebble import PebbleServer, free_port

from .harness import ROOT, EngineProject, changed_steps

pytestmark = pytest.mark.integration


def demo_config(pebble: PebbleServer, nginx: NginxServer, moto_url: str, files_dir: Path) -> dict:
    raw = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"]
    config = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("certplane:")}
    acme = config["issuers"]["acme-local"]
    acme.update(directory_url=pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    acme["dns"].update(url=pebble.challtestsrv_url, resolver=pebble.challtestsrv_dns)
    acme["http01"]["listen"] = f"127.0.0.1:{pebble.http01_port}"
    targets = config["targets"]
    targets["edge"].update(conf_dir=str(nginx.conf_dir), listen=nginx.listen)
    targets["alb"]["endpoint_url"] = moto_url
    targets["lab-files"]["directory"] = str(files_dir)
    return config


@pytest.fixture
def servers(tmp_path, moto):
    """moto is one in-process backend per test session: the shared fixture resets it for this test."""
    nginx = NginxServer(tmp_path / "nginx", f"127.0.0.1:{free_port()}")
    with PebbleServer() as pebble:
        nginx.start(timeout=10)
        try:
            url = moto.endpoint_url
            create_https_listener(url, "us-east-1", import_placeholder_certificate(url, "us-east-1"))
            yield pebble, nginx, url
        finally:
            nginx.stop(timeout=10)


def test_the_demo_stack_issues_deploys_and_verifies(tmp_path, servers):
    pebble, nginx, moto_url = servers
    project = EngineProject(tmp_path, demo_config(pebble, nginx, moto_url, tmp_path / "lab-certs"))
    make_demo_upload(str(project.dir / ".certplane" / "demo-upload"))
    aws = dict(DUMMY_ENV)
    try:
        up = project.up(env=aws)
        assert up.summary.resource_changes.get("create") == 28
        inventory = project.outputs()["inventory"]
        assert {n: e["issuer"] for n, e in inventory.items()} == {
            "www": "internal", "api": "internal", "shop": "acme-local", "blog": "acme-local",
            "lab": "self_signed", "legacy": "upload"}

        # nginx serves every SNI name; the probe in `certplane check` agrees.
        check = subprocess.run(
            [str(ROOT / "certplane"), "check", "--probe", "--stack", project.stack_name, "--cwd", str(project.dir),
             "--warn-days", "7"],
            env={**os.environ, **project.env, **aws}, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "probed 7 endpoints" in check.stdout

        # The ALB carries www and blog as SNI certificates; the lab certificate sits in its directory.
        elb = boto3.client("elbv2", region_name="us-east-1", endpoint_url=moto_url)
        listener = elb.describe_listeners(LoadBalancerArn=elb.describe_load_balancers(
            Names=["certplane-alb"])["LoadBalancers"][0]["LoadBalancerArn"])["Listeners"][0]["ListenerArn"]
        sni = [c for c in elb.describe_listener_certificates(ListenerArn=listener)["Certificates"]
               if not c["IsDefault"]]
        assert len(sni) == 2
        assert (tmp_path / "lab-certs").is_dir() and any((tmp_path / "lab-certs").iterdir())

        assert changed_steps(project.preview(env=aws)) == {}
    finally:
        project.destroy()
    assert not any((nginx.conf_dir / "certplane").glob("*.conf"))
