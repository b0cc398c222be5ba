"""Every import is declared in pyproject.toml, and every import of an extra goes through ``require``.

Statically: each third-party module imported under ``src/geotessera`` belongs to a declared
distribution; one that only an extra installs is imported after ``require(<that package>,
extra)`` in its own or an enclosing scope (or under ``TYPE_CHECKING``, or in a ``try`` that
handles ``ImportError``). At run time, with every extra's packages hidden, each module of the
package imports or raises :class:`MissingExtraError` naming the extra, and the Zarr entry
points say which ``pip install`` to run.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "geotessera"


def _dist(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]).lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(r) for r in project["dependencies"]}
    extras = {
        _dist(r)
        for name, reqs in project["optional-dependencies"].items()
        if name not in ("dev", "all")
        for r in reqs
    }
    return core, extras - core


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _dists_of(top: str) -> set[str]:
    return {_dist(d) for d in _distributions().get(top, [])}


def _require_target(node: ast.AST) -> str | None:
    """``"zarr"`` for a call ``require("zarr.abc", ...)``, else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "require"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value.split(".")[0]
    return None


class _Imports(ast.NodeVisitor):
    """Collects (module, line, guarded) for every absolute import, tracking ``require`` per scope."""

    def __init__(self) -> None:
        self.found: list[tuple[str, int, bool]] = []
        self._scopes: list[set[str]] = [set()]
        self._guard = 0

    def _required(self) -> set[str]:
        return set().union(*self._scopes)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._scopes.append(set())
        self.generic_visit(node)
        self._scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Call(self, node: ast.Call) -> None:
        target = _require_target(node)
        if target is not None:
            self._scopes[-1].add(target)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        checking = isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        self._guard += checking
        for child in node.body:
            self.visit(child)
        self._guard -= checking
        for child in node.orelse:
            self.visit(child)

    def visit_Try(self, node: ast.Try) -> None:
        handles = any(
            h.type is not None
            and {n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)}
            & {"ImportError", "ModuleNotFoundError"}
            for h in node.handlers
        )
        self._guard += handles
        for child in node.body:
            self.visit(child)
        self._guard -= handles
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)

    def _add(self, module: str, line: int) -> None:
        top = module.split(".")[0]
        self.found.append((module, line, bool(self._guard) or top in self._required()))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module, node.lineno)


def test_every_import_is_declared_and_extras_go_through_require() -> None:
    core, extras = _declared()
    undeclared, unguarded = [], []
    for path in sorted(SRC.rglob("*.py")):
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), str(path)))
        for module, line, guarded in visitor.found:
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "geotessera" or top == "__future__":
                continue
            where = f"{path.relative_to(ROOT)}:{line} {module}"
            dists = _dists_of(top)
            if not dists & (core | extras):
                undeclared.append(f"{where} (distribution {sorted(dists) or '?'} not in pyproject.toml)")
            elif not dists & core and not guarded:
                unguarded.append(where)
    assert not undeclared, "imports of undeclared packages:\n" + "\n".join(undeclared)
    assert not unguarded, "extras imported without require():\n" + "\n".join(unguarded)


HIDE_EXTRAS = """
import sys
for name in {hidden!r}:
    sys.modules[name] = None  # import raises ImportError, as when the package is not installed
"""


def _hidden_extras() -> list[str]:
    _, extras = _declared()
    tops = _distributions()
    return sorted(top for top, dists in tops.items() if {_dist(d) for d in dists} & extras)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    prelude = HIDE_EXTRAS.format(hidden=_hidden_extras())
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_without_extras_every_module_imports_or_names_its_extra() -> None:
    code = """
import importlib, pkgutil
import geotessera
from geotessera.errors import MissingExtraError
for m in pkgutil.walk_packages(geotessera.__path__, "geotessera."):
    try:
        importlib.import_module(m.name)
    except MissingExtraError as exc:
        assert "pip install 'geotessera[" in str(exc), exc
        print("extra", m.name)
    else:
        print("ok", m.name)
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" ", 1)[::-1] for line in r.stdout.splitlines())
    assert lines["geotessera.store.layout"] == "extra" and lines["geotessera.client"] == "ok"
    assert lines["geotessera.countries"] == "ok" and lines["geotessera.cli"] == "ok"


def test_without_the_zarr_extra_the_reader_and_zarr_build_name_it(tmp_path: Path) -> None:
    r = _run("from geotessera.store import GeoTesseraZarr")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("geotessera.errors.MissingExtraError")
    assert "pip install 'geotessera[zarr]'" in r.stderr
    r = _run(
        "import sys\nfrom geotessera.cli import main\n"
        f"sys.argv = ['geotessera', 'zarr', 'build', {str(tmp_path)!r}, {str(tmp_path / 'z')!r}]\nmain()"
    )
    assert r.returncode == 1, r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: this feature needs the optional package")
    assert "pip install 'geotessera[zarr]'" in r.stderr and "unexpected" not in r.stderr


@pytest.mark.parametrize("command", [["--help"], ["download", "--help"], ["info", "--help"]])
def test_without_extras_the_cli_starts(command: list[str]) -> None:
    r = _run(f"import sys\nfrom geotessera.cli import main\nsys.argv = ['geotessera', *{command!r}]\nmain()")
    assert r.returncode == 0, r.stderr
    assert "Usage: geotessera" in r.stdout
