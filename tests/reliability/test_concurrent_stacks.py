"""Fault suite, concurrency: two stacks (staging and prod, one team backend) run `pulumi up` at the same time
against one ACME CA (Pebble), with ONE shared account (the issuer's `account_key_pem`, a secret) and ONE DNS
zone (real BIND, RFC 2136 with TSIG). Both order a certificate for the same name, and the same wildcard + apex,
at the same time, so their DNS-01 challenges share `_acme-challenge.<name>`; each has names of its own too.

The two orders' challenge records are made to coexist every time, on a machine of any speed: an RFC 2136 gate in
front of BIND holds each removal of a shared challenge record until every stack's value for that name has been
added (bounded). RFC 2136 adds and deletes one value at a time, so neither stack's cleanup takes the other's
record away. Then: both ups succeed, the stacks use one account (one registration at the CA), every certificate
chains to Pebble's root and covers its names, the key is nowhere in plain text, destroying one stack leaves the
account valid (the other renews with it afterwards), and no TXT record is left in the zone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.opcode
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.zone
import pytest

from providers.core import audit
from providers.core import certificates as x509util
from providers.core import keys
from providers.core.acme import client as acme_client
from providers.core.dns.propagation import txt_values
from tests.integration.harness import EngineProject, changed_steps
from tools.servers import free_port
from tools.servers.bind import BindServer
from tools.servers.pebble import PebbleServer

from .harness import PebbleLog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZONE = "team.example.test"
STACKS = ("staging", "prod")
SHARED = f"shared.{ZONE}"  # both stacks order it: one challenge name, one value per stack
WILD = [f"*.wild.{ZONE}", f"wild.{ZONE}"]  # both stacks: one challenge name, two values per stack
UP_TIMEOUT = 600.0
GATE_TIMEOUT = 120.0  # under the rfc2136 update timeout the stacks are given (300 s)


def own_names(stack: str) -> list[str]:
    return [f"{stack}-app.{ZONE}", f"{stack}-api.{ZONE}"]


def challenge(name: str) -> str:
    return "_acme-challenge." + name.removeprefix("*.")


# --- an RFC 2136 gate in front of BIND -------------------------------------------------------------------------

class UpdateGate:
    """A DNS-over-TCP forwarder to BIND (what the rfc2136 provider speaks for updates). It records every update
    (add or delete, name, value) and, for each gated name, forces the interleaving in which one order's cleanup
    could take another's record away: a removal is held until `wanted[name]` distinct values have been added
    there, and the answer to the add that completes them is held until a removal there has gone through, so
    the last order to present its value only checks and validates it after another order's cleanup. Each hold is
    at most `timeout` s (`timed_out` names the name). `seen_together` is what BIND served for the name just
    before the first removal."""

    def __init__(self, bind: BindServer, wanted: dict[str, int], timeout: float = GATE_TIMEOUT) -> None:
        self.bind, self.wanted, self.timeout = bind, dict(wanted), timeout
        self.keyring = dns.tsigkeyring.from_text({bind.key_name: bind.secret})
        self.events: list[tuple[float, str, str, str]] = []  # (time, "add"|"delete", name, value)
        self.added: dict[str, set[str]] = {}
        self.deleted: set[str] = set()
        self.seen_together: dict[str, set[str]] = {}
        self.timed_out: list[str] = []
        self._changed = threading.Condition()
        gate = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(60)
                while True:
                    wire = _read_message(self.request)
                    if wire is None:
                        return
                    reply = gate._forward(wire)
                    self.request.sendall(len(reply).to_bytes(2, "big") + reply)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.port = free_port()
        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def dns_settings(self) -> dict[str, Any]:
        """BIND's rfc2136 settings with the updates sent through the gate (lookups still go to BIND)."""
        return {**self.bind.dns_settings(), "port": self.port}

    def _changes(self, wire: bytes) -> list[tuple[str, str, str]]:
        try:
            message = dns.message.from_wire(wire, keyring=self.keyring)
        except Exception:  # noqa: BLE001 - not ours to judge: BIND answers it
            return []
        if message.opcode() != dns.opcode.UPDATE:
            return []
        out = []
        for rrset in message.update:  # type: ignore[attr-defined]
            if rrset.rdtype != dns.rdatatype.TXT:
                continue
            kind = "delete" if rrset.deleting is not None else "add"
            for rdata in rrset or [None]:
                value = b"".join(rdata.strings).decode() if rdata is not None else "*"
                out.append((kind, rrset.name.to_text(omit_final_dot=True).lower(), value))
        return out

    def _forward(self, wire: bytes) -> bytes:
        changes = self._changes(wire)
        for kind, name, _value in changes:
            if kind == "delete" and name in self.wanted:
                with self._changed:
                    ready = self._changed.wait_for(lambda: len(self.added.get(name, ())) >= self.wanted[name],
                                                   timeout=self.timeout)
                    if not ready:
                        self.timed_out.append(name)
                    if name not in self.seen_together:
                        self.seen_together[name] = txt_values(name, ("127.0.0.1", self.bind.port))
        with socket.create_connection(("127.0.0.1", self.bind.port), timeout=30) as upstream:
            upstream.sendall(len(wire).to_bytes(2, "big") + wire)
            reply = _read_message(upstream)
        assert reply is not None, "BIND closed the connection without an answer"
        with self._changed:
            for kind, name, value in changes:
                self.events.append((time.monotonic(), kind, name, value))
                if kind == "add":
                    self.added.setdefault(name, set()).add(value)
                else:
                    self.deleted.add(name)
            self._changed.notify_all()
            for kind, name, _value in changes:
                completes = kind == "add" and name in self.wanted and len(self.added[name]) >= self.wanted[name]
                if completes and not self._changed.wait_for(lambda: name in self.deleted, timeout=self.timeout):
                    self.timed_out.append(name)
        return reply

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _read_message(sock: socket.socket) -> bytes | None:
    head = _read_exactly(sock, 2)
    return None if head is None else _read_exactly(sock, int.from_bytes(head, "big"))


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except (TimeoutError, OSError):
            return None
        if not chunk:
            return None
        data += chunk
    return data


# --- the servers, the stacks ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bind() -> Iterator[BindServer]:
    """The team's zone, on a BIND of this module's own."""
    with BindServer(zone=ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def acme_ca(bind: BindServer) -> Iterator[PebbleServer]:
    """A Pebble of this module's own (its log counts only these stacks' accounts), validating DNS-01 against
    the BIND zone; no authorization reuse, so each stack's order has a challenge of its own."""
    with PebbleServer(dns_server=bind.address, authz_reuse=0) as server:
        yield server


def stack_config(stack: str, acme_ca: PebbleServer, dns_settings: dict[str, Any]) -> dict[str, Any]:
    issuer = {"type": "acme", "directory_url": acme_ca.directory_url, "email": f"{stack}@example.test",
              "ca_bundle": str(acme_ca.ca_bundle_path), "profile": "default",
              "dns": {**dns_settings, "timeout": 300, "propagation_timeout": 60}}  # the gate may hold an update
    certificates: dict[str, Any] = {
        "shared": {"domains": [SHARED], "issuer": "letsencrypt"},
        "wild": {"domains": WILD, "issuer": "letsencrypt"},
        **{name.split(".")[0]: {"domains": [name], "issuer": "letsencrypt"} for name in own_names(stack)},
    }
    return {"issuers": {"letsencrypt": issuer}, "certificates": certificates}


def start_up(project: EngineProject, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`pulumi up` as a CI job of each environment runs it: its own process, in a session of its own."""
    with open(log, "wb") as sink:
        return subprocess.Popen(["pulumi", "up", "--yes", "--skip-preview", "--stack", project.stack_name,
                                 "--non-interactive", "--color", "never"], cwd=project.dir,
                                env={**os.environ, **project.env, **(env or {})}, stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = UP_TIMEOUT) -> tuple[int, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)
        raise AssertionError(f"`pulumi up` did not finish within {timeout:g} s:\n{log.read_text()}") from None
    return proc.returncode, log.read_text(errors="replace")


def account_urls(project: EngineProject) -> list[str]:
    state = json.loads(project.cli("stack", "export"))
    return [r["outputs"]["account_url"] for r in state["deployment"].get("resources") or []
            if r["type"].endswith(":AcmeAccount")]


def zone_txt(bind: BindServer) -> dict[str, list[str]]:
    """Every TXT record in the zone (a zone transfer from BIND)."""
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=bind.port, lifetime=10))
    out = {}
    for name, node in zone.nodes.items():
        rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT)
        if rdataset:
            out[name.to_text()] = sorted(r.to_text() for r in rdataset)
    return out


def assert_certificates(outputs: dict[str, Any], stack: str, root: Any) -> None:
    names = {"shared": [SHARED], "wild": WILD, **{n.split(".")[0]: [n] for n in own_names(stack)}}
    inventory, downloads = outputs["inventory"], outputs["certificates"]
    assert set(inventory) == set(names), inventory
    now = dt.datetime.now(dt.timezone.utc)
    for cert_name, domains in names.items():
        chain = x509util.load_certificates(downloads[cert_name]["fullchain_pem"])
        leaf = chain[0]
        for cert, issuer in zip(chain, chain[1:]):
            assert x509util.signed_by(cert, issuer), (stack, cert_name)
        assert x509util.signed_by(chain[-1], root), (stack, cert_name)  # ends under Pebble's root
        assert sorted(x509util.dns_names_of(leaf)) == sorted(domains), (stack, cert_name)
        assert all(x509util.covers(leaf, d.replace("*.", "x.")) for d in domains), (stack, cert_name)
        assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
        x509util.check_key_pair(keys.load_private_key(downloads[cert_name]["private_key_pem"]), leaf)


def test_two_stacks_sharing_an_acme_account_and_a_dns_zone_up_at_the_same_time(tmp_path: Path, bind: BindServer,
                                                                                acme_ca: PebbleServer) -> None:
    started = time.monotonic()
    account_key = keys.private_key_to_pem(keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256")))
    key_body = account_key.splitlines()[1]  # a line of the key's base64: must appear nowhere in plain text
    # One value per stack for the shared name; the wildcard and its apex give two per stack.
    gate = UpdateGate(bind, {challenge(SHARED): len(STACKS), challenge(WILD[1]): 2 * len(STACKS)})
    backend = tmp_path / "team-state"
    backend.mkdir()
    projects = {
        stack: EngineProject(tmp_path / stack, stack_config(stack, acme_ca, gate.dns_settings()), stack_name=stack,
                             backend_url=f"file://{backend}",
                             secrets={"certplane:issuers.letsencrypt.account_key_pem": account_key})
        for stack in STACKS}
    alive = set(STACKS)
    try:
        for project in projects.values():  # set with --path --secret: only ciphertext in the stack file
            stack_file = (project.dir / f"Pulumi.{project.stack_name}.yaml").read_text()
            assert key_body not in stack_file and "secure:" in stack_file
        pebble_log = PebbleLog(acme_ca.workdir / "pebble.log")

        # Both ups at once.
        logs = {stack: tmp_path / f"{stack}-up.log" for stack in STACKS}
        ups_started = time.monotonic()
        running = {stack: start_up(projects[stack], logs[stack]) for stack in STACKS}
        results = {stack: finish(running[stack], logs[stack]) for stack in STACKS}
        up_seconds = time.monotonic() - ups_started
        for stack, (code, text) in results.items():
            assert code == 0, f"{stack}: exit {code}\n{text}"
            assert "Traceback" not in text and key_body not in text, text

        # The orders really overlapped: at each shared name, every stack's value was served at once.
        assert gate.timed_out == [], (gate.timed_out, gate.events)
        assert len(gate.seen_together[challenge(SHARED)]) == len(STACKS), gate.seen_together
        assert len(gate.seen_together[challenge(WILD[1])]) == 2 * len(STACKS), gate.seen_together
        for name in gate.wanted:  # every value was added before any was removed, and all were removed
            adds = [t for t, kind, n, _ in gate.events if n == name and kind == "add"]
            deletes = [t for t, kind, n, _ in gate.events if n == name and kind == "delete"]
            assert len(adds) == len(deletes) == gate.wanted[name] and max(adds) < min(deletes), gate.events

        # One account, found by both stacks; one registration at the CA.
        urls = {stack: account_urls(project) for stack, project in projects.items()}
        assert len(urls["staging"]) == 1 and urls["staging"] == urls["prod"], urls
        assert pebble_log.counts()["accounts"] == 1, pebble_log.counts()
        assert pebble_log.counts()["issued"] == 4 * len(STACKS)

        root = x509util.load_certificates(acme_ca.root_pem)[0]
        outputs = {stack: project.outputs() for stack, project in projects.items()}
        for stack in STACKS:
            assert_certificates(outputs[stack], stack, root)
            assert key_body not in projects[stack].export_text()
        for path in backend.rglob("*"):
            if path.is_file():
                assert key_body not in path.read_text(errors="replace"), path
        assert all(changed_steps(p.preview()) == {} for p in projects.values())  # nothing left to do
        for stack in STACKS:  # each stack's audit trail (beside the shared state) holds, with its four issues
            trail = audit.AuditLog(backend / "certplane-audit" / "certplane" / f"{stack}.jsonl")
            verdict = trail.verify()
            assert verdict.problem is None, verdict
            issued = [r for r in trail.records() if r["action"] == "issue"]
            assert len(issued) == 4 and all(r["outcome"] == "ok" and r["stack"] == stack for r in issued), issued
        assert zone_txt(bind) == {}, zone_txt(bind)

        # Staging goes away: the account stays valid for prod, which renews with it afterwards.
        projects["staging"].destroy()
        alive.discard("staging")
        conn = acme_client.Connection(acme_ca.directory_url, ca_bundle=str(acme_ca.ca_bundle_path))
        url = urls["prod"][0]
        client = acme_client.connect(conn, keys.load_private_key(account_key), url)
        assert acme_client.account_status(client, url) == "valid"
        later = {"CERTPLANE_NOW": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=62)).isoformat()}
        renewal = start_up(projects["prod"], tmp_path / "prod-renew.log", env=later)
        code, text = finish(renewal, tmp_path / "prod-renew.log")
        assert code == 0, text
        renewed = projects["prod"].outputs()["inventory"]
        assert all(renewed[n]["serial"] != outputs["prod"]["inventory"][n]["serial"] for n in renewed)
        assert_certificates(projects["prod"].outputs(), "prod", root)
        assert account_urls(projects["prod"]) == urls["prod"]
        assert pebble_log.counts()["accounts"] == 1  # the renewal registered nothing new
        assert zone_txt(bind) == {}, zone_txt(bind)
        print(f"both ups at once: {up_seconds:.1f} s; whole test {time.monotonic() - started:.1f} s")
    finally:
        gate.close()
        for stack in sorted(alive):
            projects[stack].destroy()
    assert zone_txt(bind) == {}
