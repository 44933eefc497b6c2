"""Plug-in registries: deploy targets, DNS-01 providers, HTTP-01 solvers and issuers are each one module that
declares a `Plugin` (its kind, its settings model, how to build it), listed once in its package's registry.

Everything that needs to know the plug-ins reads the registry: config models (a settings block is validated by
the model of the kind it names), the `unrecognized X` lines, the tests parametrised over every kind. Adding a
plug-in is one module plus one line in the registry.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

from pydantic import PlainSerializer, ValidationError, ValidationInfo, ValidatorFunctionWrapHandler, WrapValidator

from .errors import InputProblems, InvalidInputError
from .validation import Model, problems


class Plugin(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def settings(self) -> type[Model]: ...


P = TypeVar("P", bound=Plugin)
S = TypeVar("S", bound=Model)
T = TypeVar("T")


@dataclass(frozen=True)
class Factory(Generic[S, T]):
    """A plug-in that is a settings model and what to build from it (a deploy target, a DNS provider, an
    HTTP-01 solver)."""

    kind: str
    settings: type[S]
    build: Callable[[S], T]


class Registry(Generic[P]):
    """Plug-ins of one kind by name. `key` is the setting that names the kind in a settings block
    (`type` for targets and issuers, `provider` for DNS, `mode` for HTTP-01).

    A registry of modules (`of_modules`) imports a plug-in's module the first time its kind is asked for: a stack
    with only a private CA never imports the ACME client, requests and dnspython (~0.2 s in every program and
    provider process), nor boto3 or the Alibaba SDK for targets it does not use. Each module's name is its kind."""

    def __init__(self, noun: str, plugins: Iterable[P], *, key: str = "type",
                 implied: Callable[[Mapping[str, Any]], str | None] | None = None,
                 lazy: Callable[[str], P] | None = None, lazy_kinds: Iterable[str] = ()) -> None:
        self.noun, self.key, self._implied = noun, key, implied
        self._by_kind: dict[str, P] = {}
        self._by_settings: dict[type[Model], P] = {}
        self._load, self._unloaded, self._loading = lazy, set(lazy_kinds), threading.RLock()
        for plugin in plugins:
            self._add(plugin)

    def _add(self, plugin: P) -> P:
        if plugin.kind in self._by_kind:
            raise ValueError(f"two {self.noun}s named {plugin.kind}")
        if plugin.settings in self._by_settings:
            raise ValueError(f"two {self.noun}s share a settings model: each kind needs its own (it names the kind)")
        self._by_kind[plugin.kind] = plugin
        self._by_settings[plugin.settings] = plugin
        return plugin

    @classmethod
    def of_modules(cls, package: str, modules: Iterable[str], noun: str, **kwargs: Any) -> Registry[Any]:
        """The registry of the `PLUGIN` each of `package`'s `modules` declares (adding a plug-in is adding its
        module's name here), each module imported when its kind is first asked for."""

        def load(kind: str) -> Any:
            plugin = importlib.import_module(f"{package}.{kind}").PLUGIN
            if plugin.kind != kind:
                raise ValueError(f"{package}.{kind} declares {noun} {plugin.kind}: a plug-in's module is its kind")
            return plugin

        return cls(noun, [], lazy=load, lazy_kinds=modules, **kwargs)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({*self._by_kind, *self._unloaded}))

    def __iter__(self) -> Any:
        return iter(self.get(k) for k in self.kinds)

    def _first_use(self, kind: str) -> P:
        """Import a kind's module once, whichever thread asks first (the provider serves calls on threads); a
        module that asks its own registry for a kind while it is imported does not deadlock (a re-entrant lock)."""
        with self._loading:
            if kind in self._by_kind:
                return self._by_kind[kind]
            assert self._load is not None, "only a registry of modules has kinds to load"
            plugin = self._add(self._load(kind))
            self._unloaded.discard(kind)
            return plugin

    def known(self) -> str:
        return ", ".join(self.kinds)

    def get(self, kind: object) -> P:
        """The plug-in for `kind`; an unknown kind names the known ones."""
        if kind in (None, ""):
            raise InvalidInputError(self.key, f"is required (known: {self.known()})")
        plugin = self._by_kind.get(kind) if isinstance(kind, str) else None
        if plugin is None and isinstance(kind, str) and kind in self._unloaded:
            plugin = self._first_use(kind)
        if plugin is None:
            raise InvalidInputError(self.key, f"unrecognized {self.noun}: {kind} (known: {self.known()})")
        return plugin

    def _knows(self, settings: Model) -> bool:
        try:
            self.plugin_of(settings)
        except KeyError:
            return False
        return True

    def plugin_of(self, settings: Model) -> P:
        """The plug-in whose model `settings` is (a model imported directly, not through `get`, loads it)."""
        plugin = self._by_settings.get(type(settings))
        if plugin is None:  # its module was imported some other way (`SelfSignedSettings()`): the module is the kind
            kind = type(settings).__module__.rpartition(".")[2]
            if kind in self._unloaded:
                self.get(kind)
            plugin = self._by_settings[type(settings)]
        return plugin

    def parse(self, raw: Any, *, context: Mapping[str, Any] | None = None) -> Model:
        """A settings block (`{key: kind, ...}`) validated by its kind's model. Raises ValidationError (with
        fields) or InvalidInputError (for the kind itself)."""
        if not isinstance(raw, Mapping):
            raise InvalidInputError("", f"must be a mapping with {self.key}: one of {self.known()}")
        kind = raw.get(self.key) or (self._implied(raw) if self._implied else None)
        plugin = self.get(kind)
        return plugin.settings.model_validate({k: v for k, v in raw.items() if k != self.key},
                                              context=dict(context or {}))

    def validate(self, raw: Any, *, field: str = "", context: Mapping[str, Any] | None = None) -> Model:
        """`parse`, with every problem as an InputProblems under `field` (`dns.url: must be ...`)."""
        try:
            return self.parse(raw, context=context)
        except ValidationError as err:
            raise problems(err, field) from None
        except InvalidInputError as err:
            raise InputProblems([err.within(field)]) from None

    def dump(self, settings: Model) -> dict[str, Any]:
        """The settings block back, kind included (for the wire and for state)."""
        return {self.key: self.plugin_of(settings).kind, **settings.wire()}

    def validator(self) -> WrapValidator:
        """`Annotated[BaseSettings, registry.validator(), registry.serializer()]`: a model field that takes any
        kind's settings, validated by that kind's model."""

        def validate(value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Model:
            if isinstance(value, Model) and self._knows(value):
                return value
            return self.parse(value, context=info.context)

        return WrapValidator(validate)

    def serializer(self) -> PlainSerializer:
        """Dumps such a field as its settings block, kind included."""
        return PlainSerializer(self.dump, return_type=dict)


__all__ = ["Factory", "Plugin", "Registry"]
