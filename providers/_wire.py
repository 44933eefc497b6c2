"""The edge between the Pulumi wire and certplane's typed providers: the only place that knows what crosses it.

What arrives from the engine is a plain dict with three quirks, all handled here and nowhere else:
- `__provider`, the pickled provider, which no model sees;
- numbers as doubles (the engine's protobuf Struct has no integers): 2048.0 is 2048;
- during preview, values not known until apply (an output of a resource being created or replaced), as the
  SDK's sentinel string or `pulumi.output.Unknown`. A field that is, or contains, such a value decodes as
  `UNKNOWN`; only fields typed `T | Unknown` (`Later[T]`) accept it, and `create`/`update` never see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pulumi.output import Unknown as _PulumiUnknown
from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import core_schema

from .core.validation import SECRET, marked, parse

PROVIDER_KEY = "__provider"
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class Unknown:
    """A value Pulumi will only know after apply (preview only). There is one: `UNKNOWN`."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(cls, serialization=core_schema.plain_serializer_function_ser_schema(
            lambda _v: UNKNOWN_SENTINEL))


UNKNOWN = Unknown()


def is_unknown(value: Any) -> bool:
    """True if the value, or anything inside it, is not known yet."""
    if value is UNKNOWN or isinstance(value, _PulumiUnknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN_SENTINEL
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


def known(value: T | Unknown) -> T:
    """The value, asserting it is known (create/update/read/delete only ever see known values)."""
    if isinstance(value, Unknown):
        raise AssertionError("a value not known until apply reached an apply-time operation")
    return value


def _lifted(value: Any) -> Any:
    """`value` as plain Python (whole numbers as ints, tuples as lists), or UNKNOWN when anything inside it is
    (`is_unknown`), in one walk: the provider lifts every field of every certificate twice per preview."""
    if value is UNKNOWN or isinstance(value, _PulumiUnknown):
        return UNKNOWN
    if isinstance(value, str):
        return UNKNOWN if value == UNKNOWN_SENTINEL else value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            lifted = _lifted(item)
            if lifted is UNKNOWN:
                return UNKNOWN
            out[key] = lifted
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            lifted = _lifted(item)
            if lifted is UNKNOWN:
                return UNKNOWN
            items.append(lifted)
        return items
    return value


def from_wire(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's dict as plain Python: no `__provider`, whole numbers as ints, UNKNOWN for pending fields."""
    return {k: _lifted(v) for k, v in raw.items() if k != PROVIDER_KEY}


def decode(model: type[M], raw: Mapping[str, Any], *, context: Mapping[str, Any] | None = None) -> M:
    """`model` from the wire; raises InputProblems (each naming its field)."""
    return parse(model, from_wire(raw), context=context)


def to_wire(value: BaseModel, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A model as the engine stores it. Fields that were unknown in `raw` go back exactly as they came, so the
    engine keeps them pending."""
    out = value.model_dump(mode="json", exclude_none=False)
    for name, field_value in (raw or {}).items():
        if name != PROVIDER_KEY and is_unknown(field_value):
            out[name] = field_value
    return out


def secret_fields(*models: type[BaseModel]) -> list[str]:
    """The names the engine must treat as secrets (`additional_secret_outputs`), from the SECRET markers."""
    return sorted({name for model in models for name in marked(model, SECRET)})


__all__ = ["PROVIDER_KEY", "UNKNOWN", "UNKNOWN_SENTINEL", "Unknown", "decode", "from_wire", "is_unknown", "known",
           "secret_fields", "to_wire"]
