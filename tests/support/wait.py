"""Bounded waiting for asynchronous servers in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def settle(probe: Callable[[], Any], expected: Any, *, tries: int = 100, interval: float = 0.05,
           rounds: int = 3) -> Any:
    """Poll `probe()` until it returns `expected` `rounds` times in a row (nginx reloads are asynchronous: old
    workers accept for a moment). Bounded; returns the last value for the caller's assert."""
    streak, value = 0, None
    for _ in range(tries):
        value = probe()
        streak = streak + 1 if value == expected else 0
        if streak >= rounds:
            break
        time.sleep(interval)
    return value
