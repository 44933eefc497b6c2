from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeyStoreBox:
    settings: dict[str, Any]  # the store's settings (no `type`)
    owner: str = "www-0123abcd"  # unique per resource, as the providers pass it
    seen: Callable[[str], bool] = field(default=lambda _owner: False)  # the owner's keys, seen without the store
