"""The coalescing trigger: many sets, one wake-up, no payload."""

from __future__ import annotations

import threading

from orchestrator.reconcile.trigger import Trigger


def test_a_burst_of_sets_is_one_wake_up() -> None:
    """Ten sets before the loop looks are consumed as one."""
    trigger = Trigger()
    for _ in range(10):
        trigger.set()
    assert trigger.wait(0)
    assert not trigger.wait(0)
    trigger.close()


def test_an_unset_trigger_times_out() -> None:
    """wait returns False after its timeout when nobody set it."""
    trigger = Trigger()
    assert not trigger.wait(0.01)
    trigger.close()


def test_a_set_from_another_thread_wakes_the_waiter() -> None:
    """The self-pipe works across threads."""
    trigger = Trigger()
    threading.Timer(0.01, trigger.set).start()
    assert trigger.wait(5)
    trigger.close()


def test_setting_never_blocks_even_when_the_pipe_is_full() -> None:
    """A signal handler may set it any number of times."""
    trigger = Trigger()
    for _ in range(200_000):
        trigger.set()
    assert trigger.consume()
    trigger.close()
