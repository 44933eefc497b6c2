"""Fault suite, item 2: the servers certplane talks to misbehave during a real `pulumi up`.

One stack, on the real engine: an ACME certificate (DNS-01) from a Pebble that rejects half of all nonces,
deployed to nginx, HAProxy, a files target on a small real tmpfs, and an ELBv2 listener on moto. The ACME
directory, the DNS provider's API and moto are reached through `FaultProxy`s (tests/reliability/harness.py),
so a test can make one of them answer 429, 500, nothing, or not at all, while the servers themselves stay real.

Each fault is injected during a renewal (time travel past the renewal window: certificates are still signed at
the real time) and then healed. What every case asserts:
- the failed `up` says what went wrong in one line, with no traceback;
- no binding is half-applied: each endpoint still serves a certificate that is valid, complete and matches
  the key beside it (the old one where its deploy failed);
- the next `up`, once the fault is gone, converges: every binding serves the certificate in the state, and a
  preview has nothing left to do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from pulumi import automation as auto

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.tls import served_fingerprint
from tests.integration.harness import EngineProject, changed_steps, from_now
from tools.servers import free_port
from tools.servers.haproxy import HaproxyServer
from tools.servers.moto import (DUMMY_ENV, MotoServer, create_https_listener, import_placeholder_certificate,
                               write_credentials)
from tools.servers.nginx import NginxServer
from tools.servers.pebble import PebbleServer

from .harness import FaultProxy, Reply

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "site"
DOMAIN = "site.faults.example.test"
REGION = "us-east-1"
RENEWAL_DUE = {"CERTPLANE_NOW": from_now(62)}  # past Pebble's ARI window (two thirds of 90 days)
TMPFS_BYTES = 256 * 1024


class FailingCommand:
    """A reload command that exits 1 (saying so on stderr) while `failing` exists, else runs the real one."""

    def __init__(self, directory: Path, real: list[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.flag, self.script = directory / "failing", directory / "reload.sh"
        self.script.write_text("#!/bin/sh\n"
                               f"if [ -e '{self.flag}' ]; then echo 'reload refused by the test' >&2; exit 1; fi\n"
                               f"exec {' '.join(real)}\n")
        self.script.chmod(0o755)

    def fail(self) -> None:
        self.flag.touch()

    def heal(self) -> None:
        self.flag.unlink(missing_ok=True)


@dataclass
class Fleet:
    """The servers, the proxies in front of them, and the stack."""

    pebble: PebbleServer
    acme: FaultProxy
    dns: FaultProxy
    aws: FaultProxy
    nginx: NginxServer
    nginx_reload: FailingCommand
    haproxy: HaproxyServer
    haproxy_socket: Path  # the target's socket path: a symlink to HAProxy's runtime API socket
    haproxy_reload: FailingCommand
    disk: Path  # the files target's directory, on a tmpfs of TMPFS_BYTES
    elb: Any
    listener: str
    project: EngineProject

    # --- what the endpoints serve --------------------------------------------------------------------------
    def served(self) -> dict[str, str | None]:
        """Target -> the fingerprint of the leaf each one serves now (the files target's: the file on disk)."""
        out: dict[str, str | None] = {}
        for target, listen in (("edge", self.nginx.listen), ("lb", self.haproxy.listen)):
            host, port = listen.rsplit(":", 1)
            out[target] = served_fingerprint(host, int(port), DOMAIN)
        crt = self.disk / f"{NAME}.crt"
        out["disk"] = x509util.fingerprint_of_pem(crt.read_text()) if crt.exists() else None
        certs = self.elb.describe_listener_certificates(ListenerArn=self.listener)["Certificates"]
        arn = next(c["CertificateArn"] for c in certs if c.get("IsDefault"))
        acm = boto3.client("acm", region_name=REGION, endpoint_url=self.aws.upstream_url)
        out["alb"] = x509util.fingerprint_of_pem(acm.get_certificate(CertificateArn=arn)["Certificate"])
        return out

    def assert_whole(self) -> None:
        """Nothing half-applied: each endpoint's certificate is valid now and is the key's pair beside it."""
        now = dt.datetime.now(dt.timezone.utc)
        pairs = {"edge": (self.nginx.conf_dir / "certplane" / "certs" / f"{NAME}--edge.fullchain.pem",
                          self.nginx.conf_dir / "certplane" / "certs" / f"{NAME}--edge.key.pem"),
                 "disk": (self.disk / f"{NAME}.crt", self.disk / f"{NAME}.key")}
        for target, (chain_path, key_path) in pairs.items():
            chain = x509util.load_certificates(chain_path.read_text())
            x509util.check_key_pair(keys.load_private_key(key_path.read_text()), chain[0])
            assert chain[0].not_valid_before_utc <= now < chain[0].not_valid_after_utc, target
            for cert, issuer in zip(chain, chain[1:]):
                assert x509util.signed_by(cert, issuer), target

    def assert_converged(self) -> None:
        """Every binding serves the certificate in the state, and there is nothing left to do."""
        fingerprint = self.project.outputs()["inventory"][NAME]["fingerprint_sha256"]
        assert self.served() == dict.fromkeys(("edge", "lb", "disk", "alb"), fingerprint)
        self.assert_whole()
        assert changed_steps(self.project.preview()) == {}

    def serial(self) -> str:
        return str(self.project.outputs()["inventory"][NAME]["serial"])


def failed_up(project: EngineProject, env: dict[str, str] | None = None) -> str:
    """An `up` that must fail; returns what certplane said (see `said_by`)."""
    with pytest.raises(auto.CommandError) as err:
        project.up(env=env)
    return said_by(err.value)


def said_by(err: auto.CommandError) -> str:
    """The engine's `error:` lines of a failed run but its own summary ("update failed"); no traceback."""
    text = str(err)
    assert "Traceback" not in text, text
    said = [line.strip() for line in text.splitlines() if line.strip().startswith("error:")
            and not re.fullmatch(r"error: ((update|preview) failed|Resource monitor has terminated, shutting down)",
                                                line.strip())]
    assert said, text
    return "\n".join(said)


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """A real tmpfs of `size` bytes mounted at `path` (the machine's CI runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True,
                   timeout=30, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30, capture_output=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`; returns the file to delete to heal it."""
    junk = disk / "junk"
    for path, chunk in ((junk, 4096), (disk / "junk2", 1)):  # then what a 4 KiB write left over
        with contextlib.suppress(OSError), open(path, "wb", buffering=0) as out:
            while True:
                out.write(b"\0" * chunk)
    assert os.statvfs(disk).f_bavail == 0
    return junk


def problem(status: int, kind: str, detail: str, **headers: str) -> Reply:
    body = json.dumps({"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail, "status": status}).encode()
    return status, [("Content-Type", "application/problem+json"), *headers.items()], body


# --- the fleet ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("faults")
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as env:
        for key, value in DUMMY_ENV.items():  # this process's own boto3 clients (reading moto directly)
            env.setenv(key, value)
        pebble = stack.enter_context(PebbleServer(nonce_reject=50))
        acme = FaultProxy(f"https://127.0.0.1:{pebble.acme_port}", tls=pebble.acme_tls,
                          upstream_ca=pebble.ca_bundle_path)
        dns = FaultProxy(pebble.challtestsrv_url)
        aws = FaultProxy(moto_server.endpoint_url)
        for proxy in (acme, dns, aws):
            stack.callback(proxy.close)

        nginx = NginxServer(base / "nginx", f"127.0.0.1:{free_port()}")
        nginx.start(timeout=10)
        stack.callback(nginx.stop, timeout=10)
        haproxy = HaproxyServer(base / "haproxy", f"127.0.0.1:{free_port()}")
        haproxy.start(timeout=10)
        stack.callback(haproxy.stop, timeout=10)
        disk = stack.enter_context(tmpfs(base / "disk", TMPFS_BYTES))

        nginx_reload = FailingCommand(base / "nginx-reload", nginx._ctl("-s", "reload"))
        haproxy_settings = haproxy.target_settings()
        haproxy_reload = FailingCommand(base / "haproxy-reload", list(haproxy_settings["reload_command"]))
        haproxy_socket = base / "haproxy-admin.sock"
        haproxy_socket.symlink_to(haproxy.socket)

        moto_server.reset()  # the session's moto: what an earlier module made there (its ALB) would clash
        placeholder = import_placeholder_certificate(moto_server.endpoint_url, REGION)
        listener = create_https_listener(moto_server.endpoint_url, REGION, placeholder)["listener_arn"]
        elb = boto3.client("elbv2", region_name=REGION, endpoint_url=moto_server.endpoint_url)

        issuer = {"type": "acme", "directory_url": f"{acme.url}/dir", "email": "ops@example.test",
                  "ca_bundle": str(pebble.ca_bundle_path), "profile": "default",
                  "dns": {"provider": "challtestsrv", "url": dns.url, "resolver": pebble.challtestsrv_dns,
                          "propagation_timeout": 4}}
        config = {
            "issuers": {"pebble": issuer},
            "certificates": {NAME: {"domains": [DOMAIN], "issuer": "pebble",
                                    "bindings": [{"target": t} for t in ("edge", "lb", "disk", "alb")]}},
            "targets": {
                "edge": {"type": "nginx", **nginx.target_settings(), "reload_command": [str(nginx_reload.script)]},
                "lb": {"type": "haproxy", **haproxy_settings, "socket": str(haproxy_socket),
                       "reload_command": [str(haproxy_reload.script)]},
                "disk": {"type": "files", "directory": str(disk)},
                "alb": {"type": "aws_elbv2", "region": REGION, "listener_arn": listener, "endpoint_url": aws.url,
                        "profile": "certplane-demo", "credentials_file": str(base / "aws" / "credentials")},
            },
        }
        write_credentials(base / "aws" / "credentials")
        project = EngineProject(base / "stack", config)
        fleet = Fleet(pebble, acme, dns, aws, nginx, nginx_reload, haproxy, haproxy_socket, haproxy_reload, disk,
                      elb, listener, project)
        project.up()
        stack.callback(project.destroy)
        yield fleet


@pytest.fixture
def converged(fleet: Fleet) -> Iterator[Fleet]:
    """Each case starts and ends with every fault healed; it starts from a converged stack."""
    fleet.assert_converged()
    yield fleet
    for proxy in (fleet.acme, fleet.dns, fleet.aws):
        proxy.set(None)
    fleet.nginx_reload.heal()
    fleet.haproxy_reload.heal()
    if not fleet.haproxy_socket.is_symlink():
        fleet.haproxy_socket.symlink_to(fleet.haproxy.socket)
    for junk in fleet.disk.glob("junk*"):
        junk.unlink()


def renew_after(fleet: Fleet, said: str, pattern: str) -> None:
    """The failed renewal said `pattern` (one line), changed nothing served; the healed `up` converges."""
    assert re.search(pattern, said), said
    assert len(said.splitlines()) == 1, said
    fleet.assert_whole()
    fleet.project.up(env=RENEWAL_DUE)
    fleet.assert_converged()


# --- ACME ------------------------------------------------------------------------------------------------------

def test_issued_and_renewed_while_pebble_rejects_half_of_all_nonces(converged: Fleet) -> None:
    """Pebble at 50% badNonce: every POST may be refused; the bounded nonce retries absorb it. Pebble draws each
    rejection at random: a renewal (~8 POSTs) sees fewer than two 3.5% of the time, so it renews again, at most three
    times, until the fault was really there (fewer than two in three renewals: about 1 in 670,000)."""
    rejected = posts = 0
    for _ in range(3):
        before = converged.serial()
        converged.acme.observed.clear()
        converged.project.up(env=RENEWAL_DUE)
        assert converged.serial() != before
        rejected += sum(1 for _, _, _, body in converged.acme.observed if b"badNonce" in body)
        posts += sum(1 for method, _, _, _ in converged.acme.observed if method == "POST")
        if rejected >= 2:
            break
    assert posts >= 8 and rejected >= 2, (posts, rejected)  # the fault was really there
    converged.assert_converged()


def test_acme_rate_limited_with_retry_after(converged: Fleet) -> None:
    """429 `rateLimited` with Retry-After on new-order: never slept through; the line says when to come back."""
    before, served = converged.serial(), converged.served()
    converged.acme.set(lambda method, path, body: problem(
        429, "rateLimited", "too many new orders recently", **{"Retry-After": "3600"})
        if method == "POST" and path.endswith("/order-plz") else None)
    said = failed_up(converged.project, RENEWAL_DUE)
    assert converged.acme.faulted >= 1
    assert converged.serial() == before and converged.served() == served
    converged.acme.set(None)
    renew_after(converged, said, r"rate limited by the CA; retry after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                                 r"\(urn:ietf:params:acme:error:rateLimited: too many new orders recently\)$")


# --- DNS -------------------------------------------------------------------------------------------------------

def test_dns_provider_fails_on_the_first_present(converged: Fleet) -> None:
    """The DNS API answers 500 to the first TXT write: the order fails (its authorization deactivated), the
    next `up` orders again."""
    before, served = converged.serial(), converged.served()
    converged.dns.set(lambda method, path, body: (500, [], b"internal error")
                      if path == "/set-txt" and converged.dns.faulted == 0 else None)
    said = failed_up(converged.project, RENEWAL_DUE)
    assert converged.dns.faulted == 1
    assert converged.serial() == before and converged.served() == served
    converged.dns.set(None)
    renew_after(converged, said, r"challtestsrv: /set-txt at http://127.0.0.1:\d+ failed: Internal Server Error$")


def test_txt_record_that_never_propagates(converged: Fleet) -> None:
    """The DNS API says yes and publishes nothing: the bounded propagation wait names the record."""
    before, served = converged.serial(), converged.served()
    converged.dns.set(lambda method, path, body: (200, [], b"") if path == "/set-txt" else None)
    said = failed_up(converged.project, RENEWAL_DUE)
    assert converged.serial() == before and converged.served() == served
    converged.dns.set(None)
    renew_after(converged, said, rf"not propagated after 4 ?s \(_acme-challenge\.{re.escape(DOMAIN)} TXT")


# --- targets ---------------------------------------------------------------------------------------------------

def test_nginx_reload_fails(converged: Fleet) -> None:
    old = converged.served()["edge"]
    converged.nginx_reload.fail()
    said = failed_up(converged.project, RENEWAL_DUE)
    now = converged.served()
    assert now["edge"] == old  # nginx still serves the old one, and its files on disk are the old pair
    assert x509util.fingerprint_of_pem((converged.nginx.conf_dir / "certplane" / "certs" /
                                        f"{NAME}--edge.fullchain.pem").read_text()) == old
    converged.nginx_reload.heal()
    renew_after(converged, said, r"nginx: reload failed \(exit 1\), previous certificate kept: "
                                 r"reload refused by the test \(nothing was changed\)$")


def test_haproxy_runtime_api_gone_and_reload_fails(converged: Fleet) -> None:
    old = converged.served()["lb"]
    converged.haproxy_socket.unlink()
    converged.haproxy_reload.fail()
    said = failed_up(converged.project, RENEWAL_DUE)
    assert converged.served()["lb"] == old
    converged.haproxy_reload.heal()
    converged.haproxy_socket.symlink_to(converged.haproxy.socket)
    renew_after(converged, said, r"haproxy: reload failed \(exit 1\), previous certificate kept: "
                                 r".*\(nothing was changed\)$")


def test_disk_full(converged: Fleet) -> None:
    """A real tmpfs with no byte left: the files target writes nothing half; the public paths keep the old pair."""
    old = converged.served()["disk"]
    junk = fill(converged.disk)
    said = failed_up(converged.project, RENEWAL_DUE)
    assert converged.served()["disk"] == old
    junk.unlink()
    renew_after(converged, said, r"files: cannot write .*: No space left on device; previous files restored "
                                 r"\(nothing was changed\)$")


def test_aws_5xx_mid_sequence_is_retried(converged: Fleet) -> None:
    """Two 503s on the renewal's ACM re-import (mid-deploy, after the certificate was issued): retried by
    botocore's standard mode, the deploy completes."""
    before = converged.serial()
    converged.aws.set(lambda method, path, body: (503, [], b"<Error><Code>ServiceUnavailable</Code></Error>")
                      if b'"PrivateKey"' in body and converged.aws.faulted < 2 else None)
    converged.project.up(env=RENEWAL_DUE)
    assert converged.aws.faulted == 2 and converged.serial() != before
    converged.assert_converged()


def test_aws_endpoint_unreachable(converged: Fleet) -> None:
    """Every connection to the AWS endpoint is dropped unanswered."""
    old = converged.served()["alb"]
    converged.aws.set(lambda method, path, body: (0, [], b""))
    said = failed_up(converged.project, RENEWAL_DUE)
    converged.aws.set(None)
    assert converged.served()["alb"] == old
    renew_after(converged, said, r"aws_elbv2: describe_listeners: ConnectionClosedError: .*\(nothing was changed\)$")
