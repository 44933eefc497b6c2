"""The inventory as the CLI reads it: a stack's `inventory` output (or a JSON file), typed.

`days_remaining` in the stack output was computed at `pulumi up` time; commands recompute it from the expiry and
the clock (which honours $CERTPLANE_NOW), so a stack not updated for weeks reads right.

A certificate expires when the first certificate of its served chain does: `not_after` is the leaf's,
`chain_not_after` the earliest over the leaf and its chain, `chain_earliest_subject` whose it is. Inventories
written before those fields read as before (the chain's expiry is the leaf's, its subject unknown).

A private CA is listed too, one entry per level (`kind` "ca", named `<issuer>/<level>`, e.g. `corp-ca/root`),
read from the stack's `issuers` output: a CA that expires takes every certificate under it down, so `check`,
the inventory, the report and the metrics show its own expiry beside the leaves'.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from providers.core import clock
from providers.core.errors import InvalidInputError
from providers.core.net import parse_address

from . import CliError


@dataclass(frozen=True)
class Endpoint:
    """A live TLS endpoint that should serve a certificate: connect to host:port, send server_name as SNI."""

    host: str
    port: int
    server_name: str | None = None
    target: str | None = None

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        sni = f" ({self.server_name})" if self.server_name and self.server_name != self.host else ""
        return f"{host}:{self.port}{sni}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "port": self.port, "server_name": self.server_name}
        if self.target:
            out["target"] = self.target
        return out


@dataclass(frozen=True)
class Placement:
    """A binding on a target that does not terminate TLS itself (a load balancer, a CDN, a certificate
    service, a directory): what is needed to ask that target, through its own API, what it holds."""

    binding_id: str
    target: str
    type: str
    settings: dict[str, Any]
    server_names: tuple[str, ...] = ()
    sni: bool = False
    live: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.target} ({self.type})"


@dataclass(frozen=True)
class Certificate:
    name: str
    domains: tuple[str, ...]
    issuer: str
    issuer_dn: str
    serial: str
    not_before: dt.datetime | None
    not_after: dt.datetime
    renewal_time: dt.datetime | None
    fingerprint_sha256: str
    key_algorithm: str
    targets: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    endpoints: tuple[Endpoint, ...] = ()
    placements: tuple[Placement, ...] = ()
    chain_not_after: dt.datetime | None = None  # the earliest not_after over the leaf and its served chain
    chain_earliest_subject: str | None = None  # the subject of that certificate, when known
    kind: str = "certificate"  # or CA_KIND: a private CA's certificate (one level of its hierarchy)
    served_sha256: str | None = None  # the leaf and chain an endpoint should send, checked at `up` (digest.py)

    @property
    def owner(self) -> str:
        return self.tags.get("owner") or self.tags.get("team") or ""

    @property
    def expires(self) -> dt.datetime:
        """When what is served stops working: the earliest not_after of the leaf and its chain."""
        return min(self.not_after, self.chain_not_after) if self.chain_not_after else self.not_after

    @property
    def chain_expires_first(self) -> bool:
        """A certificate of the served chain (an intermediate) expires before the leaf."""
        return self.chain_not_after is not None and self.chain_not_after < self.not_after

    def days_left(self, now: dt.datetime) -> float:
        return clock.days_between(now, self.expires)


CA_KIND = "ca"


@dataclass(frozen=True)
class Finding:
    """One thing worth telling about a certificate. `message` is a complete line without the name."""

    certificate: str
    level: str  # ok | warning | critical
    code: str
    message: str
    endpoint: str | None = None
    threshold_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "code": self.code, "message": self.message}
        if self.endpoint:
            out["endpoint"] = self.endpoint
        if self.threshold_days is not None:
            out["threshold_days"] = self.threshold_days
        return out


def parse_time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise CliError(f"{where}: missing or not an RFC 3339 time")
    try:
        return clock.parse_rfc3339(value)
    except ValueError:
        raise CliError(f"{where}: {value!r} is not an RFC 3339 time") from None


def parse_endpoint_spec(spec: str) -> tuple[str, Endpoint]:
    """`NAME=HOST:PORT[/SNI]` (HOST may be `[v6]`) -> (certificate name, endpoint)."""
    usage = f"--endpoint {spec!r}: expected NAME=HOST:PORT[/SNI], e.g. www=127.0.0.1:8443/www.example.test"
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise CliError(usage)
    address_text, _, sni = rest.partition("/")
    try:
        address = parse_address(address_text)
    except InvalidInputError:
        raise CliError(usage) from None
    return name, Endpoint(host=address.host, port=address.port, server_name=sni or None, target="--endpoint")


def _endpoints(raw: Any, where: str) -> tuple[Endpoint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CliError(f"{where}: must be a list of {{host, port, server_name}}")
    out = []
    for i, item in enumerate(raw):
        port = item.get("port") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not item.get("host") or not isinstance(port, int) or isinstance(port, bool):
            raise CliError(f"{where}[{i}]: needs a host and an integer port")
        out.append(Endpoint(host=str(item["host"]), port=port, server_name=item.get("server_name") or None,
                            target=item.get("target") or None))
    return tuple(out)


def _placements(raw: Any, where: str) -> tuple[Placement, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CliError(f"{where}: must be a list of {{binding_id, target, type, settings, live}}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k)
                                                 for k in ("binding_id", "target", "type")):
            raise CliError(f"{where}[{i}]: needs a binding_id, a target and a type")
        out.append(Placement(binding_id=item["binding_id"], target=item["target"], type=item["type"],
                             settings=dict(item.get("settings") or {}),
                             server_names=tuple(str(n) for n in item.get("server_names") or ()),
                             sni=bool(item.get("sni")), live=dict(item.get("live") or {})))
    return tuple(out)


def parse_inventory(raw: Any) -> list[Certificate]:
    """The stack output (name -> entry) as typed certificates; a malformed entry fails naming the field."""
    if not isinstance(raw, dict):
        raise CliError("inventory: expected an object of certificate name -> entry")
    certs = []
    for name, entry in raw.items():
        where = f"inventory.{name}"
        if not isinstance(entry, dict):
            raise CliError(f"{where}: expected an object")
        renewal = entry.get("renewal_time")
        not_after = parse_time(entry.get("not_after"), f"{where}.not_after")
        chain = entry.get("chain_not_after")
        subject = entry.get("chain_earliest_subject")
        certs.append(Certificate(
            name=name,
            domains=tuple(str(d) for d in entry.get("domains") or ()),
            issuer=str(entry.get("issuer") or ""),
            issuer_dn=str(entry.get("issuer_dn") or ""),
            serial=str(entry.get("serial") or ""),
            not_before=parse_time(entry["not_before"], f"{where}.not_before") if entry.get("not_before") else None,
            not_after=not_after,
            renewal_time=parse_time(renewal, f"{where}.renewal_time") if renewal else None,
            fingerprint_sha256=str(entry.get("fingerprint_sha256") or ""),
            key_algorithm=str(entry.get("key_algorithm") or ""),
            targets=tuple(str(t) for t in entry.get("targets") or ()),
            tags={str(k): str(v) for k, v in (entry.get("tags") or {}).items()},
            endpoints=_endpoints(entry.get("endpoints"), f"{where}.endpoints"),
            placements=_placements(entry.get("bindings"), f"{where}.bindings"),
            chain_not_after=parse_time(chain, f"{where}.chain_not_after") if chain else not_after,
            chain_earliest_subject=str(subject) if subject else None,
            kind=CA_KIND if entry.get("kind") == CA_KIND else "certificate",
            served_sha256=str(entry["served_sha256"]) if entry.get("served_sha256") else None,
        ))
    return certs


def parse_issuers(raw: Any) -> list[Certificate]:
    """The stack's `issuers` output (issuer name -> trust: `levels`, each with its `cert_pem`) as one entry of kind
    CA_KIND per level, facts read from the PEM itself (it holds no key). Absent or malformed: no CA entries (a
    stack from before the output, or one without a private CA); a level whose PEM does not parse is named."""
    if not isinstance(raw, dict):
        return []
    out = []
    for issuer, trust in sorted(raw.items()):
        levels = trust.get("levels") if isinstance(trust, dict) else None
        for level in levels if isinstance(levels, list) else []:
            if not isinstance(level, dict) or not isinstance(level.get("cert_pem"), str):
                continue
            from providers.core import keys  # (cryptography: imported only when there is a CA to read)
            from providers.core import pem as x509util

            where = f"issuers.{issuer}.{level.get('level') or 'level'}"
            try:
                cert = x509util.load_certificates(level["cert_pem"])[0]
                algorithm = keys.spec_of(cert.public_key()).label  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - any unreadable PEM is the same one line
                raise CliError(f"{where}.cert_pem: not a PEM certificate") from None
            out.append(Certificate(
                name=f"{issuer}/{level.get('level') or 'ca'}", domains=(), issuer=str(issuer),
                issuer_dn=cert.issuer.rfc4514_string(), serial=x509util.serial_hex(cert),
                not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, renewal_time=None,
                fingerprint_sha256=x509util.fingerprint_sha256(cert), key_algorithm=algorithm,
                chain_not_after=cert.not_valid_after_utc, chain_earliest_subject=cert.subject.rfc4514_string(),
                kind=CA_KIND))
    return out
