"""Shared test helpers: certificates made with certplane's own core, and local servers on 127.0.0.1 (nginx,
moto), started and always stopped by fixtures, every wait bounded."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.deploy import Bundle
from tools.servers.moto import DUMMY_ENV, MotoServer
from tools.servers.nginx import NginxServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCa:
    """A throwaway CA so bundles carry a real chain (leaf, then intermediate)."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
        self.cert = x509util.sign_certificate(
            x509util.CertificateTemplate(common_name="certplane test CA", is_ca=True, validity_days=30),
            subject_public_key=self.key.public_key(), signing_key=self.key, issuer=None, now=now)

    def bundle(self, names: list[str], name: str = "www", *, password: str | None = None) -> Bundle:
        key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
        leaf = x509util.sign_certificate(
            x509util.CertificateTemplate(dns_names=tuple(names), validity_days=10),
            subject_public_key=key.public_key(), signing_key=self.key, issuer=self.cert,
            now=dt.datetime.now(dt.timezone.utc))
        return Bundle.from_pems(name, x509util.to_pem(leaf), x509util.to_pem(self.cert), keys.private_key_to_pem(key),
                                password)


def mismatched(bundle: Bundle, other: Bundle) -> Bundle:
    """`bundle`'s certificate with `other`'s key: what a broken renewal looks like."""
    return Bundle(bundle.name, bundle.cert_pem, bundle.chain_pem, other.key_pem, bundle.fingerprint_sha256)


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
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


def settings(server: NginxServer, **extra: Any) -> dict[str, Any]:
    return {**server.target_settings(), **extra}


def settle(probe: Any, expected: Any, *, tries: int = 100, interval: float = 0.05, rounds: int = 3) -> Any:
    """Poll `probe()` until it returns `expected` `rounds` times in a row (nginx reloads are asynchronous: old
    workers accept for a moment). Bounded; returns the last value for the caller's assert."""
    import time

    streak, value = 0, None
    for _ in range(tries):
        value = probe()
        streak = streak + 1 if value == expected else 0
        if streak >= rounds:
            break
        time.sleep(interval)
    return value
