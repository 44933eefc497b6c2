"""Shared glue for certplane's dynamic providers: unknown-value handling and one-line errors.

Provider classes are pickled by reference (dill) into state, so they keep no attributes: no clients,
credentials or config on `self`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pulumi.dynamic import CheckFailure, CheckResult, ResourceProvider
from pulumi.output import Unknown

from .core.errors import CertplaneError

# Values not known until apply arrive as pulumi.output.Unknown, or as this sentinel string (rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PROVIDER_KEY = "__provider"

F = TypeVar("F", bound=Callable[..., Any])


def is_unknown(value: Any) -> bool:
    """True if the value or anything inside it is not known yet (preview)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


def user_facing(action: str) -> Callable[[F], F]:
    """Turn certplane's own errors into one clear line on stderr (shown by `pulumi up` as a diagnostic)
    before re-raising, so the actionable line is not buried under the SDK's traceback."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except CertplaneError as err:
                print(f"error: certplane: {action}: {err}", file=sys.stderr, flush=True)
                raise CertplaneError(f"{action}: {err}") from None

        return inner  # type: ignore[return-value]

    return wrap


def note(message: str) -> None:
    """A line for the user in `pulumi preview`/`up` (provider stderr becomes a diagnostic message)."""
    print(f"certplane: {message}", file=sys.stderr, flush=True)


class CertplaneProvider(ResourceProvider):
    """Base: `validate(news)` raises InvalidInputError; `check` turns it into a field-named CheckFailure."""

    serialize_as_secret_always = False  # providers capture no secrets, so __provider need not be encrypted

    def validate(self, news: dict[str, Any]) -> dict[str, Any]:
        return news

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        try:
            return CheckResult(self.validate(dict(news)), [])
        except CertplaneError as err:
            return CheckResult(news, [failure(str(err))])


def failure(message: str) -> CheckFailure:
    """A check failure on no property: the engine would otherwise echo the property's value (key material)."""
    return CheckFailure("", message)


def without_provider(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}
