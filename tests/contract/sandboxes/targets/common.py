from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers.core.deploy import Binding


@dataclass(frozen=True)
class TargetBox:
    settings: dict[str, Any]  # the target's settings (no `type`)
    binding: Binding
    served: Callable[[Binding], str | None]  # the fingerprint served for the binding, seen without the target
    before: str | None = None  # what was served before certplane deployed anything
