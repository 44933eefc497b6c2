"""AWS Route 53 (or moto via endpoint_url). TXT values are merged so a wildcard + apex pair can coexist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import model_validator

from .. import aws
from ..aws import AwsAccess
from ..errors import InvalidInputError
from ..validation import SECRET
from .base import DnsError, DnsPlugin, DnsSettings, Ttl, normalize

NAME = "route53"


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

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as err:
            info = err.response.get("Error", {})
            raise DnsError(f"{NAME}: {what} failed: {info.get('Code')}: {info.get('Message')}") from None
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

    def _change(self, client: Any, zone_id: str, fqdn: str, action: str, values: list[str], ttl: int) -> None:
        change = {"Action": action, "ResourceRecordSet": {  # DELETE must match the stored set, TTL included
            "Name": fqdn.rstrip(".") + ".", "Type": "TXT", "TTL": ttl,
            "ResourceRecords": [{"Value": v} for v in values]}}
        self._call(f"{action} TXT {fqdn}", client.change_resource_record_sets, HostedZoneId=zone_id,
                   ChangeBatch={"Comment": "certplane ACME DNS-01", "Changes": [change]})

    def _record(self, fqdn: str) -> tuple[Any, str, list[str], int]:
        """(client, zone id, the TXT values now at `fqdn`, their TTL): a record set is replaced as a whole."""
        client = self._client()
        zone_id = self._zone_id(client)
        values, ttl = self._values(client, zone_id, fqdn)
        return client, zone_id, values, ttl

    def present(self, fqdn: str, value: str) -> None:
        client, zone_id, values, _ttl = self._record(fqdn)
        if f'"{value}"' not in values:
            self._change(client, zone_id, fqdn, "UPSERT", [*values, f'"{value}"'], self.ttl)

    def cleanup(self, fqdn: str, value: str) -> None:
        client, zone_id, values, ttl = self._record(fqdn)
        remaining = [v for v in values if v != f'"{value}"']
        if remaining == values:
            return
        if remaining:
            self._change(client, zone_id, fqdn, "UPSERT", remaining, ttl)
        else:
            self._change(client, zone_id, fqdn, "DELETE", values, ttl)


def _build(settings: Route53Settings) -> Route53Provider:
    return Route53Provider(
        hosted_zone_id=settings.hosted_zone_id.split("/")[-1] if settings.hosted_zone_id else None,
        zone=normalize(settings.zone) if settings.zone else None,
        access=AwsAccess(region=settings.region, endpoint_url=settings.endpoint_url, profile=settings.profile,
                         credentials_file=settings.credentials_file), aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key, ttl=settings.ttl)


PLUGIN = DnsPlugin(NAME, Route53Settings, _build)
