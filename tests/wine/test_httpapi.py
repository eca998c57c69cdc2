"""The real Wine 8 httpapi.dll driven through _ffi/RealBinding by Windows CPython (marker wine).

The test runs a scenario script under Wine and checks its JSON events against the table the fake's
Wine flavour is built from. Functions that abort under Wine are never called. Scenarios that route
traffic go through ``HttpSysBackend`` (``test_backend.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.wine.scenarios.lifecycle_program import WINE8_EXPECTED

pytestmark = [pytest.mark.wine, pytest.mark.timeout(180)]


def test_lifecycle_answers_match_the_recorded_wine8_table(
    windows_python: Callable[..., Any], free_port: Any
) -> None:
    """Every call of the lifecycle probe gets the result WINE8_EXPECTED records (and the fake gives)."""
    proc = windows_python("lifecycle", free_port())
    caps = proc.expect("capabilities")
    assert ("8.0", 1) == (caps["wine"], caps["urls_per_group"])
    assert 0 == proc.finish()
    steps = {e["name"]: e["code"] for e in proc.events if e["event"] == "step"}
    assert WINE8_EXPECTED == steps
    assert "done" == proc.events[-1]["event"]
