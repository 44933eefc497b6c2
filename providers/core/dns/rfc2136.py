"""RFC 2136 dynamic DNS updates signed with TSIG (BIND, Knot, PowerDNS, Windows DNS)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from ..errors import InvalidInputError
from .base import DnsError, host_port, int_setting, setting

NAME = "rfc2136"
ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256, "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512, "hmac-sha1": dns.tsig.HMAC_SHA1, "hmac-md5": dns.tsig.HMAC_MD5,
}


@dataclass(frozen=True)
class Rfc2136Provider:
    """Settings: nameserver (host or host:port), port (53), zone (found via SOA when omitted),
    tsig_key_name, tsig_secret (base64), tsig_algorithm (hmac-sha256), ttl (60), timeout (10 s)."""

    nameserver: str
    port: int
    zone: str | None
    tsig_key_name: str | None
    tsig_secret: str | None
    tsig_algorithm: str = "hmac-sha256"
    ttl: int = 60
    timeout: float = 10.0
    name: str = NAME

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Rfc2136Provider:
        host, port = host_port(str(setting(settings, "nameserver", NAME, required=True)), "dns.nameserver", NAME)
        port = int_setting(settings, "port", NAME, port)
        key_name, secret = settings.get("tsig_key_name") or None, settings.get("tsig_secret") or None
        if bool(key_name) != bool(secret):
            raise InvalidInputError("dns.tsig_secret" if key_name else "dns.tsig_key_name",
                                    f"{NAME}: give both tsig_key_name and tsig_secret, or neither")
        if secret:
            try:
                base64.b64decode(str(secret), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError("dns.tsig_secret", f"{NAME}: tsig_secret must be base64") from None
        algorithm = str(settings.get("tsig_algorithm") or "hmac-sha256").lower().rstrip(".")
        if algorithm not in ALGORITHMS:
            raise InvalidInputError("dns.tsig_algorithm",
                                    f"{NAME}: unknown TSIG algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
        zone = settings.get("zone") or None
        return cls(nameserver=host, port=port, zone=str(zone).rstrip(".") if zone else None,
                   tsig_key_name=str(key_name) if key_name else None, tsig_secret=str(secret) if secret else None,
                   tsig_algorithm=algorithm, ttl=int_setting(settings, "ttl", NAME, 60, high=86400),
                   timeout=float(int_setting(settings, "timeout", NAME, 10, high=300)))

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
