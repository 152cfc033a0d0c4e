"""The structure drawn from the code: which module of ``opsjobs`` imports which (every import,
also those inside functions and under ``TYPE_CHECKING``), with no circle, and the layers of
DESIGN.md kept."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import opsjobs

PACKAGE = Path(opsjobs.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The modules of the package that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` mod
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` of a non-module tail
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_import_circle() -> None:
    assert _cycles(graph()) == []


def test_dashboard_imports_nothing_from_the_server() -> None:
    edges = graph()
    wrong = {
        (a, b)
        for a, targets in edges.items()
        if _within(a, "opsjobs.dashboard")
        for b in targets
        if _within(b, "opsjobs.server")
    }
    assert wrong == set()


def test_the_core_imports_no_edge() -> None:
    core = ("model", "store", "worker", "scheduler", "analyzer", "auth")
    edges = graph()
    wrong = {
        (a, b)
        for a, targets in edges.items()
        if any(_within(a, f"opsjobs.{c}") for c in core)
        for b in targets
        if any(_within(b, f"opsjobs.{edge}") for edge in ("server", "dashboard", "cli"))
    }
    assert wrong == set()


def test_no_module_imports_another_modules_private_name() -> None:
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                wrong += [
                    f"{name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert wrong == []


def test_the_store_sql_domains_import_no_driver() -> None:
    edges = graph()
    for path in (PACKAGE / "store" / "sql").rglob("*.py"):
        text = path.read_text("utf-8")
        assert "sqlite3" not in text and "psycopg" not in text, path
    assert all(
        not _within(b, "opsjobs.store.sqlite") and not _within(b, "opsjobs.store.postgres")
        for a, bs in edges.items()
        if _within(a, "opsjobs.store.sql")
        for b in bs
    )
