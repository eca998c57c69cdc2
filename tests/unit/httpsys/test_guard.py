"""Structural rules of orchestrator/backends/httpsys, checked by walking each module's AST.

- No ``ctypes.wintypes``: its ULONG/DWORD/BOOL/LONG are C long, 8 bytes on Linux, so layouts built on
  them cannot be tested here (notes/httpsys-backend.md 1.4).
- Only ``_ffi`` names ``WinDLL``/``windll``/``OleDLL``/``oledll``, and only inside functions, so that
  importing the package loads nothing.
- The package imports only itself, ``orchestrator.model`` and ``orchestrator.errors``; ``backend.py``
  (the ``Backend`` implementation) also the backend protocol, ``plan`` (to read ``Step``), the pure
  supervisor core and the clock (STYLE.md section 2). Nothing outside ``orchestrator.backends`` imports
  the package except the worker runner's http.sys source, which runs ``QueueWorker`` in workers.
- Every module opens with a docstring.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import orchestrator
import orchestrator.backends.httpsys as httpsys_pkg

PACKAGE_DIR = Path(httpsys_pkg.__file__).parent
ROOT = Path(orchestrator.__file__).parent
MODULES = sorted(PACKAGE_DIR.glob("*.py"))
DLL_NAMES = {"WinDLL", "windll", "OleDLL", "oledll"}
ALLOWED_ORCHESTRATOR_IMPORTS = (
    "orchestrator.backends.httpsys",
    "orchestrator.model",
    "orchestrator.errors",
)
#: What the Backend implementation needs on top (STYLE.md section 2: backends read plan.Step).
BACKEND_IMPORTS = (
    "orchestrator.backends.base",
    "orchestrator.plan",
    "orchestrator.supervise",
    "orchestrator.clock",
)
#: Modules outside orchestrator/backends allowed to import the package.
IMPORTERS = {"backends/registry.py", "runner/httpsys_source.py"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _uses_of(tree: ast.AST, names: set[str]) -> list[ast.AST]:
    return [
        node
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in names)
        or (isinstance(node, ast.Name) and node.id in names)
    ]


def _module_level_nodes(tree: ast.Module) -> list[ast.AST]:
    """Nodes that run at import time (not inside a function body)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def test_the_package_has_the_expected_modules() -> None:
    """The guard walks the real files (a renamed directory must not make it pass vacuously)."""
    assert {"__init__.py", "_ffi.py", "binding.py", "fake.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_module_uses_ctypes_wintypes(path: Path) -> None:
    """ctypes.wintypes integer types have the wrong size on Linux; the package never uses it."""
    tree = _tree(path)
    offending = [m for m in _imported_modules(tree) if m.startswith("ctypes.wintypes")]
    offending += [
        ast.unparse(n) for n in _uses_of(tree, {"wintypes"}) if isinstance(n, ast.Attribute)
    ]
    assert [] == offending


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_ffi_touches_windll(path: Path) -> None:
    """WinDLL/windll appear in _ffi.py alone."""
    uses = _uses_of(_tree(path), DLL_NAMES)
    if path.name == "_ffi.py":
        assert uses, "_ffi.py is where the DLLs are loaded"
    else:
        assert [] == [ast.unparse(n) for n in uses]


def test_ffi_loads_dlls_only_inside_functions() -> None:
    """No DLL is loaded at import time, so the structs import (and are tested) on Linux."""
    tree = _tree(PACKAGE_DIR / "_ffi.py")
    uses = {id(n) for n in _uses_of(tree, DLL_NAMES)}
    at_import = [n for n in _module_level_nodes(tree) if id(n) in uses]
    assert [] == [ast.unparse(n) for n in at_import]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_only_allowed_orchestrator_packages(path: Path) -> None:
    """model and errors only (backend.py: also base, plan, supervise, clock); never reconcile or cli."""
    imported = [m for m in _imported_modules(_tree(path)) if m.startswith("orchestrator")]
    allowed = ALLOWED_ORCHESTRATOR_IMPORTS + (BACKEND_IMPORTS if path.name == "backend.py" else ())
    assert [] == [m for m in imported if not m.startswith(allowed)]


def test_nothing_outside_backends_imports_httpsys() -> None:
    """Only backends.registry (lazily, by name) and the runner's http.sys source import the package."""
    importers = []
    for path in ROOT.rglob("*.py"):
        if PACKAGE_DIR in path.parents:
            continue
        if any(
            m.startswith("orchestrator.backends.httpsys") for m in _imported_modules(_tree(path))
        ):
            importers.append(str(path.relative_to(ROOT)))
    assert [] == [p for p in importers if p not in IMPORTERS]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_module_starts_with_a_docstring(path: Path) -> None:
    """STYLE.md 12: each module says what it owns and what it must not import."""
    assert ast.get_docstring(_tree(path))


def test_every_module_imports_on_linux() -> None:
    """Importing every module of the package works without Windows (nothing is loaded)."""
    names = [m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)])]
    for name in names:
        importlib.import_module(f"orchestrator.backends.httpsys.{name}")
    assert "_ffi" in names
