"""One reconcile pass, controller-runtime style: observe, diff, apply as an interpreter, re-observe.

Owns: ``Reconciler``, ``Result``, ``StepOutcome`` and ``StepStatus`` (the closed set of step
outcomes). The reconciler is the controller's memory: what was last applied (for drift), the
generation, and per-object backoff. A failed step skips its dependents and is reported once, at its
root; unrelated objects go on. Temporary errors back off exponentially with jitter per object;
permanent errors wait for a different definition; a bug (any other exception) is logged with its
traceback and treated as temporary.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import secrets
import traceback
from dataclasses import dataclass
from types import MappingProxyType

from orchestrator.backends.base import Backend
from orchestrator.clock import Clock
from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.model.desired import DesiredState, Resource
from orchestrator.model.ids import Key
from orchestrator.model.live import LiveState
from orchestrator.plan.diff import make_plan
from orchestrator.plan.guard import check_mass_delete
from orchestrator.plan.rules import ChangeRules
from orchestrator.plan.stale import check_live_unchanged
from orchestrator.plan.steps import Op, Plan, Step
from orchestrator.reconcile.backoff import Backoff, ObjectBackoff
from orchestrator.reconcile.events import EventSink

#: Requeue soon when a pass applied everything yet did not converge (e.g. a process still starting).
SETTLE_S = 1.0


class StepStatus(enum.StrEnum):
    """What happened to one step; the values are the words of the JSON and the logs."""

    APPLIED = "applied"
    FAILED = "failed"  # a root cause: reported
    SKIPPED = "skipped"  # a step it requires failed, or was deferred, in this pass
    DEFERRED = "deferred"  # not attempted: in backoff, or failed for good with this definition


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happened to one step: applied, failed, skipped (upstream failed) or deferred (backoff)."""

    step_id: str
    key: Key
    status: StepStatus
    error: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one pass."""

    reconcile_id: str
    plan: Plan
    outcomes: tuple[StepOutcome, ...]
    converged: bool
    requeue_after_s: float | None

    @property
    def failed(self) -> tuple[StepOutcome, ...]:
        """The root-cause failures (not the skipped dependents)."""
        return tuple(o for o in self.outcomes if o.status is StepStatus.FAILED)

    def count(self, status: StepStatus) -> int:
        """How many steps ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)


class _NullSink:
    def emit(self, event: str, **fields: object) -> None:
        return None


class Reconciler:
    """Drives a backend toward a desired state, one pass at a time."""

    def __init__(
        self,
        backend: Backend,
        clock: Clock,
        *,
        events: EventSink | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.events: EventSink = events or _NullSink()
        self.policy = backoff or Backoff()
        self.rng = rng or random.Random()  # jitter, not cryptography
        self.applied: dict[Key, Resource] = {}
        self.generation = 0
        self.manifest_sha256 = ""
        self.backoffs: dict[Key, ObjectBackoff] = {}

    def live(self) -> LiveState:
        """Observe the backend and add the controller's memory (last applied, generation)."""
        observed = self.backend.observe()
        return dataclasses.replace(
            observed,
            applied=MappingProxyType(dict(self.applied)),
            generation=self.generation,
            manifest_sha256=self.manifest_sha256,
        )

    def rules(self) -> ChangeRules:
        """What the backend declares it cannot change in place (its plans follow it)."""
        return self.backend.capabilities().changes

    def plan(self, desired: DesiredState) -> Plan:
        """The plan a pass would apply now (a dry run)."""
        return make_plan(desired, self.live(), self.rules())

    def reconcile_once(
        self,
        desired: DesiredState,
        *,
        allow_mass_delete: bool = False,
        expected_fingerprint: str | None = None,
        reconcile_id: str | None = None,
    ) -> Result:
        """Run one pass.

        Args:
            desired: the state to converge to.
            allow_mass_delete: let the plan delete all or most objects.
            expected_fingerprint: refuse (``StalePlanError``) unless live state still has this
                fingerprint (``apply PLANFILE``).
            reconcile_id: the id bound into every event of this pass (generated when omitted).

        Raises:
            PlanError: the mass-delete guard refused the plan (nothing was applied).
            StalePlanError: live state changed since the reviewed plan.
        """
        rid = reconcile_id or secrets.token_hex(6)
        emit = self.events.emit
        live = self.live()
        plan = make_plan(desired, live, self.rules())
        check_live_unchanged(expected_fingerprint, plan)
        emit(
            "reconcile_start",
            reconcile_id=rid,
            manifest=desired.manifest_sha256[:12],
            steps=len(plan.steps),
            drift=len(plan.drift),
        )
        for item in plan.drift:
            emit(
                "drift",
                reconcile_id=rid,
                address=item.address,
                reason=item.reason,
                detail=item.detail,
            )
        try:
            check_mass_delete(plan, allow=allow_mass_delete)
        except Exception as exc:
            emit("reconcile_refused", reconcile_id=rid, error=str(exc))
            raise
        outcomes = [
            self._run(step, rid, blocked) for blocked in [set[str]()] for step in plan.steps
        ]
        if any(o.status is StepStatus.APPLIED for o in outcomes):
            self.generation += 1
        if all(o.status is StepStatus.APPLIED for o in outcomes):
            self.manifest_sha256 = desired.manifest_sha256
        after = make_plan(desired, self.live(), self.rules())
        converged = after.is_empty
        requeue = None if converged else self._requeue_after()
        emit(
            "reconcile_done",
            reconcile_id=rid,
            converged=converged,
            applied=sum(o.status is StepStatus.APPLIED for o in outcomes),
            failed=sum(o.status is StepStatus.FAILED for o in outcomes),
            skipped=sum(o.status is StepStatus.SKIPPED for o in outcomes),
            deferred=sum(o.status is StepStatus.DEFERRED for o in outcomes),
            requeue_after_s=requeue,
        )
        return Result(rid, plan, tuple(outcomes), converged, requeue)

    def _requeue_after(self) -> float:
        now = self.clock.monotonic()
        waits = [
            b.next_attempt - now
            for b in self.backoffs.values()
            if not b.permanent and b.next_attempt > now
        ]
        return max(0.0, min(waits)) if waits else SETTLE_S

    def _run(self, step: Step, rid: str, blocked: set[str]) -> StepOutcome:
        emit = self.events.emit
        upstream = sorted(step.requires & blocked)
        if upstream:
            blocked.add(step.id)
            emit("step_skipped", reconcile_id=rid, step=step.id, upstream=upstream[0])
            return StepOutcome(
                step.id, step.key, StepStatus.SKIPPED, f"upstream failed: {upstream[0]}"
            )
        record = self.backoffs.get(step.key)
        now = self.clock.monotonic()
        if record is not None and record.definition != step.after:
            # A new definition since the failure (someone fixed the manifest): try it at once,
            # whatever the backoff of the old one said.
            self.backoffs.pop(step.key, None)
            record = None
        if record is not None:
            if record.permanent:  # same definition (a new one dropped the record above)
                blocked.add(step.id)
                return StepOutcome(
                    step.id,
                    step.key,
                    StepStatus.DEFERRED,
                    f"{record.last_error} (not retried until its definition changes)",
                )
            if not record.permanent and now < record.next_attempt:
                blocked.add(step.id)
                return StepOutcome(
                    step.id,
                    step.key,
                    StepStatus.DEFERRED,
                    f"{record.last_error} (retry in {record.next_attempt - now:.1f}s)",
                )
        started = self.clock.monotonic()
        emit("step_start", reconcile_id=rid, step=step.id, reason=step.reason, wave=step.wave)

        def progress(event: str, fields: dict[str, object]) -> None:
            emit(event, **{**fields, "reconcile_id": rid, "step": step.id})

        try:
            self.backend.apply(step, progress)
        except PermanentBackendError as exc:
            blocked.add(step.id)
            self.backoffs[step.key] = ObjectBackoff(
                failures=(record.failures if record else 0) + 1,
                last_error=exc.summary,
                permanent=True,
                definition=step.after,
            )
            emit(
                "step_failed",
                reconcile_id=rid,
                step=step.id,
                error=exc.summary,
                detail=exc.detail,
                permanent=True,
            )
            return StepOutcome(step.id, step.key, StepStatus.FAILED, exc.summary)
        except Exception as exc:  # a bug in a backend must not kill the loop
            blocked.add(step.id)
            failures = (record.failures if record else 0) + 1
            delay = self.policy.delay(failures, self.rng)
            if isinstance(exc, TemporaryBackendError):
                message = exc.summary
                delay = max(delay, exc.delay_s)
                extra: dict[str, object] = {"detail": exc.detail}
            else:
                message = f"unexpected error: {exc!r}"
                extra = {"traceback": traceback.format_exc()}
            self.backoffs[step.key] = ObjectBackoff(
                failures=failures,
                next_attempt=self.clock.monotonic() + delay,
                last_error=message,
                definition=step.after,
            )
            emit(
                "step_failed",
                reconcile_id=rid,
                step=step.id,
                error=message,
                permanent=False,
                retry_in_s=round(delay, 3),
                **extra,
            )
            return StepOutcome(step.id, step.key, StepStatus.FAILED, message)
        if step.op is Op.DELETE:
            self.applied.pop(step.key, None)
        else:
            assert step.after is not None
            self.applied[step.key] = step.after
        self.backoffs.pop(step.key, None)
        emit(
            "step_applied",
            reconcile_id=rid,
            step=step.id,
            duration_s=round(self.clock.monotonic() - started, 3),
        )
        return StepOutcome(step.id, step.key, StepStatus.APPLIED)

    def reset_backoff(self, key: Key | None = None) -> None:
        """Forget failures (of one object, or of all): the next pass retries at once."""
        if key is None:
            self.backoffs.clear()
        else:
            self.backoffs.pop(key, None)
