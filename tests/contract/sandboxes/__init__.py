"""Where each plug-in meets a real counterpart in the contract tests: one module per plug-in kind,
`sandboxes/<registry>/<kind>.py`, exporting `open(request)`, a context manager that starts (or borrows, through
`request.getfixturevalue`) what the plug-in talks to and yields a box the contract can drive and check.

A plug-in added to a registry is picked up by the contract tests at once; until its sandbox module exists,
its contract test fails and says which file to add."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


def load(registry: str, kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"tests.contract.sandboxes.{registry}.{kind}")
    except ModuleNotFoundError:
        pytest.fail(f"the {registry} plug-in {kind!r} has no sandbox: add tests/contract/sandboxes/{registry}/"
                    f"{kind}.py with open(request) (see the others)")
