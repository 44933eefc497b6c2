"""What every HTTP-01 mode is: a settings model and how to build its solver."""

from __future__ import annotations

from typing import Any

from ..acme.solver import Solver
from ..plugins import Factory

Http01Plugin = Factory[Any, Solver]
