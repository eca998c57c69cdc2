"""Import rules of ``orchestrator.runner`` (what each module docstring promises), checked on the AST.

The runner must stay standard-library only (it will run on Windows, where httptools is not available)
and standalone within ``orchestrator``; the source/transport seam must hold so the http.sys source can
reuse the WSGI bridge.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import orchestrator.runner

PACKAGE = Path(orchestrator.runner.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))

FORBIDDEN = {
    "http11": {"socket", "threading", "selectors", "orchestrator.runner.wsgi"},
    "wsgi": {
        "socket",
        "threading",
        "selectors",
        "orchestrator.runner.http11",
        "orchestrator.runner.connection",
        "orchestrator.runner.socket_source",
    },
    "connection": {"threading", "selectors", "orchestrator.runner.socket_source"},
    "lifecycle": {
        "orchestrator.runner.socket_source",
        "orchestrator.runner.connection",
        "orchestrator.runner.http11",
        "orchestrator.runner.wsgi",
        "orchestrator.runner.appspec",
    },
    "source": {"socket", "orchestrator.runner"},
    "socket_source": {"signal", "orchestrator.runner.appspec", "orchestrator.runner.lifecycle"},
    "errors": {"orchestrator"},
    "notify": {"orchestrator"},
}


def imports_of(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


#: The one exception to "nothing from orchestrator outside the runner": the http.sys source drives
#: the queue through orchestrator.httpapi (ctypes confined to its _ffi), imported lazily on Windows.
ALLOWED_OUTSIDE = {"httpsys_source": ("orchestrator.httpapi",)}


def covers(forbidden: str, name: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


@pytest.mark.parametrize("module", MODULES)
def test_runner_modules_import_only_the_standard_library_and_the_runner(module: str) -> None:
    """No third-party dependency, and nothing from ``orchestrator`` outside the runner."""
    for name in imports_of(module):
        top = name.split(".")[0]
        if top == "orchestrator":
            allowed = ("orchestrator.runner", *ALLOWED_OUTSIDE.get(module, ()))
            assert any(covers(a, name) for a in allowed), f"{module} imports {name}"
        else:
            assert top in sys.stdlib_module_names or top == "_typeshed", f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_each_module_keeps_to_its_side_of_the_seams(module: str) -> None:
    """The wire format, the WSGI bridge, the source and the lifecycle stay separable."""
    bad = {
        name
        for name in imports_of(module)
        for forbidden in FORBIDDEN[module]
        if covers(forbidden, name)
    }
    assert set() == bad
