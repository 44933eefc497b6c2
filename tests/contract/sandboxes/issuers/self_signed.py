from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.contract.sandboxes.issuers.common import IssuerBox


@contextmanager
def open(request: Any) -> Iterator[IssuerBox]:  # noqa: A001
    yield IssuerBox(settings={"type": "self_signed"}, credentials=None, domains=("lab.example.test",))
