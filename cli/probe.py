"""Live TLS probes: a real handshake with SNI against every endpoint, then checks of what was served.

Certificates are not validated against a trust store here (private CAs are the point of certplane); instead
each served certificate is compared with the inventory (SHA-256 fingerprint), its chain is checked to link
leaf -> issuer with real signature verification, and its SANs must cover the probed name. An endpoint that sends
exactly the leaf and chain the inventory records as checked at `up` (`served_sha256`), for a name among the
certificate's domains, is healthy without parsing or verifying them again; anything else is checked in full.

The handshakes and that comparison need only the standard library: `cryptography` (~60 ms to import, a sixth of
a 200-endpoint run) is imported only when an endpoint needs the full check.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from providers.core import tls
from providers.core.digest import bundle_digest, fingerprint_of_der
from providers.core.net import dns_match, is_ip

from .model import Certificate, Endpoint, Finding

if TYPE_CHECKING:
    from cryptography import x509

J = TypeVar("J")
R = TypeVar("R")

DEFAULT_TIMEOUT = 5.0
MAX_WORKERS = 8


def certificate_reading() -> ModuleType:
    """providers.core.pem (and with it cryptography), imported on first use."""
    from providers.core import pem

    return pem


@dataclass(frozen=True)
class ProbeResult:
    certificate: str
    endpoint: Endpoint
    served: tuple[bytes, ...] = ()  # the chain as sent (DER, leaf first)
    error: str | None = None
    seconds: float = 0.0

    @functools.cached_property
    def chain(self) -> tuple[x509.Certificate, ...]:
        from cryptography import x509

        return tuple(x509.load_der_x509_certificate(der) for der in self.served)

    @property
    def served_fingerprint(self) -> str | None:
        return fingerprint_of_der(self.served[0]) if self.served else None


def default_server_name(cert: Certificate) -> str | None:
    """What to send as SNI when the endpoint names none: the first non-wildcard domain."""
    for name in cert.domains:
        if not name.startswith("*."):
            return name
    return cert.domains[0][2:] if cert.domains else None


def probe(certificate: str, endpoint: Endpoint, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """One TLS handshake (core's), bounded by `timeout` seconds for the connect and for the handshake."""
    start = time.monotonic()
    try:
        served = tls.handshake_der(endpoint.host, endpoint.port, endpoint.server_name, timeout=timeout)
    except tls.TlsError as err:
        return ProbeResult(certificate, endpoint, error=err.reason, seconds=time.monotonic() - start)
    return ProbeResult(certificate, endpoint, served=served, seconds=time.monotonic() - start)


def add_probe_arguments(parser: argparse.ArgumentParser, *, probe_help: str, endpoint_help: str) -> None:
    """--probe, --endpoint, --probe-timeout, --probe-workers: the same options wherever the CLI probes."""
    parser.add_argument("--probe", action="store_true", help=probe_help)
    parser.add_argument("--endpoint", action="append", metavar="NAME=HOST:PORT[/SNI]", help=endpoint_help)
    parser.add_argument("--probe-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"connect and handshake timeout per endpoint (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--probe-workers", type=int, default=MAX_WORKERS, metavar="N",
                        help=f"concurrent probes (default: {MAX_WORKERS})")


def concurrently(task: Callable[[str, J], R], jobs: Sequence[tuple[str, J]], *, workers: int, prefix: str,
                 on_done: Callable[[R], None] | None = None) -> list[R]:
    """`task(certificate, job)` for every job on a small thread pool; results in the order of `jobs`, each
    passed to `on_done` as it is collected (a progress line)."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), thread_name_prefix=prefix) as pool:
        futures = [pool.submit(task, name, job) for name, job in jobs]
        results = []
        for future in futures:
            result = future.result()
            if on_done:
                on_done(result)
            results.append(result)
    return results


def probe_all(jobs: Sequence[tuple[str, Endpoint]], *, timeout: float = DEFAULT_TIMEOUT,
              workers: int = MAX_WORKERS, on_done: Callable[[ProbeResult], None] | None = None) -> list[ProbeResult]:
    """Probe concurrently; results in the order of `jobs`."""
    return concurrently(lambda name, endpoint: probe(name, endpoint, timeout), jobs, workers=workers,
                        prefix="probe", on_done=on_done)


def chain_problem(chain: Sequence[x509.Certificate]) -> str | None:
    """None when the served chain links leaf -> issuer -> ... (the root may be left out), else why not."""
    signed_by = certificate_reading().signed_by
    leaf = chain[0]
    if leaf.issuer == leaf.subject and signed_by(leaf, leaf):
        return None  # self-signed: nothing to link to
    issuer = leaf.issuer.rfc4514_string()
    if len(chain) == 1:
        return f"chain incomplete: the server sends only the leaf; its issuer ({issuer}) is missing"
    if not signed_by(leaf, chain[1]):
        return (f"chain incomplete: the leaf was issued by {issuer}, but the server sends "
                f"{chain[1].subject.rfc4514_string()} after it")
    for i in range(1, len(chain) - 1):
        if not signed_by(chain[i], chain[i + 1]):
            return (f"chain broken: {chain[i].subject.rfc4514_string()} is not issued by the next certificate "
                    f"({chain[i + 1].subject.rfc4514_string()})")
    return None


def serves_as_recorded(cert: Certificate, result: ProbeResult) -> bool:
    """The endpoint sent the very bytes the inventory checked at `up` (leaf and chain: each signed by the next,
    or a leaf alone signed by its private CA's root), for one of the certificate's domains: nothing `assess` looks
    for can be wrong. False sends the endpoint to the full check (which, knowing no roots, calls a leaf served
    alone incomplete)."""
    if cert.served_sha256 is None or not result.served or bundle_digest(result.served) != cert.served_sha256:
        return False
    name = result.endpoint.server_name or result.endpoint.host
    if is_ip(name):
        return name in cert.domains  # as written; any other spelling of the address is checked in full
    return any(dns_match(domain, name) for domain in cert.domains)


def assess(cert: Certificate, result: ProbeResult) -> list[Finding]:
    """Findings for one probe; an empty list means the endpoint serves this certificate correctly."""
    where = result.endpoint.label
    if result.error:
        return [Finding(cert.name, "critical", "endpoint-unreachable", f"{where}: {result.error}", endpoint=where)]
    if serves_as_recorded(cert, result):
        return []
    pem = certificate_reading()
    out = []
    leaf = result.chain[0]
    served = result.served_fingerprint or ""
    if cert.fingerprint_sha256 and not pem.same_fingerprint(served, cert.fingerprint_sha256):
        subject = leaf.subject.rfc4514_string() or "(empty subject)"
        out.append(Finding(cert.name, "critical", "endpoint-mismatch",
                           f"{where}: serves another certificate ({subject}, serial {leaf.serial_number:x}, "
                           f"SHA-256 {served[:23]}...) than the inventory's (serial {cert.serial or '?'}, "
                           f"SHA-256 {cert.fingerprint_sha256[:23]}...)", endpoint=where))
    problem = chain_problem(result.chain)
    if problem:
        out.append(Finding(cert.name, "critical", "chain-incomplete", f"{where}: {problem}", endpoint=where))
    name = result.endpoint.server_name or result.endpoint.host
    if not pem.covers(leaf, name):
        dns, ips = pem.subject_alt_names(leaf)
        names = ", ".join(dns + ips) or "no subjectAltName"
        out.append(Finding(cert.name, "critical", "hostname-mismatch",
                           f"{where}: hostname mismatch: the served certificate covers {names}, not {name}",
                           endpoint=where))
    return out
