"""Fault suite, item 1: an `up` SIGKILLed mid-operation, then the recovery of docs/RECOVERY.md, run as written.

Each case kills the real engine (v3.274.1, file:// backend) at a known step — during an ACME order, during an
nginx deploy, during an ELBv2 deploy (after the listener changed, before the provider heard back), and the CLI
alone during a renewal's nginx deploy — and then checks what the engine left (a stale lock, a pending
operation in the checkpoint), runs the recovery, and checks that the stack converged: every binding serves a
valid certificate, the one in the state with the key in the state, nothing left to do, at most one extra ACME
order.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.tls import handshake, served_fingerprint
from tools.servers.moto import MotoServer, create_https_listener, import_placeholder_certificate, write_credentials
from tools.servers.nginx import NginxServer
from tools.servers.pebble import PebbleServer

from .harness import STACK, Checkout, HoldingProxy, PebbleLog, ReloadGate, alive, recovery_commands

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCKED = "the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the " \
         "lock file with `pulumi cancel`."
PENDING = "Attempting to deploy or update resources with 1 pending operations from previous deployment."
REGION = "us-east-1"


@pytest.fixture(scope="module")
def acme_ca() -> Iterator[PebbleServer]:
    """A Pebble of this module's own: its log counts only these tests' orders."""
    with PebbleServer() as server:
        yield server


@pytest.fixture
def new_checkout(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Checkout]]:
    """Makes the test's checkout (one per test); on teardown, nothing its runs started is left running."""
    made: list[Checkout] = []

    def make(config: dict[str, Any]) -> Checkout:
        made.append(Checkout(tmp_path / "repo", config))
        return made[-1]

    yield make
    for each in made:
        each.close()


def from_now(days: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def private_ca() -> dict[str, Any]:
    return {"type": "private_ca", "common_name": "Reliability Root", "intermediate": True}


def nginx_target(nginx: NginxServer, gate: ReloadGate | None = None) -> dict[str, Any]:
    return {"type": "nginx", **nginx.target_settings(), **({"reload_command": gate.argv} if gate else {})}


def gate_for(nginx: NginxServer, directory: Path) -> ReloadGate:
    return ReloadGate(directory, nginx._ctl("-s", "reload"))


def recover(checkout: Checkout) -> dict[str, str]:
    """Each line of docs/RECOVERY.md's block, as written; each must succeed. Returns each one's output."""
    commands = recovery_commands()
    assert any("cancel" in c for c in commands) and any("--clear-pending-creates" in c for c in commands)
    outputs = {}
    for command in commands:
        start = time.monotonic()
        done = checkout.sh(command)
        print(f"{time.monotonic() - start:5.1f} s  {command}")
        text = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{text}"
        assert "Traceback" not in text, f"{command}\n{text}"
        outputs[command] = text
    return outputs


def assert_recovered(checkout: Checkout, outputs: dict[str, str]) -> None:
    """Nothing of the killed run is left in the backend, and the `up` of the recovery no longer warns."""
    assert checkout.locks() == []
    assert checkout.pending_operations() == []
    up = next(text for command, text in outputs.items() if " up " in command)
    assert PENDING not in up, up


def assert_nginx_serves_state(nginx: NginxServer, outputs: dict[str, Any], name: str,
                              root: x509.Certificate | None = None) -> str:
    """Every name of certificate `name` bound to `nginx` serves it: a real handshake; the leaf is the state's
    (fingerprint == inventory), its key is the state's key, the chain is the state's chain and each link is
    signed by the next (the last by `root` when given), it covers the name and is valid now."""
    inventory, download = outputs["inventory"][name], outputs["certificates"][name]
    state_key = keys.load_private_key(download["private_key_pem"])
    state_chain = x509util.load_certificates(download["fullchain_pem"])
    host, port = nginx.listen.rsplit(":", 1)
    endpoints = [e for e in inventory["endpoints"] if e["port"] == int(port)]
    assert endpoints, inventory
    now = dt.datetime.now(dt.timezone.utc)
    for endpoint in endpoints:
        chain = handshake(host, int(port), endpoint["server_name"])
        leaf = chain[0]
        assert x509util.fingerprint_sha256(leaf) == inventory["fingerprint_sha256"], endpoint
        x509util.check_key_pair(state_key, leaf)  # the key in the state is the one nginx serves with
        assert [x509util.fingerprint_sha256(c) for c in chain] == \
            [x509util.fingerprint_sha256(c) for c in state_chain], endpoint
        for cert, issuer in zip(chain, chain[1:]):
            assert x509util.signed_by(cert, issuer), endpoint
        if root is not None:
            assert x509util.signed_by(chain[-1], root), endpoint
        assert x509util.covers(leaf, endpoint["server_name"])
        assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
    return str(inventory["fingerprint_sha256"])


def acme_stack(nginx: NginxServer, acme_ca: PebbleServer, name: str, *, directory_url: str | None = None,
               dns_url: str | None = None) -> dict[str, Any]:
    """One DNS-01 certificate `name` from Pebble (its directory and challtestsrv, or proxies in front of them),
    served by nginx."""
    issuer = {"type": "acme", "directory_url": directory_url or acme_ca.directory_url, "email": "ops@example.test",
              "ca_bundle": str(acme_ca.ca_bundle_path), "profile": "default",
              "dns": {"provider": "challtestsrv", "url": dns_url or acme_ca.challtestsrv_url,
                      "propagation_check": False}}
    return {"issuers": {"pebble": issuer},
            "certificates": {name: {"domains": [f"{name}.reliability.example.test"], "issuer": "pebble",
                                    "bindings": [{"target": "edge"}]}},
            "targets": {"edge": nginx_target(nginx)}}


def test_acme_issuance_killed_then_recovered(new_checkout, nginx, acme_ca):
    """Killed while the order's DNS-01 TXT record is being set: the account exists at the CA, the order is
    pending there, the certificate resource is a pending create."""
    proxy = HoldingProxy(acme_ca.challtestsrv_url, lambda method, path, body: path == "/set-txt")
    try:
        checkout = new_checkout(acme_stack(nginx, acme_ca, "shop", dns_url=proxy.url))
        pebble_log = PebbleLog(acme_ca.workdir / "pebble.log")
        checkout.up_killed_at(proxy, "DNS-01 TXT record for the order")
        assert pebble_log.counts() == {"orders": 1, "issued": 0, "accounts": 1}
        assert len(checkout.locks()) == 1
        assert ("creating", "shop") in checkout.pending_operations()
        assert "Certificate shop" not in checkout.resources() and "AcmeAccount pebble-account" in checkout.resources()

        outputs = recover(checkout)
        assert_recovered(checkout, outputs)
        state = checkout.outputs()
        assert_nginx_serves_state(nginx, state, "shop", root=acme_ca.root_certificate())
        # One order for a run that is not interrupted; the killed one's order is the only extra. No second
        # account: the account resource was recorded before the kill.
        counts = pebble_log.counts()
        assert counts == {"orders": 2, "issued": 1, "accounts": 1}, counts
        assert [int(s, 16) for s in pebble_log.issued_serials()] == [int(state["inventory"]["shop"]["serial"], 16)]
    finally:
        proxy.close()


def test_acme_issuance_killed_after_the_ca_issued_then_recovered(new_checkout, nginx, acme_ca):
    """Killed after the CA issued the certificate, before certplane heard of it: the download of the issued
    certificate is held by a proxy in front of Pebble's ACME API. The CA has a certificate the state does not;
    the recovery orders once more, and the orphan is never served."""
    proxy = HoldingProxy(f"https://127.0.0.1:{acme_ca.acme_port}",
                         lambda method, path, body: method == "POST" and path.startswith("/certZ/"),
                         tls=acme_ca.acme_tls, upstream_ca=acme_ca.ca_bundle_path)
    try:
        checkout = new_checkout(acme_stack(nginx, acme_ca, "till", directory_url=f"{proxy.url}/dir"))
        pebble_log = PebbleLog(acme_ca.workdir / "pebble.log")
        checkout.up_killed_at(proxy, "the download of the issued certificate")
        assert pebble_log.counts() == {"orders": 1, "issued": 1, "accounts": 1}
        [orphan] = pebble_log.issued_serials()
        assert ("creating", "till") in checkout.pending_operations()

        outputs = recover(checkout)
        assert_recovered(checkout, outputs)
        state = checkout.outputs()
        assert_nginx_serves_state(nginx, state, "till", root=acme_ca.root_certificate())
        counts = pebble_log.counts()
        assert counts == {"orders": 2, "issued": 2, "accounts": 1}, counts  # one extra order, as at most allowed
        assert int(state["inventory"]["till"]["serial"], 16) != int(orphan, 16)  # the orphan is not what is served
    finally:
        proxy.close()


def test_nginx_deploy_killed_then_recovered(tmp_path, new_checkout, nginx):
    """Killed while nginx reloads: the binding's files are written, nginx still serves what it did before."""
    gate = gate_for(nginx, tmp_path / "gate")
    checkout = new_checkout({
        "issuers": {"ca": private_ca()},
        "certificates": {"www": {"domains": ["www.reliability.example.test", "reliability.example.test"],
                                 "issuer": "ca", "validity_days": 90, "bindings": [{"target": "edge"}]}},
        "targets": {"edge": nginx_target(nginx, gate)},
    })
    gate.arm()
    up = checkout.start_up()
    up.wait_for(gate.reached.exists, "nginx reload of the deploy")
    killed = up.power_cut()
    gate.release()
    assert any("pulumi.dynamic" in cmd for cmd in killed.values()), killed  # the provider went down with it
    conf = nginx.conf_dir / "certplane" / "www--edge.conf"
    assert conf.exists()  # written before the reload: nginx has not read it
    host, port = nginx.listen.rsplit(":", 1)
    default = served_fingerprint(host, int(port), "www.reliability.example.test")
    written = x509util.fingerprint_of_pem((nginx.conf_dir / "certplane" / "certs" / "www--edge.fullchain.pem")
                                          .read_text())
    assert default != written

    # What the engine says to a user who simply runs `up` (or `refresh`) again: the lock of the dead run.
    for verb in ("up --yes --skip-preview", "refresh --yes --skip-preview"):
        blocked = checkout.sh(f"tools/pulumi {verb} --stack {STACK}")
        assert blocked.returncode != 0
        assert LOCKED in blocked.stdout + blocked.stderr, blocked.stdout + blocked.stderr
    [lock] = checkout.locks()
    assert f'"pid":{up.proc.pid},' in lock.read_text()
    assert checkout.pending_operations() == [("creating", "www--edge")]
    # Unlocked, a plain `refresh` (not interactive) neither clears the pending create nor says a word about it.
    checkout.check(f"tools/pulumi cancel --yes --stack {STACK}")
    plain = checkout.check(f"tools/pulumi refresh --yes --skip-preview --stack {STACK}")
    assert checkout.pending_operations() == [("creating", "www--edge")] and "pending" not in plain.lower()

    outputs = recover(checkout)
    assert_recovered(checkout, outputs)
    state = checkout.outputs()
    fingerprint = assert_nginx_serves_state(nginx, state, "www")
    assert fingerprint == written  # the certificate the killed run wrote: the same one, kept in the state


def test_elbv2_deploy_killed_after_the_listener_changed_then_recovered(new_checkout, moto: MotoServer):
    """Killed after ModifyListener made the new ACM certificate the listener's default, before the provider
    heard back: AWS changed, the state does not know."""
    url = moto.endpoint_url
    placeholder = import_placeholder_certificate(url, REGION)
    listener = create_https_listener(url, REGION, placeholder)["listener_arn"]
    elb = boto3.client("elbv2", region_name=REGION, endpoint_url=url)
    acm = boto3.client("acm", region_name=REGION, endpoint_url=url)

    def default_arn() -> str:
        certs = elb.describe_listener_certificates(ListenerArn=listener)["Certificates"]
        return next(c["CertificateArn"] for c in certs if c.get("IsDefault"))

    def certplane_imports() -> list[str]:
        arns = [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]]
        return [a for a in arns if any(t["Key"] == "certplane:binding"
                                       for t in acm.list_tags_for_certificate(CertificateArn=a).get("Tags", []))]

    proxy = HoldingProxy(url, lambda method, path, body: b"Action=ModifyListener" in body)
    try:
        checkout = new_checkout({
            "issuers": {"ca": private_ca()},
            "certificates": {"app": {"domains": ["app.reliability.example.test"], "issuer": "ca",
                                     "validity_days": 90, "bindings": [{"target": "alb"}]}},
            "targets": {"alb": {"type": "aws_elbv2", "region": REGION, "listener_arn": listener,
                                "endpoint_url": proxy.url, "profile": "certplane-demo",
                                "credentials_file": ".certplane/aws/credentials"}},
        })
        write_credentials(checkout.repo / ".certplane" / "aws" / "credentials")
        checkout.up_killed_at(proxy, "ModifyListener of the deploy")
        orphan = default_arn()
        assert orphan != placeholder and orphan in certplane_imports()  # the listener already serves the new one
        assert checkout.pending_operations() == [("creating", "app--alb")]

        outputs = recover(checkout)
        assert_recovered(checkout, outputs)
        state = checkout.outputs()
        inventory = state["inventory"]["app"]
        [binding] = inventory["bindings"]
        live = binding["live"]
        assert default_arn() == live["certificate_arn"]
        served = x509util.load_certificates(acm.get_certificate(CertificateArn=default_arn())["Certificate"])[0]
        assert x509util.fingerprint_sha256(served) == inventory["fingerprint_sha256"]
        x509util.check_key_pair(keys.load_private_key(state["certificates"]["app"]["private_key_pem"]), served)
        # Converged, and what the killed run imported and attached (tagged with this binding and the default it
        # replaced) was recognised: deleted once the recovery's deploy was verified, never taken for the
        # listener's own default.
        assert sorted(set(certplane_imports()) - {live["certificate_arn"]}) == [], orphan
        assert live.get("replaced_default_arn") == placeholder

        start = time.monotonic()
        destroy = checkout.sh(f"tools/pulumi destroy --yes --skip-preview --stack {STACK}")
        print(f"{time.monotonic() - start:5.1f} s  destroy")
        assert destroy.returncode == 0, destroy.stdout + destroy.stderr
        assert {"default": default_arn(), "imports": certplane_imports()} == {"default": placeholder, "imports": []}
    finally:
        proxy.close()


def test_renewal_deploy_with_only_the_cli_killed_then_recovered(tmp_path, new_checkout, nginx):
    """`kill -9` of the `pulumi` process alone during a renewal's nginx reload: the provider (its own process
    group) carries on and finishes the deploy after the CLI is gone; the checkpoint has a pending update."""
    gate = gate_for(nginx, tmp_path / "gate")
    checkout = new_checkout({
        "issuers": {"ca": private_ca()},
        "certificates": {"api": {"domains": ["api.reliability.example.test"], "issuer": "ca", "validity_days": 90,
                                 "bindings": [{"target": "edge"}]}},
        "targets": {"edge": nginx_target(nginx, gate)},
    })
    checkout.check(f"tools/pulumi up --yes --skip-preview --stack {STACK}")
    before = assert_nginx_serves_state(nginx, checkout.outputs(), "api")

    gate.arm()
    up = checkout.start_up(env={"CERTPLANE_NOW": from_now(70)})  # past two thirds of 90 days: renew
    try:
        up.wait_for(gate.reached.exists, "nginx reload of the renewal")
        orphans = up.kill_cli()
        assert any("pulumi.dynamic" in cmd for cmd in orphans.values()), orphans
        gate.release()
        host, port = nginx.listen.rsplit(":", 1)
        renewed = x509util.fingerprint_of_pem((nginx.conf_dir / "certplane" / "certs" / "api--edge.fullchain.pem")
                                              .read_text())
        assert renewed != before
        for _ in range(200):  # the orphaned provider finishes the deploy on its own (bounded: 20 s)
            if served_fingerprint(host, int(port), "api.reliability.example.test") == renewed:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the orphaned provider did not finish the deploy")
        assert len(checkout.locks()) == 1
        assert checkout.pending_operations() == [("updating", "api--edge")]

        outputs = recover(checkout)
        assert_recovered(checkout, outputs)
        assert assert_nginx_serves_state(nginx, checkout.outputs(), "api") == renewed  # the renewed key was kept
        lingering = {pid: cmd for pid, cmd in orphans.items() if pid in alive(up.orphans)}
        # The language host ends the program when its engine is gone; the provider exits once its deploy is done.
        assert not lingering, f"processes the killed CLI started still run: {sorted(lingering.values())}"
    finally:
        up.end_orphans()
