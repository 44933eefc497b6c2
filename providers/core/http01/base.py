"""What every HTTP-01 mode is: a settings model and how to build its solver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..acme.solver import Solver
from ..validation import Model

S = TypeVar("S", bound=Model)


@dataclass(frozen=True)
class Http01Plugin(Generic[S]):
    kind: str
    settings: type[S]
    build: Callable[[S], Solver]
