from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.contract.sandboxes.dns.common import DnsBox, txt_over_dns


@contextmanager
def open(request: Any) -> Iterator[DnsBox]:  # noqa: A001
    bind = request.getfixturevalue("bind")
    host, port = bind.address.split(":")
    yield DnsBox(settings=bind.dns_settings(), zone="contract.example.test",
                 values=lambda fqdn: txt_over_dns(host, int(port), fqdn))
