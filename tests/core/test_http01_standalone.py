"""The shared HTTP-01 standalone responder under concurrent orders: presents, cleanups and closes from many
threads while the CA's requests keep coming; a token two orders present stays served until both withdraw it."""

from __future__ import annotations

import base64
import http.client
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from providers.core import http01
from providers.core.acme.solver import Challenge
from providers.core.http01 import standalone
from tools.servers import free_port


def challenge(label: str) -> Challenge:
    token = base64.urlsafe_b64encode(f"token-{label}-".encode().ljust(24, b"x")).decode().rstrip("=")
    return Challenge(domain=f"{label}.example.test", token=token, validation=f"{token}.thumbprint-{label}")


NOT_SERVED = (0, "")  # acme's responder closes the connection without a response for a token it does not hold


def fetch(port: int, ch: Challenge) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{ch.token}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except http.client.RemoteDisconnected:
        return NOT_SERVED


def closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture()
def busy_threads() -> Iterator[None]:
    """Switch threads far more often than usual, so a request and a present really do interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_a_token_two_orders_present_is_served_until_both_withdraw_it():
    port = free_port()
    settings = {"mode": "standalone", "listen": f"127.0.0.1:{port}"}
    shared = challenge("shared")
    first, second = http01.make_solver(settings), http01.make_solver(settings)
    first.present(shared)
    second.present(shared)
    first.cleanup(shared)
    assert fetch(port, shared) == (200, shared.validation)  # the second order still needs it
    first.close()
    assert fetch(port, shared) == (200, shared.validation)
    second.cleanup(shared)
    assert fetch(port, shared) == NOT_SERVED
    second.close()
    assert closed(port)


def test_concurrent_present_cleanup_and_close_while_requests_are_served(busy_threads: None):
    port = free_port()
    settings = {"mode": "standalone", "listen": f"127.0.0.1:{port}"}
    pinned, filler = http01.make_solver(settings), http01.make_solver(settings)
    pin = challenge("pin")
    pinned.present(pin)
    for i in range(150):  # many tokens: every request walks them while other threads change them
        filler.present(challenge(f"fill{i}"))
    failures: list[str] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                got = fetch(port, pin)
            except OSError as err:
                failures.append(f"request failed: {type(err).__name__}: {err}")
                continue
            if got != (200, pin.validation):  # NOT_SERVED: the request died in the responder
                failures.append(f"request answered {got}")

    def order(n: int) -> None:
        for round_ in range(15):
            solver = http01.make_solver(settings)
            mine = [challenge(f"o{n}r{round_}c{c}") for c in range(4)]
            try:
                for ch in mine:
                    solver.present(ch)
                for ch in mine[:1]:
                    if fetch(port, ch) != (200, ch.validation):
                        failures.append(f"order {n}: its own token was not served")
                for ch in mine:
                    solver.cleanup(ch)
            except Exception as err:  # noqa: BLE001 - reported below
                failures.append(f"order {n}: {type(err).__name__}: {err}")
            finally:
                solver.close()

    askers = [threading.Thread(target=ask) for _ in range(3)]
    orders = [threading.Thread(target=order, args=(n,)) for n in range(8)]
    started = time.monotonic()
    for t in [*askers, *orders]:
        t.start()
    for t in orders:
        t.join(timeout=120)
    stop.set()
    for t in askers:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in [*askers, *orders])
    assert failures == []
    assert time.monotonic() - started < 120
    filler.close()
    assert fetch(port, pin) == (200, pin.validation)
    pinned.cleanup(pin)
    pinned.close()
    assert closed(port)
    assert (("127.0.0.1", port)) not in standalone._RESPONDERS


def test_many_orders_starting_and_ending_at_once_share_one_socket_and_release_it():
    port = free_port()
    settings = {"mode": "standalone", "listen": f"127.0.0.1:{port}"}
    barrier = threading.Barrier(12)
    failures: list[str] = []

    def order(n: int) -> None:
        solver = http01.make_solver(settings)
        ch = challenge(f"burst{n}")
        try:
            barrier.wait(timeout=10)
            solver.present(ch)
            if fetch(port, ch) != (200, ch.validation):
                failures.append(f"order {n}: not served")
            solver.cleanup(ch)
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(f"order {n}: {type(err).__name__}: {err}")
        finally:
            solver.close()

    threads = [threading.Thread(target=order, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert closed(port)
    assert ("127.0.0.1", port) not in standalone._RESPONDERS
