"""`certplane metrics`: the inventory as Prometheus metrics, in the names Prometheus users already alert on.

Per certificate, x509-certificate-exporter's x509_cert_not_before, x509_cert_not_after and x509_cert_expired, and
certplane's own certplane_chain_earliest_not_after (the earliest expiry over the leaf and its served chain),
certplane_renewal_time and certplane_renewal_overdue (1 once past the renewal time by more than --grace-days).
With --probe, per TLS endpoint blackbox/ssl_exporter's probe_success, probe_duration_seconds and
probe_ssl_earliest_cert_expiry, and per binding certplane_binding_serves_managed (1 when it serves the
inventory's certificate); the targets that do not terminate TLS are asked through their own API, as by check.

Without --textfile or --listen the text goes to stdout. --textfile PATH writes it for node_exporter's textfile
collector (a temp file in the same directory, then a rename: the collector never reads half a file). --listen
HOST:PORT serves /metrics, reading the inventory again when a scrape finds it older than --cache-seconds (a
failed read keeps serving the last good one, with certplane_inventory_read_success 0). No certificate, key or
secret is ever in the output: dates, serials, names, fingerprints and tags owner/env only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from cryptography import x509
from cryptography.x509.oid import NameOID

from providers.core.pem import fingerprint_sha256, same_fingerprint
from providers.core.deploy import DEFAULT
from providers.core.deploy._support import atomic_write
from providers.core.errors import InvalidInputError
from providers.core.net import parse_address

from . import EXIT_OK, CliError, observe, probe
from .check import probe_jobs
from .expiry import DEFAULT_GRACE_DAYS
from .model import Certificate, parse_endpoint_spec
from .render import count_certificates, plural
from .stack import Source, load

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

DEFAULT_CACHE_SECONDS = 30.0
MAX_CACHE_SECONDS = 3600.0
MAX_CONCURRENT_SCRAPES = 4  # more at once are answered 503: a refresh is expensive, never queue them up
FIRST_READ_WAIT = 150.0  # a scrape waits this long for a refresh already running when there is nothing to serve
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request
TEXTFILE_MODE = 0o644

CERT_LABELS = ("stack", "certificate", "issuer", "serial", "owner", "env")
# x509-certificate-exporter's own labels as well, so its dashboards and rules join on them
X509_LABELS = (*CERT_LABELS, "serial_number", "issuer_CN", "issuer_O")
INFO_LABELS = ("stack", "certificate", "domains", "targets", "key_algorithm", "fingerprint_sha256")
PROBE_LABELS = ("stack", "certificate", "target", "endpoint", "server_name", "owner", "env")
BINDING_LABELS = (*PROBE_LABELS, "type")
TARGET_LABELS = ("stack", "certificate", "target", "type", "owner", "env")
STACK_LABELS = ("stack",)


@dataclass(frozen=True)
class Options:
    probing: bool = False  # --probe: every endpoint and target of the inventory
    endpoints: tuple[str, ...] = ()
    probe_timeout: float = probe.DEFAULT_TIMEOUT
    probe_workers: int = probe.MAX_WORKERS
    grace_days: float = DEFAULT_GRACE_DAYS


@dataclass(frozen=True)
class Snapshot:
    """One read of the inventory (and, with --probe, of what is served), at `now`."""

    stack: str
    now: dt.datetime
    certificates: tuple[Certificate, ...]
    probes: tuple[probe.ProbeResult, ...] = ()
    observations: tuple[observe.Observation, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Reading:
    """What a scrape is served: the last good snapshot, and whether the latest attempt to read succeeded."""

    snapshot: Snapshot | None
    ok: bool
    stack: str
    error: str | None = None


def take_snapshot(source: Source, options: Options) -> Snapshot:
    start = time.monotonic()
    loaded = load(source)
    certs = loaded.certificates
    probes: list[probe.ProbeResult] = []
    observations: list[observe.Observation] = []
    if options.probing or options.endpoints:
        jobs = probe_jobs(certs, list(options.endpoints))
        probes = probe.probe_all(jobs, timeout=options.probe_timeout, workers=options.probe_workers)
        if options.probing:
            asks = [(c.name, p) for c in certs for p in c.placements]
            observations = observe.observe_all(asks, workers=options.probe_workers)
    return Snapshot(stack=loaded.stack, now=loaded.now, certificates=tuple(certs), probes=tuple(probes),
                    observations=tuple(observations), seconds=time.monotonic() - start)


# --- the metric families -----------------------------------------------------------------------------------------

def _ts(value: dt.datetime) -> float:
    return value.timestamp()


def chain_earliest_not_after(cert: Certificate) -> dt.datetime:
    """The earliest not_after over the leaf and its served chain; the leaf's when the inventory predates it."""
    chain = getattr(cert, "chain_not_after", None)
    return min(cert.not_after, chain) if isinstance(chain, dt.datetime) else cert.not_after


def serial_number(serial: str) -> str:
    """x509-certificate-exporter's serial_number is decimal; the inventory's serial is hex."""
    try:
        return str(int(serial.replace(":", ""), 16)) if serial else ""
    except ValueError:
        return serial


def name_attribute(dn: str, oid: x509.ObjectIdentifier) -> str:
    try:
        values = x509.Name.from_rfc4514_string(dn).get_attributes_for_oid(oid) if dn else []
    except (ValueError, TypeError):
        return ""
    return str(values[0].value) if values else ""


def _cert_labels(stack: str, cert: Certificate) -> list[str]:
    return [stack, cert.name, cert.issuer, cert.serial, cert.owner, cert.tags.get("env", "")]


def families(reading: Reading, grace_days: float = DEFAULT_GRACE_DAYS) -> list[Metric]:
    """Every metric family of one reading, each with HELP; certificates in name order."""
    from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

    def gauge(name: str, doc: str, labels: Iterable[str]) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=list(labels))

    read_ok = gauge("certplane_inventory_read_success",
                    "1 when the latest read of the inventory succeeded (0: the series shown are the last good read)",
                    STACK_LABELS)
    read_ok.add_metric([reading.stack], 1.0 if reading.ok else 0.0)
    out: list[Metric] = [read_ok]
    snap = reading.snapshot
    if snap is None:
        return out
    stack, now = snap.stack, snap.now
    certs = sorted(snap.certificates, key=lambda c: c.name)

    count = gauge("certplane_inventory_certificates", "Certificates in the inventory", STACK_LABELS)
    count.add_metric([stack], float(len(certs)))
    last = gauge("certplane_inventory_last_read_timestamp_seconds",
                 "When the inventory was last read successfully (certplane's clock: $CERTPLANE_NOW when set)",
                 STACK_LABELS)
    last.add_metric([stack], _ts(now))
    took = gauge("certplane_inventory_read_duration_seconds",
                 "How long the last good read of the inventory (and its probes) took", STACK_LABELS)
    took.add_metric([stack], round(snap.seconds, 6))
    out += [count, last, took]

    not_before = gauge("x509_cert_not_before", "Indicates the certificate's not before timestamp", X509_LABELS)
    not_after = gauge("x509_cert_not_after", "Indicates the certificate's not after timestamp", X509_LABELS)
    expired = gauge("x509_cert_expired", "Indicates if the certificate is expired", X509_LABELS)
    chain = gauge("certplane_chain_earliest_not_after",
                  "The earliest not after timestamp over the leaf and its served chain (the leaf's when the "
                  "inventory has no chain expiry)", CERT_LABELS)
    renewal = gauge("certplane_renewal_time", "When certplane renews the certificate (the next `pulumi up` after it)",
                    CERT_LABELS)
    overdue = gauge("certplane_renewal_overdue",
                    "1 when the certificate is past its renewal time by more than the grace (--grace-days)",
                    CERT_LABELS)
    info = InfoMetricFamily("certplane_certificate", "What the inventory says about the certificate",
                            labels=list(INFO_LABELS))
    grace = dt.timedelta(days=grace_days)
    for cert in certs:
        labels = _cert_labels(stack, cert)
        x509_labels = [*labels, serial_number(cert.serial), name_attribute(cert.issuer_dn, NameOID.COMMON_NAME),
                       name_attribute(cert.issuer_dn, NameOID.ORGANIZATION_NAME)]
        if cert.not_before:
            not_before.add_metric(x509_labels, _ts(cert.not_before))
        not_after.add_metric(x509_labels, _ts(cert.not_after))
        expired.add_metric(x509_labels, 1.0 if now > cert.not_after else 0.0)
        chain.add_metric(labels, _ts(chain_earliest_not_after(cert)))
        if cert.renewal_time:
            renewal.add_metric(labels, _ts(cert.renewal_time))
            overdue.add_metric(labels, 1.0 if now > cert.renewal_time + grace else 0.0)
        info.add_metric([stack, cert.name], {
            "domains": ",".join(cert.domains), "targets": ",".join(cert.targets),
            "key_algorithm": cert.key_algorithm, "fingerprint_sha256": cert.fingerprint_sha256})
    out += [not_before, not_after, expired, chain, renewal, overdue, info]

    if snap.probes or snap.observations:
        out += _probe_families(snap, {c.name: c for c in certs})
    return [family for family in out if family.samples]  # no HELP/TYPE for what has no series


def _probe_families(snap: Snapshot, by_name: dict[str, Certificate]) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    success = GaugeMetricFamily("probe_success", "Displays whether or not the probe was a success (TLS handshake)",
                                labels=list(PROBE_LABELS))
    duration = GaugeMetricFamily("probe_duration_seconds", "Returns how long the probe took to complete in seconds",
                                 labels=list(PROBE_LABELS))
    earliest = GaugeMetricFamily("probe_ssl_earliest_cert_expiry",
                                 "Returns earliest SSL cert expiry in unixtime (over the chain the endpoint serves)",
                                 labels=list(PROBE_LABELS))
    serves = GaugeMetricFamily("certplane_binding_serves_managed",
                               "1 when the endpoint or target serves the inventory's certificate (SHA-256 "
                               "fingerprint), 0 when it serves another or none", labels=list(BINDING_LABELS))
    readable = GaugeMetricFamily("certplane_target_read_success",
                                 "1 when the target (load balancer, CDN, directory) could be asked what it holds",
                                 labels=list(TARGET_LABELS))
    seen: set[tuple[str, ...]] = set()
    for result in snap.probes:
        cert = by_name.get(result.certificate)
        if cert is None:
            continue
        ep = result.endpoint
        host = f"[{ep.host}]" if ":" in ep.host else ep.host
        labels = [snap.stack, cert.name, ep.target or "", f"{host}:{ep.port}", ep.server_name or "", cert.owner,
                  cert.tags.get("env", "")]
        if tuple(labels) in seen:  # the same endpoint twice for one certificate: one series
            continue
        seen.add(tuple(labels))
        success.add_metric(labels, 0.0 if result.error else 1.0)
        duration.add_metric(labels, round(result.seconds, 6))
        if result.chain:
            earliest.add_metric(labels, min(c.not_valid_after_utc.timestamp() for c in result.chain))
            if cert.fingerprint_sha256:
                served = fingerprint_sha256(result.chain[0])
                serves.add_metric([*labels, "tls"], 1.0 if same_fingerprint(served, cert.fingerprint_sha256) else 0.0)
    for answer in snap.observations:
        cert = by_name.get(answer.certificate)
        if cert is None:
            continue
        place = answer.placement
        owner, env = cert.owner, cert.tags.get("env", "")
        readable.add_metric([snap.stack, cert.name, place.target, place.type, owner, env], 0.0 if answer.error else 1.0)
        for where, fingerprint in sorted(answer.seen.items()):
            if not cert.fingerprint_sha256:
                continue  # nothing to compare with
            label = place.label if where == DEFAULT else f"{place.label} {where}"
            held = fingerprint is not None and same_fingerprint(fingerprint, cert.fingerprint_sha256)
            serves.add_metric([snap.stack, cert.name, place.target, label, "" if where == DEFAULT else where, owner,
                               env, place.type], 1.0 if held else 0.0)
    return [success, duration, earliest, serves, readable]


class ReadingCollector:
    """A prometheus_client collector over whatever `read()` returns at scrape time."""

    def __init__(self, read: Callable[[], Reading], grace_days: float) -> None:
        self._read = read
        self._grace_days = grace_days

    def collect(self) -> Iterator[Metric]:
        yield from families(self._read(), self._grace_days)


def registry_for(read: Callable[[], Reading], grace_days: float) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)  # our own: never the process-global one
    registry.register(ReadingCollector(read, grace_days))
    return registry


def render_text(reading: Reading, grace_days: float = DEFAULT_GRACE_DAYS) -> bytes:
    """The Prometheus text format (0.0.4), which node_exporter's textfile collector reads."""
    from prometheus_client import generate_latest

    return bytes(generate_latest(registry_for(lambda: reading, grace_days)))


def write_textfile(path: Path, data: bytes) -> None:
    """Temp file in the same directory (a dot name node_exporter skips), fsync, rename over `path`."""
    if path.is_dir():
        raise CliError(f"--textfile {path}: is a directory; name the .prom file to write")
    if not path.parent.is_dir():
        raise CliError(f"--textfile {path}: directory {path.parent} does not exist")
    try:
        atomic_write(path, data, TEXTFILE_MODE)
    except OSError as err:
        raise CliError(f"--textfile {path}: {err.strerror or err}") from None


# --- serving /metrics --------------------------------------------------------------------------------------------

class SnapshotCache:
    """The last reading, refreshed by the scrape that finds it older than `ttl` seconds. One refresh at a time;
    while one runs, other scrapes are served the previous reading. A failed refresh keeps the last good snapshot
    (marked not ok) and is retried after `ttl` too, so a broken stack is not hammered."""

    def __init__(self, take: Callable[[], Snapshot], ttl: float, stack_hint: str,
                 log: Callable[[str], None] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._take = take
        self._ttl = ttl
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reading: Reading | None = None
        self._stack_hint = stack_hint
        self._at = float("-inf")

    def _fresh(self) -> bool:
        return self._reading is not None and self._monotonic() - self._at < self._ttl

    def get(self) -> Reading:
        if self._fresh():
            assert self._reading is not None
            return self._reading
        previous = self._reading
        got = self._lock.acquire(timeout=FIRST_READ_WAIT) if previous is None else self._lock.acquire(blocking=False)
        if not got:
            return previous or Reading(None, False, self._stack_hint, "the first read is still running")
        try:
            if self._fresh():  # another scrape refreshed it while this one waited
                assert self._reading is not None
                return self._reading
            self._reading = self._refresh(previous)
            self._at = self._monotonic()
            return self._reading
        finally:
            self._lock.release()

    def _refresh(self, previous: Reading | None) -> Reading:
        last_good = previous.snapshot if previous else None
        stack = last_good.stack if last_good else self._stack_hint
        try:
            snap = self._take()
        except CliError as err:
            error = str(err)
        except Exception as err:  # noqa: BLE001 - a scrape answers with read_success 0, never a traceback
            error = f"{type(err).__name__}: {err}"
        else:
            if previous is not None and not previous.ok:
                count = count_certificates(snap.certificates)
                self._log(f"certplane metrics: the inventory reads again ({count})")
            return Reading(snap, True, snap.stack)
        if previous is None or previous.ok or previous.error != error:
            self._log(f"certplane metrics: cannot read the inventory: {error}")
        return Reading(last_good, False, stack, error)


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT  # a client that never finishes its request does not keep a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # no access log on stderr: Prometheus scrapes every few seconds


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16


class _Server6(_Server):
    address_family = socket.AF_INET6


def wsgi_app(registry: Any) -> Callable[..., Iterable[bytes]]:
    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app(registry)
    slots = threading.BoundedSemaphore(MAX_CONCURRENT_SCRAPES)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            if not slots.acquire(blocking=False):
                start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8"),
                                                           ("Retry-After", "5")])
                return [b"too many scrapes at once\n"]
            try:
                return list(metrics_app(environ, start_response))
            finally:
                slots.release()
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [b"<!doctype html><title>certplane metrics</title>"
                    b"<p>certplane metrics: <a href=\"/metrics\">/metrics</a></p>\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are at /metrics\n"]

    return app


def make_server(listen: str, app: Callable[..., Iterable[bytes]]) -> WSGIServer:
    try:
        address = parse_address(listen)
    except InvalidInputError:
        raise CliError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9793 or [::1]:9793") from None
    server_class = _Server6 if ":" in address.host else _Server
    try:
        server = server_class((address.host, address.port), _Handler)
    except OSError as err:
        raise CliError(f"--listen {listen}: cannot listen there ({err.strerror or err})") from None
    server.set_app(app)
    return server


def serve(listen: str, cache: SnapshotCache, grace_days: float) -> int:
    server = make_server(listen, wsgi_app(registry_for(cache.get, grace_days)))
    reading = cache.get()  # read once before the first scrape: a broken inventory shows at once
    certs = len(reading.snapshot.certificates) if reading.snapshot else 0
    state = plural(certs, "certificate") if reading.ok else "inventory not readable yet"
    print(f"certplane metrics: serving http://{listen}/metrics (stack {reading.stack}, {state})",
          file=sys.stderr, flush=True)

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return EXIT_OK


# --- the command -------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, source: Source) -> int:
    if args.grace_days < 0:
        raise CliError("--grace-days must not be negative")
    if args.probe_timeout <= 0:
        raise CliError("--probe-timeout must be a positive number of seconds")
    if args.probe_workers < 1:
        raise CliError("--probe-workers must be at least 1")
    if not 0 <= args.cache_seconds <= MAX_CACHE_SECONDS:
        raise CliError(f"--cache-seconds must be between 0 and {MAX_CACHE_SECONDS:g}")
    for spec in args.endpoint or []:
        parse_endpoint_spec(spec)  # a typo fails now, not at every scrape
    options = Options(probing=args.probe, endpoints=tuple(args.endpoint or ()), probe_timeout=args.probe_timeout,
                      probe_workers=args.probe_workers, grace_days=args.grace_days)
    if args.listen:
        hint = source.stack or (f"file:{Path(source.inventory_file).name}" if source.inventory_file else "")
        cache = SnapshotCache(lambda: take_snapshot(source, options), args.cache_seconds, hint)
        return serve(args.listen, cache, args.grace_days)
    snap = take_snapshot(source, options)  # a read that fails is exit 3, and an existing textfile stays as it was
    data = render_text(Reading(snap, True, snap.stack), args.grace_days)
    if args.textfile:
        path = Path(args.textfile)
        write_textfile(path, data)
        if not path.name.endswith(".prom"):
            print(f"certplane: note: node_exporter's textfile collector only reads *.prom files, not {path.name}",
                  file=sys.stderr)
        return EXIT_OK
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--textfile", metavar="PATH",
                     help="write the metrics to this file for node_exporter's textfile collector (atomically: a "
                          "temp file, then a rename; mode 0644), e.g. /var/lib/prometheus/node-exporter/certplane.prom")
    out.add_argument("--listen", metavar="HOST:PORT",
                     help="serve /metrics on this address until stopped (SIGTERM or Ctrl-C), reading the "
                          "inventory again when a scrape finds it older than --cache-seconds")
    parser.add_argument("--cache-seconds", type=float, default=DEFAULT_CACHE_SECONDS, metavar="SECONDS",
                        help=f"with --listen: how long one read serves scrapes (default: {DEFAULT_CACHE_SECONDS:g})")
    parser.add_argument("--grace-days", type=float, default=DEFAULT_GRACE_DAYS, metavar="DAYS",
                        help="how long past its renewal time a certificate may go before certplane_renewal_overdue "
                             f"is 1 (default: {DEFAULT_GRACE_DAYS:g}, as for check)")
    probe.add_probe_arguments(
        parser, probe_help="TLS-handshake every endpoint in the inventory (probe_success, "
                           "probe_ssl_earliest_cert_expiry, certplane_binding_serves_managed) and ask every other "
                           "target what it holds",
        endpoint_help="also probe this endpoint for certificate NAME (repeatable; implies probing endpoints)")
