"""`certplane check --webhook`: the URL is a secret, only a 2xx answer counts as sent, redirects are not
followed, and overlapping runs share the alert state without racing (alert once)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .helpers import BASE, CERTPLANE, ROOT, entry, rfc3339, run_cli, write_inventory

DAY = dt.timedelta(days=1)
SECRETS = ("s3cretpw", "SECRETTOKEN", "alerts:", "LOCATIONSECRET")


class Hook:
    """A real HTTP server on 127.0.0.1: records every request; answers `status` (a 3xx with a Location that
    carries a token), after `delay` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status, self.delay = status, delay
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with hook.lock:
                    hook.requests.append({"method": method, "path": self.path, "body": body,
                                          "authorization": self.headers.get("Authorization")})
                time.sleep(hook.delay)
                if method == "POST" and 300 <= hook.status < 400:
                    self.send_response(hook.status)
                    self.send_header("Location", "/landing?token=LOCATIONSECRET")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(hook.status if method == "POST" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_POST(self) -> None:  # noqa: N802
                self._record("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._record("GET")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/services/T000/B000/SECRETTOKEN"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def check(inv: Path, *args: str, now: dt.datetime, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run_cli("check", "--inventory-file", str(inv), *args, now=now, **kw)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in:\n{text}"
        assert "Traceback" not in text, text


# --- 1. the URL is a secret; a delivery failure never masks the health -----------------------------------------

def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(tmp_path, hook):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    url = f"http://alerts:s3cretpw@127.0.0.1:{hook.port}/services/T000/B000/SECRETTOKEN"
    result = check(inv, "--webhook", url, "--state-file", str(tmp_path / "s.json"), now=BASE + DAY)
    assert result.returncode == 2, result.stdout + result.stderr  # expired: critical, whatever the webhook does
    assert_no_secret(result.stdout, result.stderr)
    assert result.stderr == ""
    assert f"webhook (http://127.0.0.1:{hook.port}/…): www:critical" in result.stdout
    post, = hook.posts()
    assert post["path"] == "/services/T000/B000/SECRETTOKEN"
    assert post["authorization"] == "Basic " + base64.b64encode(b"alerts:s3cretpw").decode()
    assert json.loads(post["body"])["status"] == "critical"


@pytest.mark.parametrize("template", [
    "https://alerts:s3cretpw@{host}:notaport/services/SECRETTOKEN",  # what used to crash: a non-numeric "port"
    "http://{host}:{port}/hook path/SECRETTOKEN",  # a space
    "http://{host}:{port}/hook/SECRETTOKEN/é",  # not ASCII
    "http://{host}:{port}/x\r\nX-Injected: SECRETTOKEN",  # a header injection
    "http://[::1/SECRETTOKEN",  # a broken IPv6 literal
    "http://{host}:99999/SECRETTOKEN",  # a port out of range
    "hooks.example.test/services/SECRETTOKEN",  # no scheme
    "ftp://alerts:s3cretpw@{host}/SECRETTOKEN",  # another scheme
])
def test_a_bad_webhook_url_is_one_redacted_line_and_the_exit_code_stays_critical(tmp_path, hook, template):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    url = template.format(host="127.0.0.1", port=hook.port)
    state = tmp_path / "s.json"
    result = check(inv, "--webhook", url, "--state-file", str(state), "--notify-timeout", "2", now=BASE + DAY)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_secret(result.stdout, result.stderr)
    line, = result.stderr.splitlines()
    assert line.startswith("certplane: webhook notification to ") and " failed: " in line, line
    assert "CRITICAL www  EXPIRED 1.0 days ago" in result.stdout
    assert hook.posts() == []
    # --json: the same verdict, the failure in the document, still nothing secret
    doc_run = check(inv, "--webhook", url, "--state-file", str(state), "--json", now=BASE + DAY)
    assert doc_run.returncode == 2
    assert_no_secret(doc_run.stdout, doc_run.stderr)
    doc = json.loads(doc_run.stdout)
    assert doc["status"] == "critical" and doc["exit_code"] == 2
    notification, = doc["notifications"]
    assert notification["error"] and notification["sent"] == []


def test_an_unreachable_webhook_with_a_token_in_the_query_is_redacted(tmp_path):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    result = check(inv, "--webhook", "http://alerts:s3cretpw@127.0.0.1:9/hook?token=SECRETTOKEN",
                   "--state-file", str(tmp_path / "s.json"), "--notify-timeout", "2", now=BASE + DAY)
    assert result.returncode == 2
    assert_no_secret(result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        "certplane: webhook notification to http://127.0.0.1:9/… failed: [Errno 111] Connection refused"]


def test_an_unreadable_state_file_skips_the_alerts_in_one_line_and_keeps_the_verdict(tmp_path, hook):
    inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
    state = tmp_path / "state.json"
    state.write_text("{not json")
    result = check(inv, "--webhook", hook.url, "--state-file", str(state), now=BASE + DAY)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_secret(result.stdout, result.stderr)
    line, = result.stderr.splitlines()
    assert line.startswith(f"certplane: webhook notification to {hook.base}/… failed: --state-file {state}: "
                           "unreadable (")
    assert line.endswith("); remove it to start over")
    assert hook.posts() == [] and state.read_text() == "{not json"  # left for the operator to look at


# --- 2. only a 2xx answer is a delivery; a redirect is not followed --------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_not_recorded_as_sent(tmp_path, status):
    hook = Hook(status=status)
    try:
        state = tmp_path / "state.json"
        inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
        args = ("--webhook", hook.url, "--state-file", str(state))
        first = check(inv, *args, now=BASE - 20 * DAY)
        assert first.returncode == 1, first.stdout + first.stderr
        assert_no_secret(first.stdout, first.stderr)
        reason = {301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
                  308: "Permanent Redirect"}[status]
        assert first.stderr.splitlines() == [
            f"certplane: webhook notification to {hook.base}/… failed: HTTP {status} {reason} "
            f"(a webhook redirect is not followed; point --webhook at the final URL)"]
        assert [r["method"] for r in hook.requests] == ["POST"]  # no GET to the Location
        assert "www:warning" not in first.stdout
        sent = json.loads(state.read_text())["stacks"]["file:inv.json"]["www"]["sent"]
        assert "webhook" not in sent  # not recorded: the next run tries again
        check(inv, *args, now=BASE - 20 * DAY)
        assert [r["method"] for r in hook.requests] == ["POST", "POST"]
    finally:
        hook.close()


def test_a_2xx_other_than_200_counts_as_sent(tmp_path):
    hook = Hook(status=204)
    try:
        inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
        args = ("--webhook", hook.url, "--state-file", str(tmp_path / "state.json"))
        first = check(inv, *args, now=BASE - 20 * DAY)
        assert first.returncode == 1 and first.stderr == "", first.stderr
        assert "www:warning" in first.stdout
        check(inv, *args, now=BASE - 20 * DAY)
        assert len(hook.posts()) == 1
    finally:
        hook.close()


# --- 3. overlapping runs: the state is read, updated and replaced under a lock ---------------------------------

def test_overlapping_check_processes_alert_once(tmp_path):
    hook = Hook(delay=8.0)  # a slow webhook: a window between reading and writing the state wider than start-up
    try:
        state = tmp_path / "state" / "check-state.json"
        inv = write_inventory(tmp_path / "inv.json", {"www": entry(not_after=BASE)})
        env = {k: v for k, v in __import__("os").environ.items() if k not in ("NO_COLOR",)}
        env["CERTPLANE_NOW"] = rfc3339(BASE - 20 * DAY)
        command = [str(CERTPLANE), "check", "--inventory-file", str(inv), "--webhook", hook.url,
                   "--state-file", str(state)]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                 cwd=str(ROOT), stdin=subprocess.DEVNULL) for _ in range(6)]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in runs]  # type: ignore[union-attr]
        for p in runs:
            p.stdout.close()  # type: ignore[union-attr]
            p.stderr.close()  # type: ignore[union-attr]
        assert [code for code, _, _ in results] == [1] * 6, results
        assert all(err == "" for _, _, err in results), results
        assert len(hook.posts()) == 1, f"{len(hook.posts())} webhook calls for one threshold crossing"
        assert sum("www:warning" in out for _, out, _ in results) == 1
        assert sum("nothing new" in out for _, out, _ in results) == 5
        doc = json.loads(state.read_text())
        assert doc["stacks"]["file:inv.json"]["www"]["sent"] == {"webhook": ["warn-30"]}
        assert sorted(p.name for p in state.parent.iterdir()) == ["check-state.json", "check-state.json.lock"]
    finally:
        hook.close()


def test_concurrent_dispatch_in_threads_sends_once_and_loses_no_update(tmp_path):
    from cli import notify
    from cli.expiry import expiry_findings
    from cli.model import parse_inventory

    now = BASE - 20 * DAY
    cert, = parse_inventory({"www": entry(not_after=BASE)})
    findings = {"www": expiry_findings(cert, now)}
    alerts = notify.current_alerts([cert], findings, now, (30, 14, 7, 1))
    path = tmp_path / "state.json"
    calls: list[str] = []
    calls_lock = threading.Lock()

    def send(due: list[Any], stack: str, stamp: str) -> None:
        time.sleep(0.2)
        with calls_lock:
            calls.append(stack)

    channel = notify.Channel("webhook", "test", send)
    errors: list[BaseException] = []

    def run(stack: str) -> None:
        try:
            notify.dispatch(alerts, [cert], [channel], notify.StateFile(path), stack, now)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    # 8 threads on the same stack (one send), and 8 on stacks of their own (every one kept)
    threads = [threading.Thread(target=run, args=("shared",)) for _ in range(8)]
    threads += [threading.Thread(target=run, args=(f"own-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert calls.count("shared") == 1, calls
    assert sorted(c for c in calls if c != "shared") == sorted(f"own-{i}" for i in range(8))
    stacks = json.loads(path.read_text())["stacks"]
    assert sorted(stacks) == sorted(["shared", *(f"own-{i}" for i in range(8))])  # no lost update
    assert all(s["www"]["sent"] == {"webhook": ["warn-30"]} for s in stacks.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]  # no temporary left
