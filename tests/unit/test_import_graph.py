"""The sync's package imports in one direction: no module reaches back to one that imports
it, not even under TYPE_CHECKING or inside a function (where a circle hides until the
day someone moves an import up)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import auth0_sync

pytestmark = pytest.mark.unit

PACKAGE = Path(auth0_sync.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its text."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started (depth-first)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                walk(target, [*path, target])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            walk(name, [name])
    return found


def test_the_graph_sees_the_imports_a_circle_would_hide_in() -> None:
    graph = import_graph()
    # A TYPE_CHECKING import and a function-level one are both edges.
    assert "auth0_sync.settings" in graph["auth0_sync.destinations.factory"]
    assert "auth0_sync.destinations.salesforce" in graph["auth0_sync.destinations.factory"]


def test_no_module_of_the_sync_imports_back_into_a_circle() -> None:
    assert circles(import_graph()) == []


def test_the_destinations_package_knows_nothing_of_the_settings() -> None:
    assert "auth0_sync.settings" not in import_graph()["auth0_sync.destinations"]
