"""Fixtures of the engine tests only: a PostgreSQL cluster for the `postgres://` state backend (one per session,
started on first use and always stopped; each test takes a database of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.servers.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL on a free 127.0.0.1 port, run as an unprivileged user, data in a temp dir."""
    server = PostgresServer()
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()
