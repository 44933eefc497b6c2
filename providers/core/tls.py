"""What a TLS server actually serves: one real handshake with SNI, bounded in time.

Trust is not checked here (private CAs are the point of certplane): callers compare what was served with what
they expect (a fingerprint, a chain, a name), which is stricter than "some CA vouches for it". Deploy targets use
it to confirm a rotation; `certplane check --probe` uses it to audit every endpoint.

`handshake_der` is the standard library only: a probe that compares the bytes served with what it expects
never imports `cryptography` (tens of milliseconds) unless they differ (cli/probe.py).
"""

from __future__ import annotations

import functools
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .digest import fingerprint_of_der
from .net import is_ip

if TYPE_CHECKING:
    from cryptography import x509

PROBE_LABEL = "certplane-probe"


class TlsError(Exception):
    """No certificate could be read; `reason` is one line (`timed out after 3s`, `unreachable: ...`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def probe_name(server_name: str) -> str:
    """An SNI value that `server_name` matches: a wildcard is probed with a concrete label."""
    return PROBE_LABEL + server_name[1:] if server_name.startswith("*.") else server_name


@functools.cache
def _client_context() -> ssl.SSLContext:
    """One client context for every handshake (making one loads OpenSSL's defaults each time; wrapping sockets
    with a shared one is thread-safe)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # compared by the caller, not validated against a trust store
    return context


def handshake(host: str, port: int, server_name: str | None, *, timeout: float = 3.0) -> tuple[x509.Certificate, ...]:
    """The chain the server sends for `server_name` (leaf first), parsed; see handshake_der. Raises TlsError."""
    from cryptography import x509

    return tuple(x509.load_der_x509_certificate(der) for der in handshake_der(host, port, server_name,
                                                                               timeout=timeout))


def handshake_der(host: str, port: int, server_name: str | None, *, timeout: float = 3.0) -> tuple[bytes, ...]:
    """The chain the server sends for `server_name` (leaf first, DER); no SNI when it is None or an IP address
    (RFC 6066). Raises TlsError."""
    context = _client_context()
    sni = None if server_name is None or is_ip(server_name) else server_name
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=sni) as tls:
                chain = _served_chain(tls)
    except (socket.timeout, TimeoutError):
        raise TlsError(f"timed out after {timeout:g}s") from None
    except ssl.SSLError as err:
        raise TlsError(f"TLS handshake failed: {err.reason or err}") from None
    except OSError as err:
        raise TlsError(f"unreachable: {err.strerror or err}") from None
    if not chain:
        raise TlsError("the server sent no certificate")
    return chain


def _served_chain(sock: ssl.SSLSocket) -> tuple[bytes, ...]:
    getter = getattr(sock, "get_unverified_chain", None)  # public from Python 3.13
    if getter is None:
        getter = sock._sslobj.get_unverified_chain  # type: ignore[attr-defined]  # 3.10-3.12
    raw: Sequence[object] = getter() or []
    ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
            for c in raw]
    if not ders:
        leaf = sock.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    return tuple(ders)


def served_fingerprint(host: str, port: int, server_name: str | None, *, timeout: float = 3.0) -> str | None:
    """SHA-256 fingerprint of the served leaf, or None when no handshake completes."""
    try:
        return fingerprint_of_der(handshake_der(host, port, server_name, timeout=timeout)[0])
    except TlsError:
        return None


@dataclass(frozen=True)
class Served:
    """The outcome of await_served: `pending` names did not settle in the wanted state (empty: all did); `seen`
    is the last fingerprint each name served (None: no handshake)."""

    pending: tuple[str, ...]
    seen: dict[str, str | None]
    tries: int


def await_served(host: str, port: int, names: Sequence[str], fingerprint: str, *, present: bool = True,
                 tries: int = 50, interval: float = 0.1, confirmations: int = 3) -> Served:
    """Poll real handshakes until every name serves `fingerprint` (or, with present=False, none does) in
    `confirmations` consecutive rounds. A server that reloads or swaps certificates is briefly mixed (old
    workers still accept), so one good round proves little. Bounded: `tries` rounds, `interval` apart."""
    seen: dict[str, str | None] = {}
    streak, pending = 0, list(names)
    for attempt in range(tries):
        for name in names:
            seen[name] = served_fingerprint(host, port, probe_name(name))
        pending = [n for n in names if (seen[n] == fingerprint) != present]
        streak = 0 if pending else streak + 1
        if streak >= confirmations:
            return Served((), seen, tries)
        if attempt + 1 < tries:
            time.sleep(interval if pending else interval / 2)
    return Served(tuple(pending) or tuple(names[:1]), seen, tries)  # unsettled though the last round was good


__all__ = ["PROBE_LABEL", "Served", "TlsError", "await_served", "handshake", "handshake_der", "probe_name",
           "served_fingerprint"]
