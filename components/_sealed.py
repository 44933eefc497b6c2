"""Plain data passed between Outputs without the SDK lifting it node by node.

`Output.from_input` (which `Output.all` calls on every argument) descends into every dict and list an Output
carries and makes each node an Output of its own: two or three tracked tasks per node, each revisited by the
SDK's `wait_for_rpcs` loop until the program ends. The inventory is plain data (strings, numbers, lists of
strings), so lifting it buys nothing; at 100 certificates it was ~6,000 of the program's ~17,000 Outputs.
A `Sealed` value is opaque to `from_input`, so combining N of them costs N Outputs, not N x the nodes in each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi


class Sealed:
    """A plain value the SDK does not look into (its type is neither a dict, a list nor an input type)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def seal(output: pulumi.Output[Any]) -> pulumi.Output[Sealed]:
    return output.apply(Sealed)


def unseal(value: Any) -> Any:
    """The value inside a Sealed one (a value that is not Sealed as it is)."""
    return value.value if isinstance(value, Sealed) else value


def gather(sealed: Mapping[str, pulumi.Output[Sealed]]) -> pulumi.Output[dict[str, Any]]:
    """{name: value} from sealed Outputs: one Output that is known when all of them are, as `Output.all` is."""
    names = list(sealed)
    return pulumi.Output.all(*sealed.values()).apply(
        lambda values: {name: unseal(value) for name, value in zip(names, values)})


__all__ = ["Sealed", "gather", "seal", "unseal"]
