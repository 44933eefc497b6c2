"""The fixtures every test layer shares (servers on free 127.0.0.1 ports, started on first use and always
stopped, every wait bounded), and the repo root on sys.path. Helpers that are not fixtures live in
tests/support/."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from providers.core.clock import NOW_ENV, rfc3339  # noqa: E402
from tests.support.acme import BLOCKED, EAB_HMAC, EAB_KID, new_account  # noqa: E402
from tests.support.pki import LocalCa  # noqa: E402
from tools.servers.bind import BindServer  # noqa: E402
from tools.servers.moto import DUMMY_ENV, MotoServer  # noqa: E402
from tests.support.demo import DemoServers  # noqa: E402
from tools.servers.haproxy import HaproxyServer  # noqa: E402
from tools.servers.nginx import NginxServer  # noqa: E402
from tools.servers import free_port  # noqa: E402
from tools.servers.pebble import PebbleServer  # noqa: E402


class Clock:
    """Moves certplane's clock ($CERTPLANE_NOW) for one test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def set(self, when: dt.datetime | str) -> None:
        self._monkeypatch.setenv(NOW_ENV, when if isinstance(when, str) else rfc3339(when))

    def reset(self) -> None:
        self._monkeypatch.delenv(NOW_ENV, raising=False)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture(scope="session")
def ca() -> LocalCa:
    return LocalCa()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    server = NginxServer(tmp_path / "nginx", f"127.0.0.1:{free_port()}")
    server.start(timeout=10)
    try:
        yield server
    finally:
        server.stop(timeout=10)


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HaproxyServer]:
    server = HaproxyServer(tmp_path / "haproxy", f"127.0.0.1:{free_port()}")
    server.start(timeout=10)
    try:
        yield server
    finally:
        server.stop(timeout=10)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One in-process moto per session; `moto` resets it for a test that needs a clean account."""
    server = MotoServer()
    server.start(timeout=20)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    moto_server.reset()
    return moto_server


@pytest.fixture
def moto_url(moto_server: MotoServer) -> str:
    """moto's endpoint, not reset (tests that make their own uniquely named resources)."""
    return moto_server.endpoint_url


@pytest.fixture(scope="session")
def pebble() -> Iterator[PebbleServer]:
    """Deterministic Pebble: no nonce rejection, no authz reuse, a domain blocklist, default+shortlived."""
    with PebbleServer(domain_blocklist=[BLOCKED], nonce_reject=0, authz_reuse=0) as server:
        yield server


@pytest.fixture(scope="session")
def pebble_eab() -> Iterator[PebbleServer]:
    with PebbleServer(eab_required=True, eab_keys={EAB_KID: EAB_HMAC}) as server:
        yield server


@pytest.fixture(scope="session")
def bind() -> Iterator[BindServer]:
    records = ["_acme-challenge.delegated IN CNAME delegated.acme-challenges"]
    with BindServer(records=records) as server:
        yield server


@pytest.fixture(scope="session")
def pebble_bind(bind: BindServer) -> Iterator[PebbleServer]:
    """Pebble whose VA resolves every name with the BIND server (real DNS-01 over RFC 2136)."""
    with PebbleServer(dns_server=bind.address) as server:
        yield server


@pytest.fixture(scope="session")
def account(pebble: PebbleServer) -> tuple[Any, Any, str]:
    return new_account(pebble)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture()
def webroot_server(pebble: PebbleServer, tmp_path: Path) -> Iterator[Path]:
    """A tiny web server on Pebble's HTTP-01 port serving `tmp_path/www` (what nginx would do)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http01_port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def demo_servers(tmp_path: Path, moto: MotoServer) -> Iterator[DemoServers]:
    """The demo's servers on free ports: Pebble (+ challtestsrv), nginx with the demo's own sites, HAProxy, and
    an ALB and a CloudFront distribution on the session's moto."""
    from tools.servers import demo_sites
    from tools.servers.demo import CDN_ALIAS
    from tools.servers.moto import create_distribution, create_https_listener, import_placeholder_certificate

    nginx = NginxServer(tmp_path / "nginx", f"127.0.0.1:{free_port()}")
    demo_sites.write(nginx, f"127.0.0.1:{free_port()}")
    haproxy = HaproxyServer(tmp_path / "haproxy", f"127.0.0.1:{free_port()}")
    with PebbleServer() as pebble:
        nginx.start(timeout=10)
        try:
            haproxy.start(timeout=10)
            url = moto.endpoint_url
            create_https_listener(url, "us-east-1", import_placeholder_certificate(url, "us-east-1"))
            create_distribution(url, aliases=(CDN_ALIAS,),
                                certificate_arn=import_placeholder_certificate(url, "us-east-1", (CDN_ALIAS,)))
            yield DemoServers(pebble, nginx, haproxy, url)
        finally:
            haproxy.stop(timeout=10)
            nginx.stop(timeout=10)


from tools.servers.stepca import StepCaServer  # noqa: E402


@pytest.fixture(scope="session")
def stepca() -> Iterator[StepCaServer]:
    """step-ca, the second, independent ACME server (docs/ACME-SERVERS.md): its own root, its own challtestsrv
    for DNS-01, HTTP-01 on `stepca.http01_port`, 90-day certificates, revocations visible in its CRL."""
    with StepCaServer() as server:
        yield server
