"""Fixtures of the operator CLI tests (their helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import Issued, Pki, TlsServer, issue


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = issue("Test Root CA", ca=True, days=3650)
    return Pki(root, issue("Test Intermediate CA", issuer=root, ca=True, days=1825))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[TlsServer] = []

    def start(leaf: Issued, chain: tuple[Issued, ...] = ()) -> TlsServer:
        server = TlsServer(tmp_path, leaf, chain)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
