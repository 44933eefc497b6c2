"""The registries are the plug-ins: every plug-in module is registered, every kind is validated by its own
settings model, and the line for an unknown kind names them all."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from providers.core import deploy, dns, http01, issuers, keystore
from providers.core.errors import InvalidInputError
from providers.core.plugins import Registry
from providers.core.validation import SECRET, Model, marked

REGISTRIES = {"deploy": deploy, "dns": dns, "http01": http01, "issuers": issuers, "keystore": keystore}


@pytest.mark.parametrize("package", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_every_plugin_module_is_registered(package: object) -> None:
    registry: Registry[object] = package.REGISTRY  # type: ignore[attr-defined]
    declared = set()
    for info in pkgutil.iter_modules(package.__path__):  # type: ignore[attr-defined]
        module = importlib.import_module(f"{package.__name__}.{info.name}")  # type: ignore[attr-defined]
        plugin = getattr(module, "PLUGIN", None)
        if plugin is not None:
            declared.add(plugin.kind)
            assert registry.get(plugin.kind) is plugin
    assert declared <= set(registry.kinds)


@pytest.mark.parametrize("package", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_each_kind_has_its_own_settings_model_and_an_unknown_kind_names_them(package: object) -> None:
    registry: Registry[object] = package.REGISTRY  # type: ignore[attr-defined]
    models = [registry.get(kind).settings for kind in registry.kinds]  # type: ignore[attr-defined]
    assert len(set(models)) == len(models) and all(issubclass(m, Model) for m in models)
    with pytest.raises(InvalidInputError) as err:
        registry.get("no-such-kind")
    assert str(err.value) == (f"{registry.key}: unrecognized {registry.noun}: no-such-kind "
                              f"(known: {', '.join(registry.kinds)})")


@pytest.mark.parametrize("package", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_secret_settings_never_reach_a_repr(package: object) -> None:
    registry: Registry[object] = package.REGISTRY  # type: ignore[attr-defined]
    for kind in registry.kinds:
        model = registry.get(kind).settings  # type: ignore[attr-defined]
        for name in marked(model, SECRET):
            shown = repr(model.model_construct(**{name: "s3cret-value"}))
            assert "s3cret-value" not in shown and f"{name}='<secret>'" in shown, shown
