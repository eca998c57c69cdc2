"""The listener's connection timers, decided in virtual time: header wait, idle keep-alive, entity
body and the minimum send rate (``listener.timers``), on a ``FakeClock``."""

from __future__ import annotations

import time
from types import ModuleType, SimpleNamespace

import pytest

from orchestrator.backends.linux.listener.config import Settings
from orchestrator.backends.linux.listener.phase import Phase
from orchestrator.backends.linux.listener.timers import (
    SEND_RATE_GRACE_S,
    Expiry,
    WriteMark,
    expired,
    send_rate,
)
from orchestrator.clock import FakeClock
from tests.unit.listener.cores import available_cores

SETTINGS = Settings(header_wait_s=2.0, idle_connection_s=3.0, entity_body_s=4.0, min_send_rate=100)


def _expired(
    phase: Phase,
    since: float,
    clock: FakeClock,
    *,
    body_limit_s: float = 4.0,
    body_done: bool = False,
) -> Expiry | None:
    return expired(
        phase, since, clock.monotonic(), SETTINGS, body_limit_s=body_limit_s, body_done=body_done
    )


@pytest.mark.parametrize(
    ("phase", "limit_s", "expiry"),
    [
        (Phase.HEAD, 2.0, Expiry.HEADER_WAIT),
        (Phase.IDLE, 3.0, Expiry.IDLE),
        (Phase.BODY, 4.0, Expiry.ENTITY_BODY),
    ],
)
def test_a_phase_timer_runs_out_only_after_its_limit(
    phase: Phase, limit_s: float, expiry: Expiry
) -> None:
    """At the limit the connection is still within it; just after, its timer has run out."""
    clock = FakeClock()
    since = clock.monotonic()
    clock.advance(limit_s)
    assert _expired(phase, since, clock) is None
    clock.advance(0.001)
    assert expiry is _expired(phase, since, clock)


@pytest.mark.parametrize("phase", [Phase.WAIT, Phase.CLOSING])
def test_waiting_for_the_worker_or_closing_has_no_timer(phase: Phase) -> None:
    """The request is the worker's (its queue timer is elsewhere), or the connection is going."""
    clock = FakeClock()
    since = clock.monotonic()
    clock.advance(3600)
    assert _expired(phase, since, clock) is None


def test_a_route_sets_its_own_entity_body_timer() -> None:
    """The body limit is the route's (a URL group's override), not the session's."""
    clock = FakeClock()
    since = clock.monotonic()
    clock.advance(5.0)
    assert _expired(Phase.BODY, since, clock, body_limit_s=10.0) is None
    assert Expiry.ENTITY_BODY is _expired(Phase.BODY, since, clock, body_limit_s=4.5)


def test_a_complete_body_stops_the_entity_body_timer() -> None:
    """Once the body is in, a slow worker is not the client's fault."""
    clock = FakeClock()
    since = clock.monotonic()
    clock.advance(60)
    assert _expired(Phase.BODY, since, clock, body_done=True) is None


def test_the_counter_names_are_http_sys_ones() -> None:
    """An expiry's value is the error counter the listener reports."""
    assert ["Timer_HeaderWait", "Timer_ConnectionIdle", "Timer_EntityBody"] == [
        Expiry.HEADER_WAIT,
        Expiry.IDLE,
        Expiry.ENTITY_BODY,
    ]


def _sweeps(clock: FakeClock, buffers: list[int], min_rate: int = 100) -> list[bool]:
    """Once-a-second checks of a write buffer holding ``buffers[i]`` bytes at second ``i``."""
    mark: WriteMark = (clock.monotonic(), 0)
    verdicts = []
    for buffered in buffers:
        too_slow, mark = send_rate(mark, buffered, clock.monotonic(), min_rate)
        verdicts.append(too_slow)
        clock.advance(1.0)
    return verdicts


def test_a_client_that_reads_nothing_is_reset_after_the_grace_period() -> None:
    """A full buffer that does not drain: nothing during the 5 s grace, a reset after it."""
    verdicts = _sweeps(FakeClock(), [50_000] * 8)
    first = verdicts.index(True)
    assert SEND_RATE_GRACE_S == first  # marked when the bytes first wait, checked 5 s later
    assert not any(verdicts[:first])


def test_a_client_reading_at_the_minimum_rate_is_kept() -> None:
    """100 B/s of progress meets a 100 B/s minimum; the mark moves on with each check."""
    assert not any(_sweeps(FakeClock(), [50_000 - 100 * i for i in range(20)]))


def test_a_client_reading_under_the_minimum_rate_is_reset() -> None:
    """99 B/s against a 100 B/s minimum."""
    assert any(_sweeps(FakeClock(), [50_000 - 99 * i for i in range(20)]))


def test_an_empty_buffer_restarts_the_grace_period() -> None:
    """A buffer that empties now and then never accumulates a slow period."""
    assert not any(_sweeps(FakeClock(), [50_000, 50_000, 50_000, 50_000, 0] * 4))


def test_no_minimum_rate_means_no_reset() -> None:
    """``minSendRate: 0`` turns the check off."""
    assert not any(_sweeps(FakeClock(), [50_000] * 30, min_rate=0))


@pytest.mark.parametrize("hot_path", available_cores(), ids=lambda m: str(m.IMPLEMENTATION))
def test_a_connection_starts_its_timer_on_the_apps_clock(hot_path: ModuleType) -> None:
    """Both cores read the app's injected clock (the compiled one reads CLOCK_MONOTONIC itself only
    when the app's clock is ``time.monotonic``)."""
    clock = FakeClock(start=123.0)
    client = hot_path.FastClient(SimpleNamespace(fast_enabled=True, now=clock.monotonic), "http")
    assert 123.0 == client.since
    real = hot_path.FastClient(SimpleNamespace(fast_enabled=True, now=time.monotonic), "http")
    assert abs(time.monotonic() - real.since) < 1.0
