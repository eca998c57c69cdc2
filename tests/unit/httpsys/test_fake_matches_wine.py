"""The fake's Wine 8 flavour gives the same result, call for call, as the real Wine 8 DLL did.

The lifecycle probe (tests/wine/scenarios/lifecycle_program.py) is run here against
RecordingBinding; the Wine tier runs the same program against httpapi.dll and asserts the same
table. The Windows flavour is checked against the notes' codes (what real Windows should answer).
"""

from __future__ import annotations

import pytest

from tests.support.httpsys_fake import FakeHttpSys, Flavor, RecordingBinding
from tests.wine.scenarios.lifecycle_program import (
    WINDOWS_EXPECTED,
    WINE8_EXPECTED,
    run_program,
)


@pytest.mark.parametrize(
    ("flavor", "expected"),
    [(Flavor.WINE8, WINE8_EXPECTED), (Flavor.WINDOWS, WINDOWS_EXPECTED)],
    ids=["wine8", "windows"],
)
def test_lifecycle_probe_results(flavor: Flavor, expected: dict[str, int]) -> None:
    """Every step of the probe gets the recorded result, and no call aborts or crashes."""
    results: dict[str, int] = {}
    run_program(RecordingBinding(FakeHttpSys(flavor)), 8080, results.__setitem__)
    assert expected == results
