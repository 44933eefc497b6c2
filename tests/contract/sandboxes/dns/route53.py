from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from tests.contract.sandboxes.dns.common import DnsBox


@contextmanager
def open(request: Any) -> Iterator[DnsBox]:  # noqa: A001
    url = request.getfixturevalue("moto_url")
    r53 = boto3.client("route53", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    zone = f"c{uuid.uuid4().hex[:8]}.example.test"
    zone_id = r53.create_hosted_zone(Name=zone, CallerReference=zone)["HostedZone"]["Id"].split("/")[-1]

    def values(fqdn: str) -> list[str]:
        sets = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        return sorted(r["Value"].strip('"') for s in sets if s["Name"] == fqdn.rstrip(".") + "." and s["Type"] == "TXT"
                      for r in s["ResourceRecords"])

    yield DnsBox(settings={"provider": "route53", "hosted_zone_id": zone_id, "endpoint_url": url,
                           "aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
                 zone=zone, values=values)
