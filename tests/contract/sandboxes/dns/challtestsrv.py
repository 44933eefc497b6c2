from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.contract.sandboxes.dns.common import DnsBox, txt_over_dns
from tests.support.acme import challtestsrv_dns


@contextmanager
def open(request: Any) -> Iterator[DnsBox]:  # noqa: A001 - the sandbox protocol's name
    pebble = request.getfixturevalue("pebble")
    host, port = pebble.challtestsrv_dns.split(":")
    yield DnsBox(settings=challtestsrv_dns(pebble), zone="contract.example.test",
                 values=lambda fqdn: txt_over_dns(host, int(port), fqdn))
