"""Structural rules of orchestrator/httpapi and orchestrator/backends/httpsys, checked on each AST.

- No ``ctypes.wintypes``: its ULONG/DWORD/BOOL/LONG are C long, 8 bytes on Linux, so layouts built on
  them cannot be tested here (notes/httpsys-backend.md 1.4).
- Only ``httpapi/_ffi.py`` names ``WinDLL``/``windll``/``OleDLL``/``oledll``, and only inside
  functions, so that importing either package loads nothing.
- ``orchestrator.httpapi`` imports nothing else from ``orchestrator``. The backend package imports
  only itself, ``httpapi``, ``model``, ``errors`` and the clock; ``backend.py`` and ``resources.py``
  (the ``Backend`` implementation) also the backend protocol, ``plan`` (to read ``Step``) and the pure
  supervisor core (STYLE.md section 2).
- Only ``backends.registry`` imports the backend package from outside it; ``httpapi`` is imported by
  the backend and by the worker runner's http.sys source (which runs ``QueueWorker`` in workers).
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
import orchestrator.httpapi as httpapi_pkg

API_DIR = Path(httpapi_pkg.__file__).parent
BACKEND_DIR = Path(httpsys_pkg.__file__).parent
ROOT = Path(orchestrator.__file__).parent
MODULES = sorted([*API_DIR.glob("*.py"), *BACKEND_DIR.glob("*.py")])
DLL_NAMES = {"WinDLL", "windll", "OleDLL", "oledll"}
#: What each package may import from orchestrator.
ALLOWED_ORCHESTRATOR_IMPORTS = {
    API_DIR: ("orchestrator.httpapi",),
    BACKEND_DIR: (
        "orchestrator.backends.httpsys",
        "orchestrator.httpapi",
        "orchestrator.model",
        "orchestrator.errors",
        "orchestrator.clock",
    ),
}
#: What the Backend implementation needs on top (STYLE.md section 2: backends read plan.Step).
BACKEND_IMPORTS = (
    "orchestrator.backends.base",
    "orchestrator.plan",
    "orchestrator.supervise",
)
BACKEND_MODULES = {"backend.py", "resources.py", "launcher.py", "rules.py"}
#: Modules outside each package allowed to import it.
IMPORTERS = {
    "orchestrator.backends.httpsys": {"backends/registry.py"},
    "orchestrator.httpapi": {"runner/httpsys_source.py"},
}


def _module_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


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


def test_the_packages_have_the_expected_modules() -> None:
    """The guard walks the real files (a renamed directory must not make it pass vacuously)."""
    assert {"__init__.py", "_ffi.py", "binding.py", "handles.py", "worker.py"} <= {
        p.name for p in API_DIR.glob("*.py")
    }
    assert {"__init__.py", "backend.py", "resources.py", "sddl.py"} <= {
        p.name for p in BACKEND_DIR.glob("*.py")
    }


@pytest.mark.parametrize("path", MODULES, ids=_module_id)
def test_no_module_uses_ctypes_wintypes(path: Path) -> None:
    """ctypes.wintypes integer types have the wrong size on Linux; the package never uses it."""
    tree = _tree(path)
    offending = [m for m in _imported_modules(tree) if m.startswith("ctypes.wintypes")]
    offending += [
        ast.unparse(n) for n in _uses_of(tree, {"wintypes"}) if isinstance(n, ast.Attribute)
    ]
    assert [] == offending


@pytest.mark.parametrize("path", MODULES, ids=_module_id)
def test_only_ffi_touches_windll(path: Path) -> None:
    """WinDLL/windll appear in httpapi/_ffi.py alone."""
    uses = _uses_of(_tree(path), DLL_NAMES)
    if path == API_DIR / "_ffi.py":
        assert uses, "_ffi.py is where the DLLs are loaded"
    else:
        assert [] == [ast.unparse(n) for n in uses]


def test_ffi_loads_dlls_only_inside_functions() -> None:
    """No DLL is loaded at import time, so the structs import (and are tested) on Linux."""
    tree = _tree(API_DIR / "_ffi.py")
    uses = {id(n) for n in _uses_of(tree, DLL_NAMES)}
    at_import = [n for n in _module_level_nodes(tree) if id(n) in uses]
    assert [] == [ast.unparse(n) for n in at_import]


@pytest.mark.parametrize("path", MODULES, ids=_module_id)
def test_module_imports_only_allowed_orchestrator_packages(path: Path) -> None:
    """httpapi: itself only. The backend: httpapi, model, errors, clock (backend.py and
    resources.py: also base, plan, supervise); never reconcile or cli."""
    imported = [m for m in _imported_modules(_tree(path)) if m.startswith("orchestrator")]
    allowed = ALLOWED_ORCHESTRATOR_IMPORTS[path.parent]
    if path.parent == BACKEND_DIR and path.name in BACKEND_MODULES:
        allowed += BACKEND_IMPORTS
    assert [] == [m for m in imported if not m.startswith(allowed)]


@pytest.mark.parametrize(
    ("package", "package_dir"),
    [
        ("orchestrator.backends.httpsys", BACKEND_DIR),
        ("orchestrator.httpapi", API_DIR),
    ],
)
def test_only_the_expected_modules_import_each_package(package: str, package_dir: Path) -> None:
    """The backend: backends.registry (lazily, by name). httpapi: the backend package and the
    runner's http.sys source (so the runner imports nothing from backends)."""
    importers = []
    for path in ROOT.rglob("*.py"):
        if package_dir in path.parents or (
            package == "orchestrator.httpapi" and BACKEND_DIR in path.parents
        ):
            continue
        if any(m.startswith(package) for m in _imported_modules(_tree(path))):
            importers.append(str(path.relative_to(ROOT)))
    assert [] == [p for p in importers if p not in IMPORTERS[package]]


@pytest.mark.parametrize("path", MODULES, ids=_module_id)
def test_every_module_starts_with_a_docstring(path: Path) -> None:
    """STYLE.md 12: each module says what it owns and what it must not import."""
    assert ast.get_docstring(_tree(path))


@pytest.mark.parametrize(
    ("package", "package_dir"),
    [("orchestrator.backends.httpsys", BACKEND_DIR), ("orchestrator.httpapi", API_DIR)],
)
def test_every_module_imports_on_linux(package: str, package_dir: Path) -> None:
    """Importing every module of either package works without Windows (nothing is loaded)."""
    names = [m.name for m in pkgutil.iter_modules([str(package_dir)])]
    for name in names:
        importlib.import_module(f"{package}.{name}")
    assert names
