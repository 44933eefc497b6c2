"""`certplane check`: exit codes from dates (time travel), live TLS probes, and alerts sent once."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from providers.core.clock import rfc3339
from tools.servers import free_port

from .helpers import BASE, entry, issue, run_cli, write_inventory

DAY = dt.timedelta(days=1)


def check(inv: Path, *args: str, now: dt.datetime = BASE - 40 * DAY, **kw: Any):  # noqa: ANN201
    return run_cli("check", "--inventory-file", str(inv), *args, now=now, **kw)


# --- expiry (no network) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("days_left", "code", "expected"), [
    (40, 0, "OK       www  40.0 days left, renews 2029-12-29 00:00 UTC"),
    (20, 1, "WARNING  www  expires in 20.0 days (2030-01-01 00:00 UTC), under the 30-day threshold"),
    (5, 1, "WARNING  www  expires in 5.0 days (2030-01-01 00:00 UTC), under the 7-day threshold"),
    (0, 2, "CRITICAL www  EXPIRED 0.0 days ago (not after 2030-01-01 00:00 UTC)"),
    (-1, 2, "CRITICAL www  EXPIRED 1.0 days ago (not after 2030-01-01 00:00 UTC)"),
])
def test_exit_code_and_message_by_days_left(tmp_path, days_left, code, expected):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    result = check(inv, now=BASE - days_left * DAY)
    assert result.returncode == code, result.stdout + result.stderr
    assert expected in result.stdout.splitlines()
    assert result.stderr == ""


def test_the_whole_fleet_sorted_by_urgency_with_the_worst_exit_code(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {
        f"c{n}": entry(not_after=BASE + (n - 40) * DAY, domains=(f"c{n}.example.test",), serial=f"{n}")
        for n in (40, 20, 5, 0, -1)
    })
    result = check(inv, "--json", now=BASE - 40 * DAY)
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["status"] == "critical" and doc["exit_code"] == 2
    assert [c["name"] for c in doc["certificates"]] == ["c-1", "c0", "c5", "c20", "c40"]
    assert [c["status"] for c in doc["certificates"]] == ["critical", "critical", "warning", "warning", "ok"]
    assert [c["days_remaining"] for c in doc["certificates"]] == [-1.0, 0.0, 5.0, 20.0, 40.0]
    assert doc["certificates"][2]["findings"] == [{
        "level": "warning", "code": "expiring", "threshold_days": 7,
        "message": "expires in 5.0 days (2029-11-27 00:00 UTC), under the 7-day threshold"}]


def test_renewal_overdue_is_critical_after_the_grace_and_due_within_it(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE, renewal_before_days=60)})
    overdue = check(inv, now=BASE - 50 * DAY)
    assert overdue.returncode == 2
    assert ("CRITICAL www  renewal overdue by 10.0 days (renewal time 2029-11-02 00:00 UTC): `pulumi up` should "
            "have renewed it; expires 2030-01-01 00:00 UTC, 50.0 days left") in overdue.stdout
    due = check(inv, now=BASE - 59.5 * DAY)
    assert due.returncode == 1
    assert "WARNING  www  renewal due since 2029-11-02 00:00 UTC: the next `pulumi up` renews it" in due.stdout
    assert check(inv, "--grace-days", "20", now=BASE - 50 * DAY).returncode == 1


def test_custom_thresholds_and_short_lived_certificates(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {
        "short": entry(not_after=BASE, lifetime_days=30, renewal_before_days=10),
    })
    # a 30-day certificate is not "under the 30-day threshold" the day it was issued
    assert check(inv, now=BASE - 29.9 * DAY).returncode == 0
    assert check(inv, now=BASE - 13 * DAY).returncode == 1
    assert check(inv, "--warn-days", "5", now=BASE - 13 * DAY).returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    (("--warn-days", "soon"), "certplane: error: --warn-days 'soon': expected positive whole days, e.g. 30,14,7,1"),
    (("--endpoint", "www"), "certplane: error: --endpoint 'www': expected NAME=HOST:PORT[/SNI], "
                            "e.g. www=127.0.0.1:8443/www.example.test"),
    (("--endpoint", "nope=127.0.0.1:1"), "certplane: error: --endpoint 'nope=127.0.0.1:1': no certificate 'nope' "
                                         "in the inventory (known: www)"),
    (("--smtp-host", "127.0.0.1"), "certplane: error: e-mail alerts need --mail-from, --mail-to as well"),
])
def test_bad_options_fail_with_one_line_and_exit_3(tmp_path, args, message):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    result = check(inv, *args)
    assert result.returncode == 3
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_bad_inventory_and_bad_clock_name_the_field(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {"www": {**entry(not_after=BASE), "not_after": "tomorrow"}})
    result = check(inv)
    assert (result.returncode, result.stderr.strip()) == (
        3, "certplane: error: inventory.www.not_after: 'tomorrow' is not an RFC 3339 time")
    good = write_inventory(tmp_path / "good.json", {"www": entry(not_after=BASE)})
    result = run_cli("check", "--inventory-file", str(good), env={"CERTPLANE_NOW": "yesterday"})
    assert (result.returncode, result.stderr.strip()) == (
        3, "certplane: error: CERTPLANE_NOW: 'yesterday' is not an RFC 3339 time, e.g. 2027-01-31T00:00:00Z")


# --- live probes ------------------------------------------------------------------------------------------------

def probe_inventory(tmp_path: Path, cert, port: int, server_name: str = "www.example.test") -> Path:  # noqa: ANN001
    return write_inventory(tmp_path / "inv.json", {"www": entry(
        not_after=BASE, cert=cert, domains=("www.example.test",), targets=("edge",),
        endpoints=[{"host": "127.0.0.1", "port": port, "server_name": server_name}])})


def test_probe_healthy_endpoint(tmp_path, pki, tls_server):
    leaf = pki.leaf("www.example.test")
    server = tls_server(leaf, (pki.intermediate,))
    result = check(probe_inventory(tmp_path, leaf, server.port), "--probe")
    assert result.returncode == 0, result.stdout
    assert "OK       www  40.0 days left, renews 2029-12-29 00:00 UTC; 1 endpoint serves it" in result.stdout
    assert "probed 1 endpoint in" in result.stdout
    assert server.server_names == ["www.example.test"]  # a real handshake with SNI


def test_probe_endpoint_serving_another_certificate(tmp_path, pki, tls_server):
    expected, other = pki.leaf("www.example.test"), pki.leaf("www.example.test")
    server = tls_server(other, (pki.intermediate,))
    result = check(probe_inventory(tmp_path, expected, server.port), "--probe", "--json")
    assert result.returncode == 2
    finding, = json.loads(result.stdout)["certificates"][0]["findings"]
    assert finding["code"] == "endpoint-mismatch" and finding["level"] == "critical"
    assert finding["message"] == (
        f"127.0.0.1:{server.port} (www.example.test): serves another certificate (CN=www.example.test, serial "
        f"{other.cert.serial_number:x}, SHA-256 {other.fingerprint[:23]}...) than the inventory's (serial "
        f"{expected.cert.serial_number:x}, SHA-256 {expected.fingerprint[:23]}...)")


def test_probe_endpoint_without_its_intermediate(tmp_path, pki, tls_server):
    leaf = pki.leaf("www.example.test")
    server = tls_server(leaf)  # the leaf alone
    result = check(probe_inventory(tmp_path, leaf, server.port), "--probe")
    assert result.returncode == 2
    assert (f"CRITICAL www  127.0.0.1:{server.port} (www.example.test): chain incomplete: the server sends only "
            f"the leaf; its issuer (CN=Test Intermediate CA) is missing") in result.stdout.splitlines()


def test_probe_endpoint_with_the_wrong_intermediate(tmp_path, pki, tls_server):
    leaf = pki.leaf("www.example.test")
    impostor = issue("Test Intermediate CA", issuer=pki.root, ca=True)  # same name, another key
    server = tls_server(leaf, (impostor,))
    result = check(probe_inventory(tmp_path, leaf, server.port), "--probe")
    assert result.returncode == 2
    assert ("chain incomplete: the leaf was issued by CN=Test Intermediate CA, but the server sends "
            "CN=Test Intermediate CA after it") in result.stdout


def test_probe_hostname_mismatch(tmp_path, pki, tls_server):
    leaf = pki.leaf("other.example.test", "*.apps.example.test")
    server = tls_server(leaf, (pki.intermediate,))
    inv = probe_inventory(tmp_path, leaf, server.port)
    result = check(inv, "--probe")
    assert result.returncode == 2
    assert (f"CRITICAL www  127.0.0.1:{server.port} (www.example.test): hostname mismatch: the served certificate "
            f"covers other.example.test, *.apps.example.test, not www.example.test") in result.stdout.splitlines()
    # the wildcard covers exactly one label
    ok = check(inv, "--endpoint", f"www=127.0.0.1:{server.port}/x.apps.example.test", "--json")
    probes = json.loads(ok.stdout)["probes"]
    assert [p["server_name"] for p in probes] == ["www.example.test", "x.apps.example.test"]
    codes = [f["code"] for f in json.loads(ok.stdout)["certificates"][0]["findings"]]
    assert codes == ["hostname-mismatch"]  # only the inventory's endpoint


def recorded(leaf, *chain) -> str:  # noqa: ANN001
    """The inventory's `served_sha256` for this leaf and chain, made as the component makes it."""
    from providers.core.pem import verified_bundle_digest

    digest = verified_bundle_digest([leaf.cert, *(c.cert for c in chain)], ["www.example.test"])
    assert digest is not None
    return digest


def recorded_inventory(tmp_path: Path, leaf, port: int, digest: str,  # noqa: ANN001
                       server_name: str = "www.example.test") -> Path:
    return write_inventory(tmp_path / "inv.json", {"www": entry(
        not_after=BASE, cert=leaf, domains=("www.example.test",), targets=("edge",), served_sha256=digest,
        endpoints=[{"host": "127.0.0.1", "port": port, "server_name": server_name}])})


def test_probe_of_what_the_inventory_recorded_needs_no_certificate_parsing(tmp_path, pki, tls_server):
    """The endpoint sends the very leaf and chain checked at `up`: healthy, and `cryptography` never imported."""
    leaf = pki.leaf("www.example.test")
    server = tls_server(leaf, (pki.intermediate,))
    inv = recorded_inventory(tmp_path, leaf, server.port, recorded(leaf, pki.intermediate))
    script = ("import runpy, sys; sys.argv = ['certplane', 'check', '--probe', '--json', '--inventory-file', "
              f"{str(inv)!r}]\ntry:\n    runpy.run_module('cli', run_name='__main__')\nexcept SystemExit as e:\n"
              "    print('EXIT', e.code, 'cryptography' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2],
                         env={**os.environ, "CERTPLANE_NOW": rfc3339(BASE - 40 * DAY)})
    assert out.stdout.strip().splitlines()[-1] == "EXIT 0 False", out.stdout + out.stderr
    doc = json.loads(out.stdout[:out.stdout.rindex("EXIT")])
    assert doc["status"] == "ok" and doc["probes"][0]["served_fingerprint_sha256"] == leaf.fingerprint
    assert server.server_names == ["www.example.test"]


def test_probe_of_a_leaf_served_alone_under_its_private_root(tmp_path, pki, tls_server):
    """A CA without an intermediate: the server sends the leaf alone (clients trust the root). Recorded at `up`
    against that root, it is healthy; the full check, which knows no roots, would call the chain incomplete."""
    from providers.core.pem import verified_bundle_digest

    leaf = issue("www.example.test", issuer=pki.root, dns=("www.example.test",))
    server = tls_server(leaf)
    digest = verified_bundle_digest([leaf.cert], ["www.example.test"], anchor=pki.root.cert)
    assert digest is not None
    assert verified_bundle_digest([leaf.cert], ["www.example.test"], anchor=pki.intermediate.cert) is None
    result = check(recorded_inventory(tmp_path, leaf, server.port, digest), "--probe")
    assert result.returncode == 0, result.stdout
    unrecorded = check(probe_inventory(tmp_path, leaf, server.port), "--probe")
    assert unrecorded.returncode == 2 and "chain incomplete" in unrecorded.stdout


@pytest.mark.parametrize("served", ["leaf alone", "wrong intermediate", "another leaf"])
def test_probe_of_other_bytes_than_recorded_is_checked_in_full(tmp_path, pki, tls_server, served):
    leaf = pki.leaf("www.example.test")
    digest = recorded(leaf, pki.intermediate)
    impostor = issue("Test Intermediate CA", issuer=pki.root, ca=True)
    other = pki.leaf("www.example.test")
    server = {"leaf alone": lambda: tls_server(leaf),
              "wrong intermediate": lambda: tls_server(leaf, (impostor,)),
              "another leaf": lambda: tls_server(other, (pki.intermediate,))}[served]()
    result = check(recorded_inventory(tmp_path, leaf, server.port, digest), "--probe", "--json")
    assert result.returncode == 2
    codes = [f["code"] for f in json.loads(result.stdout)["certificates"][0]["findings"]]
    assert codes == {"leaf alone": ["chain-incomplete"], "wrong intermediate": ["chain-incomplete"],
                     "another leaf": ["endpoint-mismatch"]}[served]


def test_probe_of_recorded_bytes_for_a_name_outside_the_domains_is_checked_in_full(tmp_path, pki, tls_server):
    leaf = pki.leaf("www.example.test")
    server = tls_server(leaf, (pki.intermediate,))
    inv = recorded_inventory(tmp_path, leaf, server.port, recorded(leaf, pki.intermediate),
                             server_name="api.example.test")
    result = check(inv, "--probe", "--json")
    assert result.returncode == 2
    assert [f["code"] for f in json.loads(result.stdout)["certificates"][0]["findings"]] == ["hostname-mismatch"]


def test_verified_bundle_digest_only_for_a_chain_that_links_and_holds_the_names(pki):
    from providers.core.digest import bundle_digest
    from providers.core.pem import verified_bundle_digest

    leaf = pki.leaf("www.example.test", "*.apps.example.test")
    chain = [leaf.cert, pki.intermediate.cert]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    assert verified_bundle_digest(chain, ["WWW.example.test.", "*.apps.example.test"]) == bundle_digest(ders)
    assert verified_bundle_digest(chain, ["x.apps.example.test"]) is None  # a domain, not a SAN: not recorded
    assert verified_bundle_digest([leaf.cert], ["www.example.test"]) is None  # nothing to link
    impostor = issue("Test Intermediate CA", issuer=pki.root, ca=True)
    assert verified_bundle_digest([leaf.cert, impostor.cert], ["www.example.test"]) is None
    assert bundle_digest(ders[:1]) != bundle_digest(ders)


def test_probe_unreachable_endpoint_and_ad_hoc_endpoint_option(tmp_path, pki, tls_server):
    leaf = pki.leaf("www.example.test")
    server = tls_server(leaf, (pki.intermediate,))
    closed = free_port()
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE, cert=leaf)})
    result = check(inv, "--endpoint", f"www=127.0.0.1:{server.port}", "--endpoint", f"www=127.0.0.1:{closed}",
                   "--probe-timeout", "2")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"CRITICAL www  127.0.0.1:{closed} (www.example.test): unreachable:")
               for line in lines), lines
    assert server.server_names == ["www.example.test"]  # SNI defaults to the certificate's first domain


def test_probe_times_out_within_its_bound(tmp_path):
    silent = socket.socket()  # accepts TCP, never speaks TLS
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
        start = time.monotonic()
        result = check(inv, "--endpoint", f"www=127.0.0.1:{silent.getsockname()[1]}", "--probe-timeout", "1")
        assert time.monotonic() - start < 15
        assert result.returncode == 2
        assert "timed out after 1s" in result.stdout
    finally:
        silent.close()


def test_probe_without_endpoints_says_so_and_still_checks_expiry(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    result = check(inv, "--probe", now=BASE - 20 * DAY)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "note: no endpoints to probe: the inventory lists none; add --endpoint NAME=HOST:PORT[/SNI]")


# --- notifications ---------------------------------------------------------------------------------------------

class Hook:
    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append({"json": json.loads(body), "content_type": self.headers["Content-Type"]})
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def test_webhook_once_per_threshold_crossing_and_reset_on_renewal(tmp_path, hook):
    state = tmp_path / "state" / "check-state.json"
    inv = write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=BASE, serial="aa01", targets=("edge",)),
        "api": entry(not_after=BASE + 300 * DAY, lifetime_days=400, serial="bb01", domains=("api.example.test",)),
    })
    args = ("--webhook", hook.url, "--state-file", str(state))

    first = check(inv, *args, now=BASE - 20 * DAY)
    assert first.returncode == 1
    assert len(hook.bodies) == 1
    sent = hook.bodies[0]
    assert sent["content_type"] == "application/json"
    payload = sent["json"]
    assert payload["text"].startswith("*certplane WARNING: 1 certificate needs attention on stack file:inv.json*")
    assert "• WARNING www: expires in 20.0 days (2030-01-01 00:00 UTC), under the 30-day threshold " \
           "[owner: platform-team]" in payload["text"]
    assert payload["status"] == "warning"
    alert, = payload["alerts"]
    assert (alert["certificate"], alert["level"], alert["threshold_days"], alert["days_remaining"],
            alert["serial"], alert["owner"], alert["targets"]) == ("www", "warning", 30, 20.0, "aa01",
                                                                   "platform-team", ["edge"])
    assert "webhook (http://127.0.0.1:" in first.stdout and "/…): www:warning" in first.stdout
    assert "XXXX" not in first.stdout  # the webhook's secret path is not echoed
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600

    again = check(inv, *args, now=BASE - 19 * DAY)
    assert again.returncode == 1 and len(hook.bodies) == 1
    assert "nothing new" in again.stdout

    check(inv, *args, now=BASE - 6 * DAY)  # crosses 14 and 7 at once: one alert at the 7-day threshold
    assert len(hook.bodies) == 2
    assert hook.bodies[1]["json"]["alerts"][0]["threshold_days"] == 7

    check(inv, *args, now=BASE + DAY)  # expired: critical, once
    check(inv, *args, now=BASE + 2 * DAY)
    assert len(hook.bodies) == 3
    assert hook.bodies[2]["json"]["status"] == "critical"

    renewed = write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=BASE + 60 * DAY, serial="aa02"),
        "api": entry(not_after=BASE + 300 * DAY, lifetime_days=400, serial="bb01", domains=("api.example.test",)),
    })
    assert check(renewed, *args, now=BASE + 2 * DAY).returncode == 0
    assert len(hook.bodies) == 3
    check(renewed, *args, now=BASE + 40 * DAY)  # the new certificate crosses 30 days: alerted again
    assert len(hook.bodies) == 4
    assert hook.bodies[3]["json"]["alerts"][0]["serial"] == "aa02"


def test_webhook_failure_is_reported_does_not_crash_and_is_retried(tmp_path):
    failing = Hook(status=500)
    try:
        state = tmp_path / "state.json"
        inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
        args = ("--webhook", failing.url, "--state-file", str(state))
        first = check(inv, *args, now=BASE - 20 * DAY)
        assert first.returncode == 1  # the health, not the notification, decides the exit code
        assert (f"certplane: webhook notification to {failing.url.split('/services')[0]}/… failed: "
                f"HTTP 500 Internal Server Error") in first.stderr
        failing.status = 200
        check(inv, *args, now=BASE - 20 * DAY)
        assert len(failing.bodies) == 2  # retried, then remembered
        check(inv, *args, now=BASE - 20 * DAY)
        assert len(failing.bodies) == 2
    finally:
        failing.close()


def test_unreachable_webhook_is_bounded(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    start = time.monotonic()
    result = check(inv, "--webhook", f"http://127.0.0.1:{free_port()}/hook", "--state-file",
                   str(tmp_path / "s.json"), "--notify-timeout", "2", now=BASE + DAY)
    assert time.monotonic() - start < 20
    assert result.returncode == 2
    assert "certplane: webhook notification to http://127.0.0.1:" in result.stderr
    assert "failed: [Errno 111] Connection refused" in result.stderr


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        from email import message_from_bytes, policy

        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content, policy=policy.default), session))
        return "250 OK"


def smtp_server(**kw: Any):  # noqa: ANN201
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=10, **kw)
    controller.start()
    return inbox, controller


def test_email_once_not_twice(tmp_path):
    inbox, controller = smtp_server()
    try:
        inv = write_inventory(tmp_path / "inv.json", {
            "www": entry(not_after=BASE, serial="aa01"),
            "api": entry(not_after=BASE + 300 * DAY, lifetime_days=400, domains=("api.example.test",)),
        })
        args = ("--smtp-host", "127.0.0.1", "--smtp-port", str(controller.port), "--mail-from",
                "certplane@example.test", "--mail-to", "ops@example.test,sre@example.test",
                "--state-file", str(tmp_path / "state.json"))
        first = check(inv, *args, now=BASE + DAY)
        assert first.returncode == 2
        assert len(inbox.messages) == 1
        sender, recipients, message, _ = inbox.messages[0]
        assert sender == "certplane@example.test"
        assert recipients == ["ops@example.test", "sre@example.test"]
        assert message["Subject"].strip() == "certplane CRITICAL: 1 certificate needs attention on stack file:inv.json"
        body = message.get_content()
        assert "• CRITICAL www: EXPIRED 1.0 days ago (not after 2030-01-01 00:00 UTC) [owner: platform-team]" in body
        assert "serial: aa01" in body

        second = check(inv, *args, now=BASE + DAY)
        assert second.returncode == 2
        assert len(inbox.messages) == 1
        assert "email (smtp://127.0.0.1:" in second.stdout and "nothing new" in second.stdout
    finally:
        controller.stop()


def test_email_uses_starttls_and_login_when_offered(tmp_path, pki):
    from aiosmtpd.smtp import AuthResult

    leaf = pki.leaf("localhost")
    (tmp_path / "smtp.pem").write_bytes(leaf.pem + pki.intermediate.pem)
    (tmp_path / "smtp.key").write_bytes(leaf.key_pem)
    (tmp_path / "ca.pem").write_bytes(pki.root.pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "smtp.pem", tmp_path / "smtp.key")
    logins: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    inbox, controller = smtp_server(tls_context=context, require_starttls=True, authenticator=authenticator,
                                    auth_required=True, server_hostname="localhost")
    try:
        inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
        args = ("--smtp-host", "localhost", "--smtp-port", str(controller.port), "--mail-from", "cp@example.test",
                "--mail-to", "ops@example.test", "--state-file", str(tmp_path / "state.json"))
        env = {"CERTPLANE_SMTP_USER": "alerts", "CERTPLANE_SMTP_PASSWORD": "s3cret",
               "CERTPLANE_SMTP_CA_FILE": str(tmp_path / "ca.pem")}
        result = check(inv, *args, env=env, now=BASE - 5 * DAY)
        assert result.returncode == 1, result.stderr
        assert result.stderr == ""
        assert len(inbox.messages) == 1 and logins == [("alerts", "s3cret")]
        assert inbox.messages[0][3].ssl is not None  # the session was encrypted

        untrusted = check(inv, *args[:-1], str(tmp_path / "other.json"), env={**env, "CERTPLANE_SMTP_CA_FILE": ""},
                          now=BASE - 5 * DAY)
        assert "certplane: email notification to smtp://localhost:" in untrusted.stderr
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_json_output_has_no_colour_even_on_request(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    result = check(inv, "--json", env={"TERM": "xterm-256color"})
    assert "\x1b[" not in result.stdout
    assert json.loads(result.stdout)["status"] == "ok"
