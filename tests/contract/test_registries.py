"""The registries are the plug-ins: every plug-in module is registered, every kind is validated by its own
settings model, and the line for an unknown kind names them all."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from providers.core import deploy, dns, http01, issuers, keystore
from providers.core.errors import InvalidInputError
from providers.core.plugins import Registry
from providers.core.validation import SECRET, Model, marked

ROOT = Path(__file__).resolve().parents[2]
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


HEAVY = ("acme.client", "requests", "josepy", "dns.resolver", "boto3", "botocore", "aliyunsdkcore")


def test_a_plugin_module_is_imported_only_when_its_kind_is_asked_for() -> None:
    """What every program and provider process imports (the fleet's components, the certificate's provider)
    brings no plug-in's client library: a private-CA stack never pays for ACME, AWS or Alibaba (~0.2 s each
    process). Asking for a kind imports its module. In a fresh interpreter, so other tests' imports do not count."""
    script = (
        "import sys\n"
        "import components.fleet, providers.certificate, providers.private_key, providers.binding\n"
        "from providers.core import issuers, deploy\n"
        "issuers.REGISTRY.get('private_ca'); deploy.REGISTRY.get('files')\n"
        "issuers.REGISTRY.plugin_of(issuers.self_signed.SelfSignedSettings())  # as config makes it: by itself\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "issuers.REGISTRY.get('acme')\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True).stdout.splitlines()
    assert out[0] == "[]", out
    assert "acme.client" in out[1] and "requests" in out[1], out


def plugin_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, *, kind: str,
                   before: str = "") -> None:
    """An importable package `package` with one plug-in module, `alpha`, declaring `kind` (after `before` runs)."""
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "alpha.py").write_text(
        "import time\nfrom dataclasses import dataclass\n"
        "@dataclass(frozen=True)\n"
        "class P:\n    kind: str\n    settings: type\n"
        "class S: pass\n"
        f"{before}\n"
        f"PLUGIN = P({kind!r}, S)\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_plugin_module_must_be_named_for_its_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin_package(tmp_path, monkeypatch, "someplugins", kind="beta")
    registry: Registry[object] = Registry.of_modules("someplugins", ["alpha"], noun="widget")
    assert registry.kinds == ("alpha",)  # known before its module is imported
    with pytest.raises(ValueError, match="someplugins.alpha declares widget beta: a plug-in's module is its kind"):
        registry.get("alpha")


def test_threads_asking_for_a_kind_at_once_get_the_one_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider serves calls on threads: two certificates read at once both load `state` key storage."""
    plugin_package(tmp_path, monkeypatch, "slowplugins", kind="alpha", before="time.sleep(0.2)")
    registry: Registry[object] = Registry.of_modules("slowplugins", ["alpha"], noun="widget")
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda _: registry.get("alpha"), range(4)))
    assert len({id(p) for p in got}) == 1


def test_settings_made_from_a_plugins_module_directly_name_their_plugin() -> None:
    """A settings model built without asking the registry (its module imported by other code) still names its
    plug-in, as a field of a model, and in `plugin_of`; in a fresh interpreter, with nothing loaded yet."""
    script = (
        "from providers.core.issuers import REGISTRY\n"
        "from providers.core.issuers.acme import AcmeSettings\n"
        "settings = AcmeSettings.model_validate({'directory_url': 'https://acme.example.test/dir', "
        "'email': 'ops@example.test'})\n"
        "print(REGISTRY.plugin_of(settings).kind)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["acme"], out.stdout + out.stderr
