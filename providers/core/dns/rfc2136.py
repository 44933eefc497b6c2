"""RFC 2136 dynamic DNS updates signed with TSIG (BIND, Knot, PowerDNS, Windows DNS)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
from pydantic import field_validator, model_validator

from ..errors import InvalidInputError
from ..net import parse_address
from ..validation import HostOptionalPort
from ..validation import SECRET
from .base import DnsError, DnsPlugin, DnsSettings, Port, Timeout, Ttl

NAME = "rfc2136"
ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256, "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512, "hmac-sha1": dns.tsig.HMAC_SHA1, "hmac-md5": dns.tsig.HMAC_MD5,
}


class Rfc2136Settings(DnsSettings):
    """nameserver (HOST or HOST:PORT), port (overrides the nameserver's), zone (found via SOA when left
    out), tsig_key_name + tsig_secret (base64), tsig_algorithm (hmac-sha256), ttl (60), timeout (10 s)."""

    nameserver: HostOptionalPort
    port: Port | None = None
    zone: str | None = None
    tsig_key_name: str | None = None
    tsig_secret: Annotated[str | None, SECRET] = None
    tsig_algorithm: str = "hmac-sha256"
    ttl: Ttl = 60
    timeout: Timeout = 10

    @field_validator("tsig_secret")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError("", "must be base64") from None
        return value

    @field_validator("tsig_algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        algorithm = value.lower().rstrip(".")
        if algorithm not in ALGORITHMS:
            raise InvalidInputError("", f"unknown TSIG algorithm {value!r} (known: {', '.join(ALGORITHMS)})")
        return algorithm

    @model_validator(mode="after")
    def _both(self) -> Rfc2136Settings:
        if bool(self.tsig_key_name) != bool(self.tsig_secret):
            raise InvalidInputError("tsig_secret" if self.tsig_key_name else "tsig_key_name",
                                    "give both tsig_key_name and tsig_secret, or neither")
        return self


@dataclass(frozen=True)
class Rfc2136Provider:
    nameserver: str
    port: int
    zone: str | None
    tsig_key_name: str | None
    tsig_secret: str | None
    tsig_algorithm: str = "hmac-sha256"
    ttl: int = 60
    timeout: float = 10.0
    name: str = NAME

    def __repr__(self) -> str:  # the TSIG secret stays out of any trace
        return f"Rfc2136Provider({self.nameserver}:{self.port}, zone={self.zone})"

    def _zone_for(self, fqdn: str) -> dns.name.Name:
        """The configured zone, or the closest enclosing zone the nameserver has an SOA for."""
        if self.zone:
            return dns.name.from_text(self.zone)
        name = dns.name.from_text(fqdn)
        while len(name.labels) > 1:
            query = dns.message.make_query(name, dns.rdatatype.SOA)
            try:
                response = dns.query.tcp(query, self.nameserver, port=self.port, timeout=self.timeout)
            except (dns.exception.DNSException, OSError) as err:
                raise DnsError(f"{NAME}: cannot query {self.nameserver}:{self.port} for the zone of {fqdn}: {err}") from None
            if any(rr.rdtype == dns.rdatatype.SOA and rr.name == name for rr in response.answer):
                return name
            name = name.parent()
        raise DnsError(f"{NAME}: {self.nameserver}:{self.port} is authoritative for no zone containing {fqdn}")

    def _update(self, fqdn: str, value: str, *, add: bool) -> None:
        zone = self._zone_for(fqdn)
        update = dns.update.UpdateMessage(zone)
        if self.tsig_key_name and self.tsig_secret:
            keyring = dns.tsigkeyring.from_text({self.tsig_key_name: self.tsig_secret})
            update.use_tsig(keyring, keyname=self.tsig_key_name, algorithm=ALGORITHMS[self.tsig_algorithm])
        record = dns.name.from_text(fqdn)
        if add:
            update.add(record, self.ttl, dns.rdatatype.TXT, f'"{value}"')
        else:
            update.delete(record, dns.rdatatype.TXT, f'"{value}"')
        try:
            response = dns.query.tcp(update, self.nameserver, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerError as err:
            raise DnsError(f"{NAME}: {self.nameserver}:{self.port} rejected the TSIG signature: {err}") from None
        except (dns.exception.DNSException, OSError) as err:
            raise DnsError(f"{NAME}: update of {fqdn} at {self.nameserver}:{self.port} failed: {err}") from None
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            raise DnsError(f"{NAME}: {self.nameserver}:{self.port} refused the update of {fqdn} in zone "
                           f"{zone.to_text(omit_final_dot=True)}: {dns.rcode.to_text(rcode)}")

    def present(self, fqdn: str, value: str) -> None:
        self._update(fqdn, value, add=True)

    def cleanup(self, fqdn: str, value: str) -> None:
        self._update(fqdn, value, add=False)


def _build(settings: Rfc2136Settings) -> Rfc2136Provider:
    address = parse_address(settings.nameserver, default_port=53)
    return Rfc2136Provider(
        nameserver=address.host, port=settings.port or address.port,
        zone=settings.zone.rstrip(".") if settings.zone else None, tsig_key_name=settings.tsig_key_name,
        tsig_secret=settings.tsig_secret, tsig_algorithm=settings.tsig_algorithm, ttl=settings.ttl,
        timeout=float(settings.timeout))


PLUGIN = DnsPlugin(NAME, Rfc2136Settings, _build)
