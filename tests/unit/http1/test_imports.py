"""`orchestrator.http1` is pure and standalone (STYLE.md §2): checked by walking its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import orchestrator.http1

PACKAGE = Path(orchestrator.http1.__file__).parent
FORBIDDEN = {
    "asyncio",
    "socket",
    "subprocess",
    "ctypes",
    "selectors",
    "signal",
    "threading",
    "time",
}
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_nothing_else_from_orchestrator(path: Path) -> None:
    """Only orchestrator.http1.* may be imported from orchestrator (the package is extractable)."""
    outside = {
        n
        for n in _imports(path)
        if n.split(".")[0] == "orchestrator" and not n.startswith("orchestrator.http1")
    }
    assert set() == outside


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_does_no_io(path: Path) -> None:
    """No sockets, no event loop, no clock, no processes."""
    assert set() == {n for n in _imports(path) if n.split(".")[0] in FORBIDDEN}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_the_ffi_seam_imports_httptools(path: Path) -> None:
    """httptools (llhttp) is confined to _llhttp.py, so swapping the tokenizer touches one file."""
    uses = any(n.split(".")[0] == "httptools" for n in _imports(path))
    assert uses == (path.name == "_llhttp.py")
