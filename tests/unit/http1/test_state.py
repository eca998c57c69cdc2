"""The connection state machine: one table, undefined transitions refused, ERROR sticky."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.http1 import LocalProtocolError
from orchestrator.http1.state import TRANSITIONS, Input, State, StateMachine

UNDEFINED = [
    pytest.param(s, i, id=f"{s.value}-{i.value}")
    for s, i in itertools.product(State, Input)
    if (s, i) not in TRANSITIONS
]


def _machine_in(state: State) -> StateMachine:
    machine = StateMachine()
    machine.state = state
    return machine


@pytest.mark.parametrize(
    ("state", "event"), [pytest.param(s, i, id=f"{s.value}-{i.value}") for (s, i) in TRANSITIONS]
)
def test_listed_transition_leads_where_the_table_says(state: State, event: Input) -> None:
    """Every entry of TRANSITIONS is what process() does."""
    assert TRANSITIONS[state, event] is _machine_in(state).process(event)


@pytest.mark.parametrize(("state", "event"), UNDEFINED)
def test_unlisted_transition_is_a_local_error_and_sticks(state: State, event: Input) -> None:
    """An input the table does not list is our bug: LocalProtocolError, and the machine is in ERROR."""
    machine = _machine_in(state)
    with pytest.raises(LocalProtocolError):
        machine.process(event)
    assert State.ERROR is machine.state


@pytest.mark.parametrize("state", list(State))
def test_error_is_reachable_from_every_state(state: State) -> None:
    """Any protocol error, wherever it happens, moves to ERROR."""
    assert State.ERROR is _machine_in(state).process(Input.ERROR)


@pytest.mark.parametrize("event", [i for i in Input if i is not Input.ERROR])
def test_error_state_has_no_way_out(event: Input) -> None:
    """ERROR is sticky: nothing leaves it."""
    with pytest.raises(LocalProtocolError):
        _machine_in(State.ERROR).process(event)


def test_a_keep_alive_cycle_returns_to_idle() -> None:
    """Head, body, end with keep-alive, next: back to IDLE for the next pipelined message."""
    machine = StateMachine()
    for event in (Input.HEAD, Input.DATA, Input.END_KEEP_ALIVE, Input.NEXT):
        machine.process(event)
    assert State.IDLE is machine.state
