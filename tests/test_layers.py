"""The house's layering (docs/ARCHITECTURE.md): imports only point down, and the CLI has no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                out.add(node.module)
    return out


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("providers/core", ("pulumi", "providers._", "providers.certificate", "providers.binding", "components", "cli",
                        "tools", "tests")),
    ("providers", ("components", "cli", "tools", "tests")),
    ("components", ("cli", "tools", "tests")),
    ("cli", ("components", "tools", "tests", "providers._", "providers.certificate", "providers.binding")),
    ("policy", ("components", "cli", "tools", "tests", "providers._", "providers.certificate", "providers.binding")),
])
def test_imports_only_point_down(folder: str, forbidden: tuple[str, ...]) -> None:
    bad = [f"{path.relative_to(ROOT)} imports {name}" for path in files(folder) for name in imports(path)
           if any(name == f or name.startswith(f) for f in forbidden)]
    assert bad == []


def test_the_cli_modules_import_no_cycle() -> None:
    graph = {p.stem: {n.split(".")[1] for n in imports(p) if n.startswith("cli.") and n.count(".") == 1}
             for p in files("cli")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m, {m})] == []
