"""Fixtures of the issuer tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from providers.core import aws


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every acm-pca operation certplane makes, with its parameters as given to botocore."""
    seen: list[tuple[str, dict[str, Any]]] = []
    made = aws.session

    def hooked(access: Any) -> Any:
        session = made(access)
        session.events.register("before-parameter-build.acm-pca",
                                lambda params, model, **_: seen.append((model.name, dict(params))))
        return session

    monkeypatch.setattr(aws, "session", hooked)
    yield seen
