"""The demo's own stack config (Pulumi.local.yaml) end to end on the real engine, with the demo's servers on free
ports instead of the fixed ones: ACME (DNS-01 wildcard, HTTP-01) from Pebble, private CA, self-signed and
uploaded certificates, bound to nginx (SNI), an ALB on moto and a directory; every endpoint probed."""

from __future__ import annotations

import json
import os
import subprocess

import boto3
import pytest

from tests.support.demo import demo_config, expected_counts
from providers.core.certificates import fingerprint_of_pem
from providers.core.tls import served_fingerprint
from tests.support.https import https_get
from tools.servers import demo_sites
from tools.servers.demo import CDN_ALIAS
from tools.servers.nginx import sites_dir
from tools.demo_upload import main as make_demo_upload
from tools.servers.moto import DUMMY_ENV, write_credentials
from tools.servers.prometheus import PrometheusServer
from tests.cli.test_metrics import MetricsListener

from .harness import ROOT, EngineProject, changed_steps

pytestmark = pytest.mark.integration


def test_the_demo_stack_issues_deploys_and_verifies(tmp_path, demo_servers):
    nginx, moto_url = demo_servers.nginx, demo_servers.moto_url
    config = demo_config(demo_servers, tmp_path / "lab-certs")
    expected = expected_counts(config)
    project = EngineProject(tmp_path, config)
    make_demo_upload(str(project.dir / ".certplane" / "demo-upload"))
    write_credentials(project.dir / ".certplane" / "aws" / "credentials")  # what `make demo`'s servers write
    aws = {key: "" for key in DUMMY_ENV}  # the ALB is reached through the demo's profile, not the environment
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=moto_url)
    acm = boto3.client("acm", region_name="us-east-1", endpoint_url=moto_url)
    distribution = next(d["Id"] for d in cloudfront.list_distributions()["DistributionList"]["Items"]
                        if CDN_ALIAS in d["Aliases"].get("Items", []))

    def viewer_certificate_arn() -> str:
        config = cloudfront.get_distribution_config(Id=distribution)["DistributionConfig"]
        return str(config["ViewerCertificate"]["ACMCertificateArn"])

    placeholder_arn = viewer_certificate_arn()
    try:
        up = project.up(env=aws)
        assert up.summary.resource_changes.get("create") == expected["resources"]
        inventory = project.outputs()["inventory"]
        assert {n: e["issuer"] for n, e in inventory.items()} == {
            name: ("upload" if "upload" in cert else cert["issuer"]) for name, cert in config["certificates"].items()}

        # nginx serves every SNI name; the probe in `certplane check` agrees.
        check = subprocess.run(
            [str(ROOT / "certplane"), "check", "--probe", "--stack", project.stack_name, "--cwd", str(project.dir),
             "--warn-days", "7"],
            env={**os.environ, **project.env, **aws}, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"probed {expected['endpoints']} endpoints, asked {expected['targets']} targets" in check.stdout

        # A real Prometheus scrapes the demo's metrics: every certificate, every probed endpoint served right.
        inventory_file = tmp_path / "inventory.json"
        inventory_file.write_text(json.dumps(inventory))
        exporter = MetricsListener(inventory_file, "--stack", project.stack_name, "--probe", "--cache-seconds", "5")
        try:
            with PrometheusServer([f"127.0.0.1:{exporter.port}"], workdir=tmp_path / "prometheus",
                                  scrape_interval="1s") as prometheus:
                expiries = prometheus.wait_for("x509_cert_not_after", lambda r: len(r) == len(inventory),
                                               timeout=60)
                assert {r["metric"]["certificate"] for r in expiries} == set(inventory)
                probes = prometheus.wait_for("probe_success", lambda r: len(r) == expected["endpoints"], timeout=60)
                assert {r["value"][1] for r in probes} == {"1"}, probes
        finally:
            assert exporter.stop() == 0

        # The demo's own sites (snippet mode) proxy to their apps under the managed certificates.
        for name, host in (("www", "www.example.test"), ("www", "example.test"), ("blog", "blog.example.test")):
            status, body, fingerprint = https_get(nginx.host, nginx.port, host)
            assert (status, body, fingerprint) == (200, f"{name} app: hello {host}\n",
                                                   inventory[name]["fingerprint_sha256"])
        sites = {p: p.read_bytes() for p in sites_dir(nginx.conf_dir).glob("*.conf")}
        placeholders = {p: p.read_bytes() for p in demo_sites.snippets_dir(nginx).glob("*.conf.before-certplane")}
        assert len(placeholders) == 2

        # HAProxy serves its bindings (a wildcard by its SNI filter), swapped in through the runtime API.
        haproxy = demo_servers.haproxy
        for name, host in (("api", "api.example.test"), ("shop", "x.shop.example.test"), ("shop", "shop.example.test")):
            assert served_fingerprint(haproxy.host, haproxy.port, host) == inventory[name]["fingerprint_sha256"]
        assert len(haproxy.crt_list.read_text().splitlines()) == 2

        # The ALB carries the SNI-bound certificates; the lab certificate sits in its directory.
        elb = boto3.client("elbv2", region_name="us-east-1", endpoint_url=moto_url)
        listener = elb.describe_listeners(LoadBalancerArn=elb.describe_load_balancers(
            Names=["certplane-alb"])["LoadBalancers"][0]["LoadBalancerArn"])["Listeners"][0]["ListenerArn"]
        sni = [c for c in elb.describe_listener_certificates(ListenerArn=listener)["Certificates"]
               if not c["IsDefault"]]
        alb_sni = [n for n, c in config["certificates"].items()
                   if any(b["target"] == "alb" and b.get("sni") for b in c.get("bindings", []))]
        assert len(sni) == len(alb_sni) > 0
        # The CloudFront distribution (found by its alias) serves blog's certificate from ACM in us-east-1.
        viewer_arn = viewer_certificate_arn()
        assert viewer_arn != placeholder_arn
        assert fingerprint_of_pem(acm.get_certificate(CertificateArn=viewer_arn)["Certificate"]) == \
            inventory["blog"]["fingerprint_sha256"]
        assert (tmp_path / "lab-certs").is_dir() and any((tmp_path / "lab-certs").iterdir())

        assert changed_steps(project.preview(env=aws)) == {}
    finally:
        project.destroy()
    assert not any((nginx.conf_dir / "certplane").glob("*.conf"))
    assert demo_servers.haproxy.crt_list.read_text() == ""
    assert viewer_certificate_arn() == placeholder_arn  # the distribution's certificate from before is back
    # The sites are as they were written; each snippet is the site's own again.
    assert {p: p.read_bytes() for p in sites_dir(nginx.conf_dir).glob("*.conf")} == sites
    assert {p.with_name(p.name + ".before-certplane"): p.read_bytes()
            for p in demo_sites.snippets_dir(nginx).glob("*.conf")} == placeholders
