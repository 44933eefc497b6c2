from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography import x509

from providers.core import keys
from tests.contract.sandboxes.issuers.common import IssuerBox
from tests.support.acme import challtestsrv_dns, new_account


@contextmanager
def open(request: Any) -> Iterator[IssuerBox]:  # noqa: A001
    pebble = request.getfixturevalue("pebble")
    _client, key, url = new_account(pebble)
    yield IssuerBox(settings={"type": "acme", "directory_url": pebble.directory_url,
                              "ca_bundle": str(pebble.ca_bundle_path), "dns": challtestsrv_dns(pebble)},
                    credentials={"account_key_pem": keys.private_key_to_pem(key), "account_url": url},
                    domains=("*.contract.example.test", "contract.example.test"),
                    trust=(x509.load_pem_x509_certificate(pebble.root_pem.encode()),))
