"""Route 53 TXT writes for one name from parallel orders (moto): no value is lost within a process (a lock per
zone and name), and a change batch another process made stale is retried after re-reading, a bounded number of
times."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from providers.core import dns as dns_solvers
from providers.core.dns import route53
from providers.core.dns.base import DnsError

NAME = "_acme-challenge.race.example.test"


def _route53(moto_url: str) -> Any:
    return boto3.client("route53", region_name="us-east-1", endpoint_url=moto_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _records(r53: Any, zone_id: str, name: str = NAME) -> list[str]:
    sets = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted(r["Value"] for s in sets if s["Name"] == name + "." and s["Type"] == "TXT"
                  for r in s["ResourceRecords"])


@pytest.fixture()
def zone(moto: Any) -> tuple[str, str]:
    r53 = _route53(moto.endpoint_url)
    created = r53.create_hosted_zone(Name="race.example.test", CallerReference=str(time.time()))
    return created["HostedZone"]["Id"].split("/")[-1], moto.endpoint_url


def settings(zone_id: str, moto_url: str) -> dict[str, Any]:
    return {"provider": "route53", "hosted_zone_id": zone_id, "endpoint_url": moto_url,
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def run_all(calls: list[Any]) -> list[BaseException]:
    """Run every call on its own thread, all released at once; the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        barrier.wait(timeout=10)
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


def test_parallel_present_and_cleanup_of_one_name_lose_no_value(zone):
    zone_id, moto_url = zone
    r53 = _route53(moto_url)
    values = [f"value-{i:02d}" for i in range(12)]
    # one provider per order, as Pulumi builds them: nothing shared but the process
    providers = [dns_solvers.make_provider(settings(zone_id, moto_url)) for _ in values]
    assert run_all([lambda p=p, v=v: p.present(NAME, v) for p, v in zip(providers, values)]) == []
    assert _records(r53, zone_id) == sorted(f'"{v}"' for v in values)
    keep = values[0]
    assert run_all([lambda p=p, v=v: p.cleanup(NAME, v) for p, v in zip(providers, values) if v != keep]) == []
    assert _records(r53, zone_id) == [f'"{keep}"']
    providers[0].cleanup(NAME, keep)
    assert _records(r53, zone_id) == []


class Racing:
    """A Route 53 client where another process changes the record set just before each of the first `races`
    change batches; Route 53 then refuses the batch (its DELETE no longer matches, or its CREATE finds a set)."""

    def __init__(self, inner: Any, other: Any, zone_id: str, races: int, tag: str) -> None:
        self.inner, self.other, self.zone_id, self.races, self.tag = inner, other, zone_id, races, tag
        self.batches: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def change_resource_record_sets(self, **kwargs: Any) -> Any:
        self.batches.append([c["Action"] for c in kwargs["ChangeBatch"]["Changes"]])
        if len(self.batches) <= self.races:
            current = _records(self.other, self.zone_id)
            theirs = f'"{self.tag}-{len(self.batches)}"'
            self.other.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [{
                "Action": "UPSERT", "ResourceRecordSet": {"Name": NAME + ".", "Type": "TXT", "TTL": 60,
                                                          "ResourceRecords": [{"Value": v} for v in
                                                                              [*current, theirs]]}}]})
            raise ClientError({"Error": {"Code": "InvalidChangeBatch", "Message": (
                f"[Tried to delete resource record set [name='{NAME}.', type='TXT'] but the values provided do "
                "not match the current values]")}}, "ChangeResourceRecordSets")
        return self.inner.change_resource_record_sets(**kwargs)


def racing_provider(zone_id: str, moto_url: str, races: int, tag: str = "other") -> tuple[Any, list[Racing]]:
    made: list[Racing] = []
    base = dns_solvers.make_provider(settings(zone_id, moto_url))

    class Provider(route53.Route53Provider):
        def _client(self) -> Any:
            made.append(Racing(super()._client(), _route53(moto_url), zone_id, races, tag))
            return made[-1]

    provider = Provider(hosted_zone_id=base.hosted_zone_id, zone=base.zone, access=base.access,
                        aws_access_key_id=base.aws_access_key_id, aws_secret_access_key=base.aws_secret_access_key)
    return provider, made


def test_a_batch_another_process_made_stale_is_retried_after_re_reading(zone):
    zone_id, moto_url = zone
    r53 = _route53(moto_url)
    provider, clients = racing_provider(zone_id, moto_url, races=2)
    provider.present(NAME, "mine")
    assert _records(r53, zone_id) == ['"mine"', '"other-1"', '"other-2"']
    assert clients[-1].batches == [["CREATE"], ["DELETE", "CREATE"], ["DELETE", "CREATE"]]
    provider, clients = racing_provider(zone_id, moto_url, races=1, tag="later")
    provider.cleanup(NAME, "mine")
    assert _records(r53, zone_id) == ['"later-1"', '"other-1"', '"other-2"']  # theirs survive our cleanup
    assert clients[-1].batches[-1] == ["DELETE", "CREATE"]


def test_a_name_that_keeps_changing_is_given_up_on_with_one_line(zone):
    zone_id, moto_url = zone
    provider, clients = racing_provider(zone_id, moto_url, races=1000)
    started = time.monotonic()
    with pytest.raises(DnsError) as err:
        provider.present(NAME, "mine")
    assert time.monotonic() - started < 10
    assert str(err.value) == (f"route53: TXT {NAME} kept changing under concurrent writers; gave up after "
                              f"{route53.ATTEMPTS} conditional writes")
    assert len(clients[-1].batches) == route53.ATTEMPTS
