from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from providers.core.keystore import owner_segment
from tests.contract.sandboxes.keystores.common import KeyStoreBox

REGION = "us-east-1"
PREFIX = "certplane-contract/"


@contextmanager
def open(request: Any) -> Iterator[KeyStoreBox]:  # noqa: A001
    moto = request.getfixturevalue("moto")
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.endpoint_url)

    def seen(owner: str) -> bool:
        """A secret of the owner that is not scheduled for deletion."""
        name = PREFIX + owner_segment(owner)
        listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
        return any(s["Name"] == name and not s.get("DeletedDate") for s in listed)

    yield KeyStoreBox(settings={"region": REGION, "endpoint_url": moto.endpoint_url, "prefix": PREFIX}, seen=seen)
