"""The Python SDK's debug messages: dropped in the program unless asked for.

The SDK logs about five debug lines per resource it registers (`pulumi/runtime/resource.py`, `rpc_manager.py`),
each one a blocking `Log` gRPC call to the engine made on the program's event loop, which waits for it. The engine
shows them only under `pulumi up --debug`, and a program cannot tell that flag was given. At 100 certificates
(205 resources) that is ~1,100 round trips per program run: dropping them took a no-op preview from 4.29 to 4.04 s
and a no-op up from 8.16 to 7.61 s (medians of 4, `bench/README.md`). `CERTPLANE_SDK_DEBUG=1` keeps them, for
`pulumi up --debug`. Warnings, errors and info lines, and certplane's own messages, are never affected.
"""

from __future__ import annotations

import os
from typing import Any

import pulumi

ENV = "CERTPLANE_SDK_DEBUG"


def _dropped(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for `pulumi.log.debug`: the message goes nowhere (see the module docstring)."""


def install() -> None:
    """Drop the SDK's debug messages unless CERTPLANE_SDK_DEBUG is set to something other than 0 or empty."""
    if os.environ.get(ENV, "") in ("", "0"):
        pulumi.log.debug = _dropped
