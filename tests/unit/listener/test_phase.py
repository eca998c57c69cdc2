"""Connection phases: one closed enum, and both hot-path cores hand its members to Python."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import pytest

from orchestrator.backends.linux.listener.phase import Phase
from tests.unit.listener.cores import available_cores


@pytest.fixture(params=available_cores(), ids=lambda m: str(m.IMPLEMENTATION))
def hot_path(request: pytest.FixtureRequest) -> ModuleType:
    """Each hot-path core this build has (the compiled one when it is built)."""
    assert isinstance(request.param, ModuleType)
    return request.param


def test_the_phases_are_a_closed_set_in_cycle_order() -> None:
    """Five phases, valued as the compiled core's C ints."""
    assert [("HEAD", 0), ("BODY", 1), ("WAIT", 2), ("IDLE", 3), ("CLOSING", 4)] == [
        (p.name, p.value) for p in Phase
    ]


def test_a_core_exports_the_enum_members(hot_path: ModuleType) -> None:
    """``HEAD`` … ``CLOSING`` of either core are the ``Phase`` members themselves."""
    exported = [hot_path.HEAD, hot_path.BODY, hot_path.WAIT, hot_path.IDLE, hot_path.CLOSING]
    assert list(Phase) == exported
    assert all(type(p) is Phase for p in exported)


def test_a_connection_reports_its_phase_as_a_member(hot_path: ModuleType) -> None:
    """A new connection is in ``Phase.HEAD``; a phase set from Python reads back as a member."""
    app = SimpleNamespace(fast_enabled=True, now=lambda: 5.0)
    client = hot_path.FastClient(app, "http")
    assert client.state is Phase.HEAD
    client.state = Phase.IDLE
    assert client.state is Phase.IDLE
