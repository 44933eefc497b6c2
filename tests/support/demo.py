"""The demo's own stack config (Pulumi.local.yaml), pointed at servers started on free ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.servers import demo_sites
from tools.servers.haproxy import HaproxyServer
from tools.servers.nginx import NginxServer
from tools.servers.pebble import PebbleServer

ROOT = Path(__file__).resolve().parents[2]


def demo_raw_config(text: str | None = None) -> dict[str, Any]:
    """The `certplane:*` config of Pulumi.local.yaml (or of `text`, e.g. an older release's file)."""
    raw = yaml.safe_load(text if text is not None else (ROOT / "Pulumi.local.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("certplane:")}


@dataclass(frozen=True)
class DemoServers:
    """What `make demo` starts, here on free ports."""

    pebble: PebbleServer
    nginx: NginxServer
    haproxy: HaproxyServer
    moto_url: str


def demo_config(servers: DemoServers, files_dir: Path, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo's config (or `raw`, e.g. an older release's) pointed at `servers`; the files target at
    `files_dir`."""
    config = raw if raw is not None else demo_raw_config()
    pebble, nginx = servers.pebble, servers.nginx
    acme = config["issuers"]["acme-local"]
    acme.update(directory_url=pebble.directory_url, ca_bundle=str(pebble.ca_bundle_path))
    acme["dns"].update(url=pebble.challtestsrv_url, resolver=pebble.challtestsrv_dns)
    acme["http01"]["listen"] = f"127.0.0.1:{pebble.http01_port}"
    targets = config["targets"]
    targets["edge"].update(conf_dir=str(nginx.conf_dir), listen=nginx.listen)
    if "site" in targets:  # the demo's own sites, in snippet mode (not in releases before it)
        targets["site"].update(conf_dir=str(demo_sites.snippets_dir(nginx)), conf=str(nginx.main_conf),
                               listen=nginx.listen)
    if "lb" in targets:  # HAProxy (not in releases before it)
        targets["lb"].update(servers.haproxy.target_settings())
    targets["alb"]["endpoint_url"] = servers.moto_url
    if "cdn" in targets:  # CloudFront (not in releases before it)
        targets["cdn"]["endpoint_url"] = servers.moto_url
    targets["lab-files"]["directory"] = str(files_dir)
    return config


def expected_counts(config: dict[str, Any]) -> dict[str, int]:
    """What the demo config should make, counted from the config itself: resources created (a component per
    certificate plus its certificate and bindings; two per CA level plus the CA component; an account per
    ACME issuer; the fleet), TLS endpoints (one per server name bound to nginx or HAProxy) and the other
    targets `check --probe` asks through their API (one per binding)."""
    certificates, issuers, targets = config["certificates"], config["issuers"], config["targets"]
    resources = 2  # the stack and the fleet
    for issuer in issuers.values():
        if issuer["type"] == "private_ca":
            resources += 1 + 2 * (2 if issuer.get("intermediate") else 1)
        elif issuer["type"] == "acme":
            resources += 1
    endpoints = asked = 0
    for cert in certificates.values():
        resources += 2 + len(cert.get("bindings", []))
        for binding in cert.get("bindings", []):
            if targets[binding["target"]]["type"] in ("nginx", "haproxy"):
                endpoints += len(binding.get("server_names") or cert.get("domains") or ["(from the upload)"])
            else:
                asked += 1
    return {"resources": resources, "endpoints": endpoints, "targets": asked}
