"""Typed input, one way: frozen pydantic models whose problems come back as certplane's own one-line sentences.

Stack config (components/config.py) and every provider's `check()` validate with the same models and the same
rule functions, so a user sees the same sentence at preview whichever layer catches a mistake. Rules raise
`InvalidInputError(field, reason)` (a ValueError, so pydantic carries it through with its field); pydantic's
own type errors are reworded here once (`must be a whole number`), never shown in pydantic's words.

Field markers say what a field *is* to the machinery around it, so no list of names is kept anywhere else:
`SECRET` (encrypted in state, never printed), `LOCATION` (changing it moves a binding elsewhere),
`REISSUE` (changing it re-issues the certificate), and `ProjectPath` (a path relative to the project directory).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, PlainValidator,
                      ValidationError, ValidationInfo, model_validator)

from .errors import InputProblems, InvalidInputError, join_field
from .keys import KeySpec
from .net import host_optional_port, host_port

M = TypeVar("M", bound=BaseModel)

KeySpecField = Annotated[KeySpec, PlainValidator(lambda raw: KeySpec.parse(raw, field="")),
                         PlainSerializer(lambda spec: spec.as_dict(), return_type=dict)]
"""A key specification as a model field: validated by `KeySpec.parse`, written back as its mapping."""


@dataclass(frozen=True)
class Marker:
    name: str


SECRET = Marker("secret")
LOCATION = Marker("location")
REISSUE = Marker("reissue")
STORED = "certplane_stored"  # validation context key: the data comes from state an earlier release wrote


class _NoSecretsInRepr(BaseModel):
    def __repr_args__(self) -> Any:
        secret = set(marked(type(self), SECRET))
        for name, value in super().__repr_args__():
            yield name, ("<secret>" if name in secret and value is not None else value)


class Model(_NoSecretsInRepr):
    """Base of every settings and input model: immutable, a SECRET field never in its repr, and a misspelt
    setting is an error that names the setting and suggests the one meant."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_settings(cls, data: Any) -> Any:
        """Unknown keys are an error; a key set to null means the setting is left unset (YAML `key:`)."""
        if isinstance(data, Mapping):
            known = [f.alias or name for name, f in cls.model_fields.items()]
            for key in data:
                if key not in known and key not in cls.model_fields:
                    raise InvalidInputError(str(key), unknown_setting(str(key), known))
            data = {k: v for k, v in data.items() if v is not None}
        return data

    def wire(self) -> dict[str, Any]:
        """Plain JSON-able data, as it travels and is stored (unset values left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class State(_NoSecretsInRepr):
    """Base of decoded provider state: tolerant of fields written by older or newer code."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


def unknown_setting(key: str, known: Iterable[str]) -> str:
    names = list(known)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    if close:
        return f"unknown setting (did you mean {close[0]}?)"
    return f"unknown setting (known: {', '.join(names)})" if names else "unknown setting"


@functools.lru_cache(maxsize=None)
def marked(model: type[BaseModel], marker: Marker) -> tuple[str, ...]:
    """The names of `model`'s fields that carry `marker`, on the field or inside its type (`SecretText | None`
    keeps the marker on the union's member). Cached: a model's fields are fixed once its class is built, and a
    fleet asks for the same few models' markers for every certificate (~100 field walks per certificate)."""
    return tuple(name for name, f in model.model_fields.items()
                 if marker in f.metadata or _annotated_with(f.annotation, marker))


def _annotated_with(annotation: Any, marker: Marker) -> bool:
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return marker in metadata or _annotated_with(base, marker)
    return any(_annotated_with(arg, marker) for arg in get_args(annotation))


def secret_paths(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Where `value` (a model, or dicts and lists of them) holds SECRET-marked text: the paths of the set
    ones. A SECRET-marked block (DNS settings that may hold credentials) counts only for the secrets inside."""
    out: list[tuple[str, ...]] = []
    if isinstance(value, BaseModel):
        secret = set(marked(type(value), SECRET))
        for name in type(value).model_fields:
            field = getattr(value, name)
            if isinstance(field, BaseModel | dict | list | tuple):
                out += secret_paths(field, (*path, name))
            elif name in secret and field not in (None, ""):
                out.append((*path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            out += secret_paths(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            out += secret_paths(item, (*path, str(index)))
    return out


# --- pydantic's errors, in certplane's words ----------------------------------------------------------------

_TYPE_WORDS = {
    "missing": "is required",
    "extra_forbidden": "unknown setting",
    "string_type": "must be a string",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "list_type": "must be a list", "tuple_type": "must be a list", "set_type": "must be a list",
    "dict_type": "must be a mapping", "model_type": "must be a mapping of settings",
    "model_attributes_type": "must be a mapping of settings",
}


def _reason(error: Mapping[str, Any]) -> tuple[str, str]:
    """(sub-field, reason) for one pydantic error."""
    kind, ctx = str(error["type"]), error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, InvalidInputError):
        return cause.field, cause.reason
    if kind in _TYPE_WORDS:
        return "", _TYPE_WORDS[kind]
    if kind == "literal_error":
        return "", f"must be one of {ctx.get('expected')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most",
                 "less_than": "less than"}[kind]
        bound = next(iter(ctx.values()), "?")
        return "", f"must be {words} {bound}"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "", "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return "", f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return "", f"must list at least {ctx.get('min_length')}"
    message = str(error.get("msg") or kind)
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return "", message


_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|[\w-]+\[.*\])$")  # pydantic's tag for a member of `A | B`


def problems(err: ValidationError, prefix: str = "") -> InputProblems:
    """Every problem in `err`, each naming its field (dotted, under `prefix`) in certplane's words. A value that
    fits no member of `T | Unknown` is one problem, said of `T`."""
    out: dict[str, InvalidInputError] = {}
    for error in err.errors(include_url=False, include_input=False):
        parts = [str(p) for p in error["loc"]]
        if any(p.startswith("is-instance[") for p in parts):
            continue  # the `Unknown` member: only the engine's pending values belong there
        loc = ".".join(p for p in parts if not _UNION_MEMBER.match(p))
        sub, reason = _reason(error)
        problem = InvalidInputError(join_field(prefix, loc, sub), reason)
        out.setdefault(str(problem), problem)
    return InputProblems(out.values())


def parse(model: type[M], raw: Any, *, field: str = "", context: Mapping[str, Any] | None = None) -> M:
    """`model` validated from `raw`; raises InputProblems (every problem, each naming its field under
    `field`)."""
    try:
        return model.model_validate(raw, context=dict(context or {}))
    except ValidationError as err:
        raise problems(err, field) from None
    except InvalidInputError as err:  # raised outside a validator (e.g. by a plugin registry)
        raise InputProblems([err.within(field)]) from None


def first_problem(fn: Callable[[], M]) -> M:
    """Run a parse and raise its first problem as an InvalidInputError (APIs that report one thing)."""
    try:
        return fn()
    except InputProblems as many:
        raise many.problems[0] from None


# --- field types: one rule each, with its sentence ----------------------------------------------------------

def policy(check: Callable[[Any], Any]) -> AfterValidator:
    """A rule that may tighten over time (an http:// directory once accepted, a length limit): applied to
    input, not to state an earlier release wrote (`context={STORED: True}`), which must still refresh, diff and
    destroy."""

    def run(value: Any, info: ValidationInfo) -> Any:
        return value if (info.context or {}).get(STORED) else check(value)

    return AfterValidator(run)


def _whole(low: int, high: int, unit: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            return None  # for optional fields; a required one still fails its type
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # YAML `port: "443"`
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            of = f" of {unit}" if unit else ""
            raise InvalidInputError("", f"must be a whole number{of} from {low} to {high}")
        return value

    return check


def whole_number(low: int, high: int, unit: str = "") -> BeforeValidator:
    """`Annotated[int, whole_number(1, 100)]`: a whole number in [low, high], in one sentence."""
    return BeforeValidator(_whole(low, high, unit))


def _number(low: float, high: float | None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = float(value)  # YAML `timeout: "2.5"`
            except ValueError:
                pass
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if bad or value < low or (high is not None and value > high):
            span = f"from {low:g} to {high:g}" if high is not None else f">= {low:g}"
            raise InvalidInputError("", f"must be a number {span}")
        return float(value)

    return check


def number(low: float, high: float | None = None) -> BeforeValidator:
    """`Annotated[float, number(0)]`: a number in [low, high]."""
    return BeforeValidator(_number(low, high))


def _argv(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(a, str) and a for a in value):
        raise InvalidInputError("", "must be a command as a list of arguments, e.g. [systemctl, reload, haproxy]")
    return tuple(value)


Argv = Annotated[tuple[str, ...], BeforeValidator(_argv)]
"""A command as a list of arguments, run without a shell (a string would be ambiguous to split)."""


def project_path(value: str, info: ValidationInfo) -> str:
    """`value` resolved against the project directory (see ProjectPath)."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    return str((Path(base) / path if base and not path.is_absolute() else path).resolve())


ProjectPath = Annotated[str, Field(min_length=1), AfterValidator(project_path)]
"""A filesystem path; relative ones are relative to the project directory (`context={"base_dir": ...}` in
config, the provider process's working directory on the engine side, which is the same directory)."""


def location_of(settings: BaseModel) -> dict[str, Any]:
    """The settings that say *where* something lives (LOCATION-marked): a binding's target, a key store. A
    change of one of them is a move; any other setting changes how it is reached."""
    return {name: getattr(settings, name) for name in marked(type(settings), LOCATION)}


HostPort = Annotated[str, AfterValidator(host_port)]
"""A `HOST:PORT` setting, kept as the user wrote it (providers.core.net parses it)."""

HostOptionalPort = Annotated[str, AfterValidator(host_optional_port)]
"""A `HOST` or `HOST:PORT` setting (a DNS server: port 53 when left out)."""

SecretText = Annotated[str, SECRET]
"""Key material, a password or a credential: a Pulumi secret, never in a repr or a message."""


__all__ = ["Argv", "KeySpecField", "location_of", "HostOptionalPort", "HostPort", "LOCATION", "STORED", "policy", "Marker", "Model", "ProjectPath", "project_path", "REISSUE", "SECRET", "SecretText", "State", "secret_paths",
           "first_problem", "marked", "number", "parse", "problems", "unknown_setting", "whole_number"]
