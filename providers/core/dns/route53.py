"""AWS Route 53 (or moto via endpoint_url). TXT values are merged so a wildcard + apex pair can coexist.

A record set is replaced as a whole (read, merge, write), so parallel orders writing one name must not lose each
other's values. Within a process a lock per (zone, name) serializes them. Across processes every write is
conditional on the values it read: CREATE when there were none, DELETE of the exact old set + CREATE of the new
one in one (atomic) change batch, DELETE of the exact set when the last value goes. Route 53 refuses a stale
batch with InvalidChangeBatch; the set is then read again and the change retried, a bounded number of times.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import model_validator

from .. import aws
from ..aws import AwsAccess
from ..errors import InvalidInputError
from ..validation import SECRET
from .base import DnsError, DnsPlugin, DnsSettings, Ttl, normalize

NAME = "route53"
ATTEMPTS = 8  # conditional writes of one change before giving up on a name other writers keep changing
CONFLICT_CODES = frozenset({"InvalidChangeBatch", "PriorRequestNotComplete"})

_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(zone_id: str, fqdn: str) -> threading.Lock:
    """The process-wide lock of one record set (a name's TXT values in one hosted zone)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((zone_id, normalize(fqdn)), threading.Lock())


class _Rejected(DnsError):
    """Route 53 refused a conditional change batch with a code that re-reading the set may resolve."""


class Route53Settings(DnsSettings, AwsAccess):
    """hosted_zone_id or zone (a name looked up with ListHostedZonesByName), ttl (60); AWS access as every AWS
    plug-in (core/aws.py), or aws_access_key_id + aws_secret_access_key (secret) for a zone in another account."""

    region: str = "us-east-1"
    hosted_zone_id: str | None = None
    zone: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: Annotated[str | None, SECRET] = None
    ttl: Ttl = 60

    @model_validator(mode="after")
    def _zone_and_keys(self) -> Route53Settings:
        if not self.hosted_zone_id and not self.zone:
            raise InvalidInputError("hosted_zone_id", "give hosted_zone_id or zone")
        if bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            raise InvalidInputError("aws_secret_access_key" if self.aws_access_key_id else "aws_access_key_id",
                                    "give both aws_access_key_id and aws_secret_access_key, or neither")
        return self


@dataclass(frozen=True)
class Route53Provider:
    hosted_zone_id: str | None
    zone: str | None
    access: AwsAccess = field(default_factory=lambda: AwsAccess(region="us-east-1"))
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    ttl: int = 60
    name: str = NAME

    def _client(self) -> Any:
        keys = ({"aws_access_key_id": self.aws_access_key_id, "aws_secret_access_key": self.aws_secret_access_key}
                if self.aws_access_key_id else {})
        try:
            return aws.client(self.access, "route53", **keys)
        except Exception as err:  # noqa: BLE001 - a profile that does not exist, a broken credentials file
            raise DnsError(f"{NAME}: {aws.describe_error(err)}") from None

    def _call(self, what: str, fn: Any, *, conflicts: bool = False, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as err:
            info = err.response.get("Error", {})
            message = f"{NAME}: {what} failed: {info.get('Code')}: {info.get('Message')}"
            if conflicts and info.get("Code") in CONFLICT_CODES:
                raise _Rejected(message) from None
            raise DnsError(message) from None
        except BotoCoreError as err:
            raise DnsError(f"{NAME}: {what} failed: {aws.describe_error(err)}") from None

    def _zone_id(self, client: Any) -> str:
        if self.hosted_zone_id:
            return self.hosted_zone_id
        assert self.zone is not None
        found = self._call("ListHostedZonesByName", client.list_hosted_zones_by_name, DNSName=self.zone,
                           MaxItems="1")
        for zone in found.get("HostedZones", []):
            if normalize(zone["Name"]) == self.zone:
                return str(zone["Id"]).split("/")[-1]
        raise DnsError(f"{NAME}: no hosted zone named {self.zone}")

    def _values(self, client: Any, zone_id: str, fqdn: str) -> tuple[list[str], int]:
        found = self._call("ListResourceRecordSets", client.list_resource_record_sets, HostedZoneId=zone_id,
                           StartRecordName=fqdn, StartRecordType="TXT", MaxItems="1")
        for rrset in found.get("ResourceRecordSets", []):
            if normalize(rrset["Name"]) == normalize(fqdn) and rrset["Type"] == "TXT":
                return [r["Value"] for r in rrset.get("ResourceRecords", [])], int(rrset.get("TTL", self.ttl))
        return [], self.ttl

    def _change(self, client: Any, zone_id: str, fqdn: str, changes: list[tuple[str, list[str], int]], *,
                conflicts: bool) -> None:
        """One change batch (atomic: all of it or nothing). DELETE must match the stored set, TTL included."""
        batch = [{"Action": action, "ResourceRecordSet": {
            "Name": fqdn.rstrip(".") + ".", "Type": "TXT", "TTL": ttl,
            "ResourceRecords": [{"Value": v} for v in values]}} for action, values, ttl in changes]
        what = "+".join(action for action, _values, _ttl in changes)
        self._call(f"{what} TXT {fqdn}", client.change_resource_record_sets, conflicts=conflicts,
                   HostedZoneId=zone_id, ChangeBatch={"Comment": "certplane ACME DNS-01", "Changes": batch})

    def _replace(self, client: Any, zone_id: str, fqdn: str, old: list[str], old_ttl: int, new: list[str], *,
                 conditional: bool) -> None:
        """Write `new` in place of `old`: conditionally (refused if the set is no longer `old`), or plainly."""
        if not conditional:
            plain = ("UPSERT", new, self.ttl) if new else ("DELETE", old, old_ttl)
            self._change(client, zone_id, fqdn, [plain], conflicts=False)
            return
        changes: list[tuple[str, list[str], int]] = []
        if old:
            changes.append(("DELETE", old, old_ttl))
        if new:
            changes.append(("CREATE", new, self.ttl))
        self._change(client, zone_id, fqdn, changes, conflicts=True)

    def _update(self, fqdn: str, value: str, *, add: bool) -> None:
        quoted = f'"{value}"'
        client = self._client()
        zone_id = self._zone_id(client)
        with _lock_for(zone_id, fqdn):  # this process's other orders for the name wait their turn
            values, ttl = self._values(client, zone_id, fqdn)
            conditional = True
            for attempt in range(1, ATTEMPTS + 1):
                wanted = ([*values, quoted] if quoted not in values else values) if add \
                    else [v for v in values if v != quoted]
                if wanted == values:
                    return  # already as asked: presenting twice, cleaning up a missing value
                try:
                    self._replace(client, zone_id, fqdn, values, ttl, wanted, conditional=conditional)
                    return
                except _Rejected:
                    now, now_ttl = self._values(client, zone_id, fqdn)
                    if (now, now_ttl) == (values, ttl):
                        # Nothing changed under us: not a conflict that re-reading resolves (or an emulator that
                        # refuses what Route 53 accepts). Write it plainly once; what Route 53 says then is the
                        # error to report.
                        conditional = False
                    values, ttl = now, now_ttl
                    time.sleep(random.uniform(0.02, 0.1) * attempt)  # other processes: do not move in lockstep
        raise DnsError(f"{NAME}: TXT {fqdn} kept changing under concurrent writers; gave up after {ATTEMPTS} "
                       "conditional writes")

    def present(self, fqdn: str, value: str) -> None:
        self._update(fqdn, value, add=True)

    def cleanup(self, fqdn: str, value: str) -> None:
        self._update(fqdn, value, add=False)


def _build(settings: Route53Settings) -> Route53Provider:
    return Route53Provider(
        hosted_zone_id=settings.hosted_zone_id.split("/")[-1] if settings.hosted_zone_id else None,
        zone=normalize(settings.zone) if settings.zone else None,
        access=AwsAccess(region=settings.region, endpoint_url=settings.endpoint_url, profile=settings.profile,
                         credentials_file=settings.credentials_file), aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key, ttl=settings.ttl)


PLUGIN = DnsPlugin(NAME, Route53Settings, _build)
