"""The demo's local servers, kept running in the background from `make demo` until `make demo-down`:
Pebble + challtestsrv (the ACME CA and its DNS), nginx and HAProxy (where TLS terminates) and moto (AWS ACM,
ELBv2, CloudFront).

    python -m tools.servers.demo up|down|status

Fixed loopback ports (the `local` stack's config names them); each server is started only if it is not
running yet, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tools.servers import demo_sites
from tools.servers.haproxy import HaproxyServer
from tools.servers.moto import ensure_demo_resources, write_credentials
from tools.servers.nginx import NginxServer
from tools.servers.pebble import PebbleServer

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".certplane" / "servers"
PORTS = {"acme": 14000, "pebble-management": 15000, "dns": 8053, "challtestsrv": 8055, "http-01": 5002,
         "nginx": 8443, "nginx-app": 8081, "haproxy": 9443,
         "moto": 5000}
REGION = "us-east-1"
CDN_ALIAS = "blog.example.test"  # the demo's CloudFront distribution (target `cdn` in Pulumi.local.yaml)


def _alive(pid: int, name: str = "") -> bool:
    """Running, and (when `name` is given) still the program we started: pids get reused."""
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z" and name.encode() in cmdline


def _running(name: str) -> bool:
    pids = _pids(name)
    return bool(pids) and all(_alive(p, name) for p in pids)


def _pids(name: str) -> list[int]:
    path = STATE / f"{name}.pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _require_free(*names: str) -> None:
    busy = [f"{n} ({PORTS[n]})" for n in names if _port_busy(PORTS[n])]
    if busy:
        raise SystemExit(f"certplane demo: port(s) in use by another program: {', '.join(busy)}; stop it and retry")


def pebble_up() -> str:
    if _running("pebble"):
        return "already running"
    _require_free("acme", "pebble-management", "dns", "challtestsrv")
    server = PebbleServer(workdir=STATE / "pebble", acme_port=PORTS["acme"], management_port=PORTS["pebble-management"],
                          dns_port=PORTS["dns"], challtestsrv_port=PORTS["challtestsrv"], http01_port=PORTS["http-01"])
    server.start()  # its processes outlive this one; `down` stops them by pid
    (STATE / "pebble.pids").write_text(" ".join(str(p.pid) for p in server._procs))  # noqa: SLF001
    return f"{server.directory_url} (trust: {server.ca_bundle_path.relative_to(ROOT)})"


def nginx_server() -> NginxServer:
    return NginxServer(ROOT / ".certplane" / "nginx", f"127.0.0.1:{PORTS['nginx']}")


def nginx_up() -> str:
    """nginx with the demo's own sites (tools/servers/demo-sites) next to certplane's server blocks. A running
    one gets today's config (it may be from an older checkout) and a reload."""
    server = nginx_server()
    demo_sites.write(server, f"127.0.0.1:{PORTS['nginx-app']}")
    if server.running():
        server.write_config()
        server.test()
        server.reload()
        return "already running (config reloaded)"
    _require_free("nginx", "nginx-app")
    server.start(foreground=False)
    return f"https://127.0.0.1:{PORTS['nginx']}"


def haproxy_server() -> HaproxyServer:
    return HaproxyServer(ROOT / ".certplane" / "haproxy", f"127.0.0.1:{PORTS['haproxy']}")


def haproxy_up() -> str:
    server = haproxy_server()
    if server.running():
        return "already running"
    _require_free("haproxy")
    server.start(foreground=False)
    return f"https://127.0.0.1:{PORTS['haproxy']} (runtime API {server.socket.relative_to(ROOT)})"


def moto_up(timeout: float = 30.0) -> str:
    """moto, then the AWS resources the local stack's targets name (created only where missing, so a moto
    started by an older checkout gets what this one needs)."""
    write_credentials(ROOT / ".certplane" / "aws" / "credentials")  # what the local stack's AWS targets name
    url = f"http://127.0.0.1:{PORTS['moto']}"
    note = "already running"
    if not _running("moto"):
        _require_free("moto")
        log = STATE / "moto.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tools.servers.moto", "serve", str(PORTS["moto"])],
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        (STATE / "moto.pids").write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not any(line.startswith("moto: ") for line in log.read_text().splitlines()):
            if proc.poll() is not None:
                raise SystemExit(f"certplane demo: moto exited: {log.read_text().strip().splitlines()[-1:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"certplane demo: moto did not answer within {timeout:.0f} s")
            time.sleep(0.2)
        note = "started"
    made = ensure_demo_resources(url, REGION, CDN_ALIAS)
    return f"{url} ({note}; ALB listener {made['listener_arn']}; CloudFront {made['distribution_id']} for {CDN_ALIAS})"


def up() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE.parent, 0o700)
    for name, start in (("pebble", pebble_up), ("nginx", nginx_up), ("haproxy", haproxy_up), ("moto", moto_up)):
        print(f"  {name:<7} {start()}")


def down() -> None:
    nginx_server().stop()
    haproxy_server().stop()
    for name in ("pebble", "moto"):
        for pid in _pids(name):
            if _alive(pid, name):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(_alive(p, name) for p in _pids(name)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in _pids(name):
            if _alive(pid, name):
                os.kill(pid, signal.SIGKILL)
        (STATE / f"{name}.pids").unlink(missing_ok=True)


def status() -> int:
    states = {"pebble": _running("pebble"), "nginx": nginx_server().running(),
              "haproxy": haproxy_server().running(), "moto": _running("moto")}
    for name, running in states.items():
        print(f"  {name:<7} {'running' if running else 'stopped'}")
    return 0 if all(states.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    if args.action == "up":
        up()
    elif args.action == "down":
        down()
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
