"""Apply with rollback (``Rollout``) on the fake backend, in virtual time: what runs afterwards, what is
reported (exit code, message, ``reload_outcome``, metrics) and what is remembered as rejected."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from typing import NoReturn

import pytest

from orchestrator.backends.fake import FakeBackend
from orchestrator.clock import FakeClock
from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.manifest.load import LoadedManifest, ManifestFile, ManifestSet
from orchestrator.model import DesiredState, Key, Kind, Resource
from orchestrator.reconcile.backoff import Backoff
from orchestrator.reconcile.events import EventLog
from orchestrator.reconcile.manifests import ManifestTracker
from orchestrator.reconcile.reconciler import Reconciler, StepStatus
from orchestrator.reconcile.rollout import (
    EXIT_APPLIED,
    EXIT_FAILED_BEFORE,
    EXIT_INCOMPLETE,
    EXIT_ROLLED_BACK,
    ReloadOutcome,
    Rollout,
)
from tests.support.states import group, pool, queue, session, site


@dataclass
class RecordingMetrics:
    """``ReloadMetrics`` that remembers every call."""

    calls: list[tuple[str, object, float]] = field(default_factory=list)

    def reload(self, ok: bool, ts: float) -> None:
        self.calls.append(("reload", ok, ts))

    def reconciled(self, result: str, seconds: float) -> None:
        self.calls.append(("reconciled", result, seconds))


@dataclass
class World:
    rollout: Rollout
    backend: FakeBackend
    tracker: ManifestTracker
    events: EventLog
    metrics: RecordingMetrics
    clock: FakeClock

    def events_named(self, name: str) -> list[dict[str, object]]:
        return [r for r in self.events.since(0) if r["event"] == name]

    def names(self) -> list[str]:
        return [str(r["event"]) for r in self.events.since(0)]


@pytest.fixture
def world(tmp_path: object) -> World:
    clock = FakeClock()
    events = EventLog(clock)
    backend = FakeBackend(clock=clock, emit=events.emit)
    reconciler = Reconciler(
        backend,
        clock,
        events=events,
        backoff=Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.0),
        rng=random.Random(7),
    )
    tracker = ManifestTracker(os.path.join(str(tmp_path), "state"))
    metrics = RecordingMetrics()
    rollout = Rollout(reconciler, tracker, clock, events=events, metrics=metrics)
    return World(rollout, backend, tracker, events, metrics, clock)


def _manifest(state: DesiredState, text: str) -> LoadedManifest:
    """A loaded manifest whose hash is that of ``text`` (its one file)."""
    source = ManifestSet("/etc/orchestrator", (ManifestFile("site.yaml", text.encode()),))
    return LoadedManifest(DesiredState.of(dict(state.resources), source.sha256), source)


def _with(*extra: Resource, command: str = "app") -> DesiredState:
    return DesiredState.of({**site(command).resources, **{r.key: r for r in extra}})


DOCS = (queue("docs"), group("docs", "docs", "http://+:8080/docs/"), pool("docs", "docs", "d"))
V1 = _manifest(site(), "v1")
V2_DOCS = _manifest(_with(*DOCS), "v2: docs")
V2_API = _manifest(site("app-v2"), "v2: api")


def _applied(world: World, loaded: LoadedManifest) -> None:
    report = world.rollout.apply(loaded, source="apply")
    assert EXIT_APPLIED == report.exit_code, report.message
    world.metrics.calls.clear()


def test_a_manifest_that_applies_runs_and_becomes_last_known_good(world: World) -> None:
    """From nothing: every object is created, the manifest runs and is persisted as LKG."""
    report = world.rollout.apply(V1, source="apply")
    assert EXIT_APPLIED == report.exit_code
    assert ReloadOutcome.APPLIED == report.outcome
    assert "Apply complete. 7 added, 0 changed, 0 replaced, 0 destroyed." == report.message
    assert report.result is not None
    assert report.result.converged
    assert V1.desired.manifest_sha256 == world.tracker.running_sha256
    with open(world.tracker.lkg_path, encoding="utf-8") as fh:
        assert V1.desired.manifest_sha256 == json.load(fh)["sha256"]
    assert [("reload", True, world.clock.wall())] == world.metrics.calls


def test_an_applied_manifest_is_reported_with_its_summary(world: World) -> None:
    """``reload_outcome`` says who asked, which manifest, ``applied`` and the plan's counts."""
    world.rollout.apply(V1, source="reload")
    (event,) = world.events_named("reload_outcome")
    assert {
        "source": "reload",
        "manifest": V1.desired.manifest_sha256[:12],
        "outcome": "applied",
        "summary": {"add": 7, "change": 0, "replace": 0, "destroy": 0, "drift": 0},
    } == {k: v for k, v in event.items() if k not in ("seq", "ts", "event")}


def test_a_manifest_that_changes_nothing_says_so(world: World) -> None:
    """Applying the running manifest again is an empty plan, applied, with its own sentence."""
    _applied(world, V1)
    report = world.rollout.apply(V1, source="apply")
    assert EXIT_APPLIED == report.exit_code
    assert "No changes. Live state matches the manifest." == report.message


def test_a_failed_step_rolls_back_to_the_manifest_that_ran(world: World) -> None:
    """v2 adds an app whose pool fails: its queue and group, already created, are deleted again,
    and exactly v1's objects are left; exit 3."""
    _applied(world, V1)
    world.backend.fail_on["create worker/docs"] = TemporaryBackendError("no such binary")
    report = world.rollout.apply(V2_DOCS, source="apply")
    assert EXIT_ROLLED_BACK == report.exit_code
    assert ReloadOutcome.ROLLED_BACK == report.outcome
    assert (
        "Apply failed (create worker/docs: no such binary); rolled back to manifest "
        f"{V1.desired.manifest_sha256[:12]}."
    ) == report.message
    assert dict(V1.desired.resources) == world.backend.store
    assert {"delete queue/docs", "delete urlgroup/docs"} <= set(world.backend.applied_steps)


def test_the_failed_pass_is_returned_with_its_outcomes(world: World) -> None:
    """The result is the pass that failed (its root cause and skipped dependents), not the
    rollback's."""
    _applied(world, V1)
    world.backend.fail_on["create queue/docs"] = TemporaryBackendError("disk full")
    report = world.rollout.apply(V2_DOCS, source="apply")
    assert report.result is not None
    assert {
        "create queue/docs": StepStatus.FAILED,
        "create urlgroup/docs": StepStatus.SKIPPED,
        "create worker/docs": StepStatus.SKIPPED,
    } == {o.step_id: o.status for o in report.result.outcomes}


def test_a_rollback_is_reported_in_order(world: World) -> None:
    """``rollback_start``, the rollback's pass, ``rollback_complete``, then ``reload_outcome``
    ``rolled_back`` with the message as its error; the reload metric drops, the pass counts as
    rolled back."""
    _applied(world, V1)
    world.backend.fail_on["create worker/docs"] = PermanentBackendError("no such user")
    report = world.rollout.apply(V2_DOCS, source="reload")
    names = world.names()
    start = names.index("rollback_start")
    assert names.index("rollback_complete") > start
    assert "reload_outcome" == names[-1]
    assert "reconcile_start" in names[start:]
    assert V1.desired.manifest_sha256[:12] == world.events_named("rollback_start")[0]["manifest"]
    assert True is world.events_named("rollback_complete")[0]["converged"]
    outcome = world.events_named("reload_outcome")[-1]
    assert ("reload", "rolled_back", report.message) == (
        outcome["source"],
        outcome["outcome"],
        outcome["error"],
    )
    assert [("reload", False, 0.0), ("reconciled", "rolled_back", 0.0)] == world.metrics.calls


def test_a_failed_manifest_is_rejected_and_the_previous_one_is_desired(world: World) -> None:
    """After a rollback the tracker wants v1 again, and v2 is rejected at the apply stage, with
    its root cause, and not tried again until it changes."""
    _applied(world, V1)
    world.backend.fail_on["create worker/docs"] = TemporaryBackendError("no such binary")
    world.rollout.apply(V2_DOCS, source="reload")
    assert world.tracker.desired is V1
    rejected = world.tracker.rejected
    assert rejected is not None
    assert (V2_DOCS.desired.manifest_sha256, "apply") == (rejected.sha256, rejected.stage)
    assert "no such binary" == rejected.summary()
    assert not world.tracker.should_try(V2_DOCS.desired.manifest_sha256)
    assert V1.desired.manifest_sha256 == world.tracker.running_sha256


def test_a_rollback_that_fails_is_reported_incomplete(world: World) -> None:
    """The rollback cannot delete the new URL group: exit 4, ``partially_applied``, and the
    operator is told to look."""
    _applied(world, V1)
    world.backend.fail_on["create worker/docs"] = TemporaryBackendError("no such binary")
    world.backend.fail_on["delete urlgroup/docs"] = TemporaryBackendError("busy")
    report = world.rollout.apply(V2_DOCS, source="apply")
    assert EXIT_INCOMPLETE == report.exit_code
    assert ReloadOutcome.PARTIALLY_APPLIED == report.outcome
    assert report.message.endswith(
        "rollback incomplete: an operator must look (orchestrator status)."
    )
    assert "partially_applied" == world.events_named("reload_outcome")[-1]["outcome"]
    assert False is world.events_named("rollback_complete")[0]["converged"]
    assert ("reconciled", "error", 0.0) in world.metrics.calls


def test_a_first_manifest_that_fails_has_nothing_to_roll_back_to(world: World) -> None:
    """No manifest ran before: nothing is undone, exit 4, and no rollback is attempted."""
    world.backend.fail_on["create queue/api"] = TemporaryBackendError("disk full")
    report = world.rollout.apply(V1, source="apply")
    assert EXIT_INCOMPLETE == report.exit_code
    assert "Apply failed (create queue/api: disk full); nothing to roll back to." == report.message
    assert "rollback_start" not in world.names()
    assert "partially_applied" == world.events_named("reload_outcome")[-1]["outcome"]


def test_the_mass_delete_guard_refuses_before_any_change(world: World) -> None:
    """A manifest that lost every app is refused: nothing is applied, exit 1, no result; the
    refusal is the rendered guard diagnostic, and the running manifest stays desired."""
    _applied(world, V1)
    steps = list(world.backend.applied_steps)
    emptied = _manifest(DesiredState.of({session().key: session()}), "truncated")
    report = world.rollout.apply(emptied, source="reload")
    assert EXIT_FAILED_BEFORE == report.exit_code
    assert ReloadOutcome.REFUSED == report.outcome
    assert report.result is None
    assert report.message.startswith("refusing to delete 6 of 7 objects (mass-delete guard)")
    assert "--allow-mass-delete" in report.message
    assert steps == world.backend.applied_steps
    assert world.tracker.desired is V1
    assert world.tracker.rejected is not None
    assert "apply" == world.tracker.rejected.stage


def test_a_refusal_is_reported_as_rejected_then_refused(world: World) -> None:
    """``manifest_rejected`` (keeping the running manifest) comes before ``reload_outcome``
    ``refused``, whose error is the refusal's summary."""
    _applied(world, V1)
    emptied = _manifest(DesiredState.of({}), "empty")
    world.rollout.apply(emptied, source="reload")
    rejected = world.events_named("manifest_rejected")[-1]
    assert ("apply", V1.desired.manifest_sha256[:12]) == (rejected["stage"], rejected["keeping"])
    outcome = world.events_named("reload_outcome")[-1]
    assert ("refused", "refusing to delete every object (mass-delete guard)") == (
        outcome["outcome"],
        outcome["error"],
    )
    assert [("reload", False, 0.0)] == world.metrics.calls


def test_consent_lets_a_mass_delete_through(world: World) -> None:
    """With ``allow_mass_delete`` the same manifest applies."""
    _applied(world, V1)
    emptied = _manifest(DesiredState.of({}), "empty")
    report = world.rollout.apply(emptied, source="apply", allow_mass_delete=True)
    assert EXIT_APPLIED == report.exit_code
    assert {} == world.backend.store


def test_a_stale_plan_is_refused_before_any_change(world: World) -> None:
    """A reviewed plan's fingerprint that no longer matches live state: refused like the guard
    (exit 1, nothing applied), and the refusal says the plan is stale."""
    _applied(world, V1)
    steps = list(world.backend.applied_steps)
    report = world.rollout.apply(V2_API, source="apply", expected_fingerprint="0" * 64)
    assert EXIT_FAILED_BEFORE == report.exit_code
    assert report.message.startswith("Plan is stale")
    assert steps == world.backend.applied_steps


def test_the_same_rejection_is_reported_once(world: World) -> None:
    """Rejecting a hash that is already the rejected one says nothing new."""
    world.rollout.reject("a" * 64, (), "load")
    world.rollout.reject("a" * 64, (), "load")
    assert 1 == len(world.events_named("manifest_rejected"))
    assert [("reload", False, 0.0)] == world.metrics.calls


def test_a_changed_pool_that_fails_rolls_back_to_its_old_definition(world: World) -> None:
    """A new command for the api pool fails to start: the old pool's definition is live again."""
    _applied(world, V1)
    world.backend.fail_on["replace_cbd worker/api"] = TemporaryBackendError("did not become ready")
    report = world.rollout.apply(V2_API, source="apply")
    assert EXIT_ROLLED_BACK == report.exit_code, report.message
    assert (
        V1.desired.resources[Key(Kind.WORKER, "api")]
        == world.backend.store[Key(Kind.WORKER, "api")]
    )


# -- the periodic pass ---------------------------------------------------------------------------
def test_resync_without_a_manifest_does_nothing(world: World) -> None:
    """Before any manifest is desired there is no pass."""
    assert None is world.rollout.resync()
    assert [] == world.events.since(0)


def test_resync_converges_the_desired_manifest_and_makes_it_last_known_good(world: World) -> None:
    """A loaded (accepted) manifest is applied by the next pass, counted as a success."""
    world.tracker.accept(V1)
    result = world.rollout.resync()
    assert result is not None
    assert result.converged
    assert V1.desired.manifest_sha256 == world.tracker.running_sha256
    assert [("reconciled", "success", 0.0)] == world.metrics.calls


def test_resync_that_does_not_converge_counts_as_an_error(world: World) -> None:
    """A step in backoff: the pass returns, and is counted as an error; nothing becomes LKG."""
    world.backend.fail_on["create queue/api"] = TemporaryBackendError("disk full")
    world.tracker.accept(V1)
    result = world.rollout.resync()
    assert result is not None
    assert not result.converged
    assert "" == world.tracker.running_sha256
    assert [("reconciled", "error", 0.0)] == world.metrics.calls


def test_a_refused_resync_falls_back_to_the_running_manifest(world: World) -> None:
    """The desired manifest would delete everything: rejected, and the running one is desired
    again."""
    _applied(world, V1)
    emptied = _manifest(DesiredState.of({}), "empty")
    world.tracker.accept(emptied)
    assert None is world.rollout.resync()
    assert world.tracker.desired is V1
    assert world.tracker.rejected is not None
    assert emptied.desired.manifest_sha256 == world.tracker.rejected.sha256
    assert ("reconciled", "error", 0.0) in world.metrics.calls


def test_a_crashing_pass_is_logged_with_its_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug below the reconciler: ``reconcile_crashed`` with the traceback; no result."""

    def observe() -> NoReturn:
        raise RuntimeError("bug")

    world.tracker.accept(V1)
    monkeypatch.setattr(world.backend, "observe", observe)
    assert None is world.rollout.resync()
    (crash,) = world.events_named("reconcile_crashed")
    assert "RuntimeError: bug" in str(crash["traceback"])
    assert [("reconciled", "error", 0.0)] == world.metrics.calls
