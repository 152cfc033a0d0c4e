"""Every module imported by the package, the tests, the benchmarks and the notebooks is a declared
dependency of the part that imports it — directly, not through another package's requirements.

A transitive dependency is what broke the suite once: ``openapi_spec_validator`` came with
schemathesis 3 and left with schemathesis 4. So each third-party import must map (through the
installed distributions' top-level names) to a requirement named in pyproject.toml:

- ``opsjobs/``: the core dependencies or an extra of the package (``all`` and below);
- ``tests/``: the core dependencies and the ``test`` extra with what it includes;
- ``bench/``: the same plus the ``bench`` extra;
- ``notebooks/``: the core dependencies and the ``all`` extra (what ``opsjobs serve`` installs).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
# Modules that live in the repository itself (imported by path, not installed from an index).
LOCAL = {
    "opsjobs",
    "conftest",
    "pg",
    "harness",
    "fleet",
    "jobfuncs",
    "server_harness",
    "nbval_outputs",
    "lab_kernel",
    "browser",
    "throughput",
    "heap_shapes",
    "pgqueuer_side",
    "pg_shapes",
    "receivers",
}
# Standard modules of the newer supported Pythons, imported behind a version check.
NEWER_STDLIB = {"tomllib"}


def _name(requirement: str) -> str:
    """The normalised project name of a requirement string (``psycopg[binary]>=3`` → psycopg)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def declared(*extras: str) -> set[str]:
    """The project names required by the core dependencies and ``extras`` (self-references
    such as ``opsjobs[all]`` expanded)."""
    names = {_name(r) for r in PROJECT["dependencies"]}
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in PROJECT["optional-dependencies"][extra]:
            if _name(requirement) == "opsjobs":
                inner = re.search(r"\[(.*)\]", requirement)
                assert inner, requirement
                todo += [e.strip() for e in inner.group(1).split(",")]
            else:
                names.add(_name(requirement))
    return names


def _sources(folder: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((ROOT / folder).rglob("*.py")):
        yield path, path.read_text("utf-8")
    for path in sorted((ROOT / folder).rglob("*.ipynb")):
        cells = json.loads(path.read_text("utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                # IPython magics and shell escapes are not Python.
                code = "\n".join("" if line.lstrip()[:1] in "%!" else line for line in lines)
                yield path, code


# Run in a child: 3.11.7's ast.parse can fail with "SystemError: AST constructor recursion depth
# mismatch" in a process where an earlier test met a RecursionError (seen on a fresh machine).
_CHILD = """
import ast, json, sys
out = []
for source in json.load(sys.stdin):
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    out.append(names)
json.dump(out, sys.stdout)
"""


def _imports_of_sources(sources: list[str]) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(sources),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(done.stdout))


def third_party_imports(folder: str) -> dict[str, set[str]]:
    """Top-level module → the files under ``folder`` that import it (stdlib and local left out)."""
    found: dict[str, set[str]] = {}
    sources = list(_sources(folder))
    parsed = _imports_of_sources([source for _, source in sources])
    for (path, _), modules in zip(sources, parsed, strict=True):
        for module in modules:
            if module in sys.stdlib_module_names or module in LOCAL | NEWER_STDLIB:
                continue
            found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _distributions() -> dict[str, list[str]]:
    mapping = {k: list(v) for k, v in importlib.metadata.packages_distributions().items()}
    if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
        # 3.10 reads only top_level.txt, which some wheels no longer ship (pyzmq's): infer the
        # top-level modules from the installed files, as 3.11 does
        for dist in importlib.metadata.distributions():
            if dist.read_text("top_level.txt") is not None:
                continue
            for module in {
                f.parts[0] if len(f.parts) > 1 else f.with_suffix("").name
                for f in dist.files or ()
                if f.suffix == ".py"
            }:
                mapping.setdefault(module, []).append(dist.metadata["Name"])
    return mapping


def providers(module: str) -> set[str]:
    """The normalised names of the installed distributions that provide top-level ``module``."""
    mapping = _distributions()
    return {re.sub(r"[-_.]+", "-", d).lower() for d in mapping.get(module, [])}


PARTS = {
    "opsjobs": ("pandas", "postgres", "notebook", "server", "all"),
    "tests": ("test",),
    "bench": ("test", "bench"),
    "notebooks": ("all",),
}


@pytest.mark.parametrize("folder", sorted(PARTS))
def test_every_import_is_a_declared_dependency(folder: str) -> None:
    allowed = declared(*PARTS[folder])
    undeclared = []
    for module, files in sorted(third_party_imports(folder).items()):
        # A module not installed here is covered when it is declared for another Python
        # (``tomli; python_version < '3.11'``).
        names = providers(module) or {_name(module)}
        if not names & allowed:
            undeclared.append(
                f"{module} (from {', '.join(sorted(names))}) in {', '.join(sorted(files))}"
            )
    assert not undeclared, (
        f"imported under {folder}/ but not declared in pyproject.toml for it: "
        + "; ".join(undeclared)
    )


def test_the_check_sees_an_undeclared_import() -> None:
    """The check itself: a module that comes only through another package is not covered."""
    # jupyter_server's own requirements are installed, and pyproject.toml names few of them.
    required = importlib.metadata.requires("jupyter-server") or []
    transitive = sorted(
        _name(r)
        for r in required
        if "extra ==" not in r and _name(r) not in declared("test", "bench")
    )
    assert transitive, "jupyter-server needs nothing undeclared: pick another package"
    modules = {m for m, ds in _distributions().items() for d in ds if _name(d) == transitive[0]}
    assert modules, f"{transitive[0]} provides no module"
    assert not providers(sorted(modules)[0]) & declared("test")
    assert providers("psycopg_pool") & declared("postgres") == {"psycopg-pool"}


def test_the_lock_pins_every_declared_dependency() -> None:
    """requirements/test.txt (made by ``uv pip compile``) pins every name the test and bench
    extras need, so a fresh install resolves to exactly the versions the suite ran with."""
    lock = (ROOT / "requirements" / "test.txt").read_text("utf-8")
    pinned = {_name(line) for line in lock.splitlines() if re.match(r"[A-Za-z0-9]", line)}
    missing = declared("test", "bench") - pinned - {"opsjobs"}
    assert not missing, (
        f"not pinned in requirements/test.txt (re-run its header's command): {missing}"
    )


def test_classifiers_name_exactly_the_interpreters_ci_tests() -> None:
    """pyproject.toml's Python classifiers and requires-python match .ci/run's interpreters."""
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    main = re.search(r"^MAIN_PY_VERSION=(\S+)", ci, re.M)
    others = re.search(r"^OTHER_PY_VERSIONS=\(([^)]*)\)", ci, re.M)
    assert main and others
    tested = {main.group(1), *others.group(1).split()}
    prefix = "Programming Language :: Python :: 3."
    classified = {c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if c.startswith(prefix)}
    assert classified == tested
    assert (
        PROJECT["requires-python"]
        == f">={min(tested, key=lambda v: tuple(map(int, v.split('.'))))}"
    )
