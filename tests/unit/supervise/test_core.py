"""Supervisor decisions in virtual time: backoff, rapid-fail, boot failure, slots, escalation,
probes and recycling."""

from __future__ import annotations

import pytest

from orchestrator.supervise.core import (
    Child,
    ExitInfo,
    Halt,
    Kill,
    Policy,
    PoolHealth,
    ProbeState,
    Spawn,
    Terminate,
    escalate,
    on_exit,
    probe_verdict,
    reconcile_slots,
    recycle_reason,
    reset,
    restart_delay,
)

POLICY = Policy(
    processes=2,
    initial_backoff_s=0.1,
    max_backoff_s=1.0,
    reset_after_s=30.0,
    max_crashes=5,
    rapid_fail_interval_s=60.0,
)


def crash(
    at: float, started: float | None = None, code: int = 1, expected: bool = False
) -> ExitInfo:
    begun = at - 0.5 if started is None else started
    return ExitInfo(slot=0, at=at, started_at=begun, code=code, expected=expected)


def test_restart_delays_double_up_to_the_cap() -> None:
    """0.1, 0.2, 0.4, 0.8, then the 1 s cap."""
    assert [0.1, 0.2, 0.4, 0.8, 1.0, 1.0] == [restart_delay(n, POLICY) for n in range(1, 7)]


def test_a_crash_schedules_a_restart_after_the_backoff() -> None:
    """The first crash restarts after the initial delay."""
    decision = on_exit(PoolHealth(), crash(100.0), POLICY)
    assert 100.1 == pytest.approx(decision.restart_at)
    assert "exited with code 1" == decision.health.last_exit


def test_a_stop_we_asked_for_is_not_a_crash() -> None:
    """Expected exits neither restart nor count."""
    decision = on_exit(PoolHealth(), crash(5.0, expected=True), POLICY)
    assert (None, False, ()) == (decision.restart_at, decision.counted, decision.health.crashes)


def test_five_crashes_within_the_interval_halt_the_pool() -> None:
    """IIS rapid-fail protection: the fifth crash in 60 s stops the pool."""
    health = PoolHealth()
    decision = None
    for i in range(5):
        decision = on_exit(health, crash(100.0 + i), POLICY)
        health = decision.health
    assert decision is not None
    assert isinstance(decision.halt, Halt)
    assert "rapid-fail protection: 5 crashes within 60s" in health.halted
    assert decision.restart_at is None


def test_crashes_outside_the_interval_do_not_add_up() -> None:
    """Five crashes spread over more than the interval never trip it."""
    health = PoolHealth()
    for i in range(10):
        decision = on_exit(health, crash(100.0 + i * 20), POLICY)
        assert decision.halt is None
        health = decision.health


def test_a_stable_run_resets_the_backoff() -> None:
    """A process that ran past reset_after restarts after the initial delay again."""
    health = PoolHealth(consecutive=4)
    decision = on_exit(health, crash(1000.0, started=900.0), POLICY)
    assert 1000.1 == pytest.approx(decision.restart_at)


def test_a_boot_failure_halts_at_once() -> None:
    """Exit code 3 means "cannot boot": retrying cannot help."""
    decision = on_exit(PoolHealth(), crash(1.0, code=3), POLICY)
    assert decision.halt is not None
    assert "cannot boot" in decision.health.halted


def test_an_oom_kill_is_reported_as_such() -> None:
    """Out of memory is not described as an ordinary crash."""
    info = ExitInfo(slot=0, at=1.0, started_at=0.0, signal=9, oom=True)
    decision = on_exit(PoolHealth(), info, POLICY)
    assert "out of memory" in decision.health.last_exit
    assert 1 == decision.health.ooms


def test_reset_re_arms_a_halted_pool() -> None:
    """Crash history and halt are forgotten; the restart count stays for status."""
    halted = PoolHealth(crashes=(1.0, 2.0), consecutive=2, halted="x", restarts=7)
    assert PoolHealth(restarts=7) == reset(halted)


def test_empty_slots_are_filled_when_their_time_comes() -> None:
    """Slot 1 waits for its restart time; slot 0 is running."""
    children = [Child(slot=0, pid=10, started_at=0.0)]
    assert [] == reconcile_slots(children, POLICY, {1: 5.0}, now=4.0)
    assert [Spawn(1)] == reconcile_slots(children, POLICY, {1: 5.0}, now=5.0)


def test_a_halted_pool_starts_nothing() -> None:
    """Rapid-fail keeps the pool down."""
    assert [] == reconcile_slots([], POLICY, {}, now=0.0, halted=True)


def test_surplus_processes_stop_oldest_first() -> None:
    """Scaling 4 → 2 stops the processes in slots 2 and 3, the older first."""
    children = [
        Child(slot=s, pid=100 + s, started_at=t) for s, t in [(0, 1), (1, 2), (2, 9), (3, 5)]
    ]
    assert [Terminate(103), Terminate(102)] == reconcile_slots(children, POLICY, {}, now=10.0)


def test_stops_escalate_to_kill_after_the_grace() -> None:
    """SIGTERM first; after the grace, kill the whole group."""
    child = Child(slot=0, pid=7, started_at=0.0, term_at=10.0)
    assert [] == escalate([child], grace_s=5.0, now=14.9)
    assert [Kill(7)] == escalate([child], grace_s=5.0, now=15.0)


def test_a_pool_is_replaced_after_threshold_failed_probes() -> None:
    """Three failures in a row (not two, and a success in between resets)."""
    policy = Policy(unhealthy_threshold=3)
    state, replace = ProbeState(), False
    for ok in (False, False, True, False, False):
        state, replace = probe_verdict(state, ok, "", 0.0, policy)
        assert not replace
    state, replace = probe_verdict(state, False, "timed out", 0.0, policy)
    assert replace


@pytest.mark.parametrize(
    ("policy", "children", "now", "before", "after", "expected"),
    [
        (Policy(recycle_time_s=100), [], 150.0, None, None, "time: running for 100s"),
        (Policy(recycle_time_s=100), [], 90.0, None, None, ""),
        (
            Policy(recycle_requests=10),
            [Child(slot=0, pid=1, started_at=0, requests=10)],
            1.0,
            None,
            None,
            "requests: served 10",
        ),
        (
            Policy(recycle_memory_bytes=100),
            [Child(slot=0, pid=1, started_at=0, rss_bytes=101)],
            1.0,
            None,
            None,
            "memory: a process uses 101 bytes",
        ),
        (Policy(recycle_schedule=("03:00",)), [], 1.0, 179, 180, "schedule: 03:00"),
        (Policy(recycle_schedule=("03:00",)), [], 1.0, 180, 181, ""),
        (Policy(recycle_schedule=("00:00",)), [], 1.0, 1439, 0, "schedule: 00:00"),
    ],
)
def test_recycle_triggers(
    policy: Policy,
    children: list[Child],
    now: float,
    before: int | None,
    after: int | None,
    expected: str,
) -> None:
    """Time, requests, memory and schedule each trigger an overlapped recycle."""
    assert expected == recycle_reason(
        0.0, now, children, policy, wall_minutes_before=before, wall_minutes_now=after
    )
