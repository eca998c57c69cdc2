"""The reconcile loop in virtual time: fault injection, skipped dependents, backoff, guards, events."""

from __future__ import annotations

import random

import pytest

from orchestrator.backends.fake import FakeBackend
from orchestrator.clock import FakeClock
from orchestrator.errors import (
    PermanentBackendError,
    PlanError,
    StalePlanError,
    TemporaryBackendError,
)
from orchestrator.reconcile.backoff import Backoff
from orchestrator.reconcile.events import EventLog
from orchestrator.reconcile.reconciler import Reconciler
from tests.support.states import site


def _make(
    fail_on: dict[str, object] | None = None,
) -> tuple[Reconciler, FakeBackend, FakeClock, EventLog]:
    backend = FakeBackend(fail_on=fail_on)  # type: ignore[arg-type]
    clock = FakeClock()
    events = EventLog(clock)
    policy = Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.0)
    return (
        Reconciler(backend, clock, events=events, backoff=policy, rng=random.Random(7)),
        backend,
        clock,
        events,
    )


def test_a_pass_from_nothing_converges() -> None:
    """Everything is created and a re-diff is empty."""
    reconciler, _backend, _, _ = _make()
    result = reconciler.reconcile_once(site())
    assert result.converged
    assert 7 == result.count("applied")
    assert None is result.requeue_after_s
    assert 1 == reconciler.generation


def test_a_failed_step_skips_its_dependents_and_spares_the_rest() -> None:
    """The api queue fails: its group and pool are skipped, the web objects are applied."""
    reconciler, _backend, _, _ = _make({"create queue/api": TemporaryBackendError("disk full")})
    result = reconciler.reconcile_once(site())
    status = {o.step_id: o.status for o in result.outcomes}
    assert "failed" == status["create queue/api"]
    assert "skipped" == status["create urlgroup/api"]
    assert "skipped" == status["create worker/api"]
    assert {
        "create session/main",
        "create queue/web",
        "create urlgroup/web",
        "create worker/web",
    } == {s for s, v in status.items() if v == "applied"}
    assert ["create queue/api"] == [o.step_id for o in result.failed]
    assert not result.converged
    assert 1.0 == result.requeue_after_s


def test_backoff_grows_until_the_cap_and_success_resets_it() -> None:
    """1s, 2s, 4s, 8s, 8s; then the error goes away and the object converges with no backoff."""
    failing = {"create queue/api": TemporaryBackendError("busy")}
    reconciler, backend, clock, _ = _make(failing)  # type: ignore[arg-type]
    delays = []
    for _ in range(5):
        result = reconciler.reconcile_once(site())
        delays.append(result.requeue_after_s)
        clock.advance(result.requeue_after_s or 0)
    assert [1.0, 2.0, 4.0, 8.0, 8.0] == delays
    backend.fail_on.clear()
    result = reconciler.reconcile_once(site())
    assert result.converged
    assert {} == reconciler.backoffs


def test_an_object_in_backoff_is_deferred_not_retried() -> None:
    """Before its retry time the step is not attempted at all."""
    reconciler, backend, clock, _ = _make({"create queue/api": TemporaryBackendError("busy")})
    reconciler.reconcile_once(site())
    attempts = backend.applied_steps.copy()
    clock.advance(0.5)
    result = reconciler.reconcile_once(site())
    assert "deferred" == {o.step_id: o.status for o in result.outcomes}["create queue/api"]
    assert attempts == backend.applied_steps


def test_a_new_definition_is_tried_at_once_whatever_the_backoff() -> None:
    """A pool halted by rapid-fail asks for a minute; the user fixes the manifest: the new
    definition goes now, not when the old one's backoff ends."""
    reconciler, backend, _clock, _ = _make(
        {"create worker/api": TemporaryBackendError("stopped", delay_s=60.0)}
    )
    reconciler.reconcile_once(site("app"))
    again = reconciler.reconcile_once(site("app"))
    assert "deferred" == {o.step_id: o.status for o in again.outcomes}["create worker/api"]
    backend.fail_on.clear()
    result = reconciler.reconcile_once(site("app-v2"))
    assert "applied" == {o.step_id: o.status for o in result.outcomes}["create worker/api"]
    assert result.converged


def test_a_temporary_error_hint_lengthens_the_wait() -> None:
    """A backend may ask for a longer delay than the policy's."""
    reconciler, _, _, _ = _make({"create queue/api": TemporaryBackendError("later", delay_s=5.0)})
    assert 5.0 == reconciler.reconcile_once(site()).requeue_after_s


def test_a_permanent_error_waits_for_a_new_definition() -> None:
    """Not retried, whatever the time, until the object's definition changes."""
    reconciler, backend, clock, _ = _make(
        {"create worker/api": PermanentBackendError("no such user")}
    )
    reconciler.reconcile_once(site("app"))
    clock.advance(3600)
    result = reconciler.reconcile_once(site("app"))
    assert "deferred" == {o.step_id: o.status for o in result.outcomes}["create worker/api"]
    backend.fail_on.clear()
    result = reconciler.reconcile_once(site("app-v2"))
    assert result.converged


def test_a_bug_in_a_backend_is_logged_with_its_traceback_and_retried() -> None:
    """An unexpected exception does not kill the pass: it is an error event with a traceback."""

    def boom(step: object) -> None:
        raise ZeroDivisionError("oops")

    reconciler, backend, clock, events = _make({"create queue/web": boom})  # type: ignore[dict-item]
    result = reconciler.reconcile_once(site())
    failed = [e for e in events.since() if e["event"] == "step_failed"]
    assert "ZeroDivisionError" in str(failed[0]["traceback"])
    assert 1 == len(result.failed)
    backend.fail_on.clear()
    clock.advance(10)
    assert reconciler.reconcile_once(site()).converged


def test_the_mass_delete_guard_stops_a_pass_before_any_change() -> None:
    """An empty manifest against a running site is refused unless allowed."""
    from tests.support.states import desired

    reconciler, backend, _, _ = _make()
    reconciler.reconcile_once(site())
    before = dict(backend.store)
    with pytest.raises(PlanError, match="mass-delete guard"):
        reconciler.reconcile_once(desired())
    assert before == backend.store
    assert reconciler.reconcile_once(desired(), allow_mass_delete=True).converged
    assert {} == backend.store


def test_a_stale_fingerprint_is_refused() -> None:
    """apply PLANFILE: live state changed since the plan, so nothing is applied."""
    reconciler, _backend, _, _ = _make()
    fingerprint = reconciler.plan(site()).base_fingerprint
    reconciler.reconcile_once(site())
    with pytest.raises(StalePlanError, match="Plan is stale"):
        reconciler.reconcile_once(site("app-v2"), expected_fingerprint=fingerprint)


def test_every_event_of_a_pass_carries_its_reconcile_id() -> None:
    """One id per pass, on every record."""
    reconciler, _, _, events = _make()
    result = reconciler.reconcile_once(site())
    records = events.since()
    assert records
    assert {result.reconcile_id} == {r["reconcile_id"] for r in records}
    assert ["reconcile_start", "step_start"] == [r["event"] for r in records[:2]]
    assert "reconcile_done" == records[-1]["event"]


def test_drift_is_corrected_by_the_next_pass() -> None:
    """An object removed by hand is reported as drift and created again."""
    from orchestrator.model import Key, Kind

    reconciler, backend, _, events = _make()
    reconciler.reconcile_once(site())
    backend.remove(Key(Kind.URLGROUP, "web"))
    result = reconciler.reconcile_once(site())
    assert result.converged
    assert ["create urlgroup/web"] == [o.step_id for o in result.outcomes]
    assert any(e["event"] == "drift" and e["reason"] == "deleted_outside" for e in events.since())
