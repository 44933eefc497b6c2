"""The SDK's debug messages stay in the program unless CERTPLANE_SDK_DEBUG asks for them (components/_sdk_debug)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components import _sdk_debug


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What would reach the engine: the SDK's own `_log`, with an engine set."""
    calls: list[str] = []
    monkeypatch.setattr(pulumi.log, "debug", pulumi.log.debug)  # restored after the test
    monkeypatch.setattr(pulumi.log, "get_engine", lambda: object())
    monkeypatch.setattr(pulumi.log, "_log", lambda _engine, _severity, message, *_: calls.append(message))
    return calls


def test_debug_messages_are_dropped_by_default(sent: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_sdk_debug.ENV, raising=False)
    _sdk_debug.install()
    pulumi.log.debug("registering resource")
    pulumi.log.warn("a warning still goes")
    assert sent == ["a warning still goes"]


@pytest.mark.parametrize("value", ["1", "yes"])
def test_certplane_sdk_debug_keeps_them(sent: list[str], monkeypatch: pytest.MonkeyPatch, value: Any) -> None:
    monkeypatch.setenv(_sdk_debug.ENV, value)
    _sdk_debug.install()
    pulumi.log.debug("registering resource")
    assert sent == ["registering resource"]
