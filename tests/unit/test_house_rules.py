"""The house's size rule (issue 14): no module under ``orchestrator/`` grows past 900 lines.

A file that long holds more than one concern; split it by concern before adding to it. The ctypes
declaration table (``httpapi/_ffi.py``) is the one exception: it is a list of declarations, not logic.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO

LIMIT = 900
DECLARATION_TABLES = {"orchestrator/httpapi/_ffi.py"}


def test_no_module_is_over_900_lines() -> None:
    """Every ``.py``/``.pyx``/``.pxi`` under orchestrator/ has at most 900 lines (the ctypes table aside)."""
    root = Path(REPO)
    too_long = {}
    for path in sorted((root / "orchestrator").rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxi"):
            continue
        rel = path.relative_to(root).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LIMIT and rel not in DECLARATION_TABLES:
            too_long[rel] = lines
    assert {} == too_long, "split these by concern (docs/architecture.md says which room)"
