"""Which manifest the reconciler drives toward, and what happens when one fails: apply with rollback.

Owns: ``Rollout`` (the policy), ``ApplyReport``, ``ReloadOutcome``, the exit codes of ``orchestrator
apply`` and ``ReloadMetrics`` (what the policy counts). ``orchestrator apply`` and a hot reload go
through ``Rollout.apply``; the controller's periodic pass goes through ``Rollout.resync``. The rules
(docs/hot-reload.md, "Apply safety"):

- a plan refused before any change (the mass-delete guard, a stale reviewed plan) changes
  nothing: the manifest is rejected (``stage: apply``) and the one that runs stays desired
  (outcome ``refused``, exit 1);
- a step that fails rejects the manifest (not retried until it changes) and rolls the objects back
  to the manifest that ran before; the outcome is reported, never guessed: ``rolled_back`` (exit
  3) when the rollback converged, ``partially_applied`` (exit 4) when it did not or there was
  nothing to roll back to;
- a manifest that applies becomes the desired one, and last-known-good once it converged.

Every outcome is an event (``reload_outcome``) and a metric. Must not import ``controller`` or
``cli``: the controller passes its event sink and its metrics in.
"""

from __future__ import annotations

import enum
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.clock import Clock
from orchestrator.errors import Diagnostic, OrchestratorError, PlanError
from orchestrator.manifest.load import LoadedManifest
from orchestrator.reconcile.events import EventSink
from orchestrator.reconcile.manifests import ManifestTracker
from orchestrator.reconcile.reconciler import Reconciler, Result

#: ``orchestrator apply``: applied (and healthy), refused before any change, failed and rolled back,
#: failed and the rollback is incomplete.
EXIT_APPLIED, EXIT_FAILED_BEFORE, EXIT_ROLLED_BACK, EXIT_INCOMPLETE = 0, 1, 3, 4


class ReloadOutcome(enum.StrEnum):
    """How a new manifest ended (the ``outcome`` of the ``reload_outcome`` event)."""

    APPLIED = "applied"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"
    PARTIALLY_APPLIED = "partially_applied"


class ReloadMetrics(Protocol):
    """The counters the policy moves (``orchestrator.controller.metrics.Metrics``)."""

    def reload(self, ok: bool, ts: float) -> None:
        """Record the outcome of a manifest reload."""
        ...

    def reconciled(self, result: str, seconds: float) -> None:
        """Count one reconcile pass by result (``success``, ``error``, ``rolled_back``)."""
        ...


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """The outcome of applying one manifest.

    Attributes:
        exit_code: for ``orchestrator apply`` (``EXIT_*``).
        message: one sentence for people (a refusal's rendered diagnostics when refused).
        outcome: the reported outcome.
        result: the pass that applied the manifest; ``None`` when it was refused before any change.
    """

    exit_code: int
    message: str
    outcome: ReloadOutcome
    result: Result | None


class Rollout:
    """Drives the reconciler to new manifests with rollback, and to the one in force on resync."""

    def __init__(
        self,
        reconciler: Reconciler,
        tracker: ManifestTracker,
        clock: Clock,
        *,
        events: EventSink,
        metrics: ReloadMetrics,
    ) -> None:
        self.reconciler = reconciler
        self.tracker = tracker
        self.clock = clock
        self.events = events
        self.metrics = metrics

    def apply(
        self,
        loaded: LoadedManifest,
        *,
        source: str,
        allow_mass_delete: bool = False,
        expected_fingerprint: str | None = None,
    ) -> ApplyReport:
        """Apply a new manifest, as ``orchestrator apply`` or a hot reload does.

        The plan has the mass-delete guard; if a step fails, the objects go back to the manifest
        that ran before (last-known-good), and the outcome (applied, rolled back, partially applied)
        is reported, not guessed. A manifest that failed is not retried until it changes.

        Args:
            loaded: the new manifest.
            source: who asks (``apply``, ``reload``), for the ``reload_outcome`` event.
            allow_mass_delete: the operator's consent to a plan that deletes most objects.
            expected_fingerprint: the live-state fingerprint of a reviewed plan (``apply
                PLANFILE``).

        Returns:
            The exit code (0 applied, 1 refused before any change, 3 rolled back, 4 incomplete),
            a sentence for people, the outcome, and the pass's result. A plan the guard refuses,
            or a reviewed plan that is stale, is refused before any change.
        """
        emit = self.events.emit
        sha = loaded.desired.manifest_sha256
        previous = self.tracker.running or self.tracker.desired
        try:
            result = self.reconciler.reconcile_once(
                loaded.desired,
                allow_mass_delete=allow_mass_delete,
                expected_fingerprint=expected_fingerprint,
            )
        except PlanError as exc:
            self.reject(sha, exc.diagnostics, "apply")
            self._fall_back()
            outcome = ReloadOutcome.REFUSED
            emit(
                "reload_outcome",
                source=source,
                manifest=sha[:12],
                outcome=outcome.value,
                error=exc.summary,
            )
            return ApplyReport(EXIT_FAILED_BEFORE, exc.render(), outcome, None)
        if result.failed:
            self.tracker.reject(
                sha, self.clock.wall(), tuple(Diagnostic(o.error) for o in result.failed), "apply"
            )
            code, message = self._roll_back(previous, result)
            self.metrics.reload(False, 0.0)
            self.metrics.reconciled("rolled_back" if code == EXIT_ROLLED_BACK else "error", 0.0)
            outcome = (
                ReloadOutcome.ROLLED_BACK
                if code == EXIT_ROLLED_BACK
                else ReloadOutcome.PARTIALLY_APPLIED
            )
            emit(
                "reload_outcome",
                source=source,
                manifest=sha[:12],
                outcome=outcome.value,
                error=message,
            )
            return ApplyReport(code, message, outcome, result)
        self.tracker.accept(loaded)
        if result.converged:
            self.tracker.applied(self.clock.wall())
        self.metrics.reload(True, self.clock.wall())
        summary = result.plan.summary()
        message = (
            "Apply complete. "
            f"{summary['add']} added, {summary['change']} changed, {summary['replace']} "
            f"replaced, {summary['destroy']} destroyed."
            if not result.plan.is_empty
            else "No changes. Live state matches the manifest."
        )
        emit(
            "reload_outcome",
            source=source,
            manifest=sha[:12],
            outcome=ReloadOutcome.APPLIED.value,
            summary=summary,
        )
        return ApplyReport(EXIT_APPLIED, message, ReloadOutcome.APPLIED, result)

    def _roll_back(self, previous: LoadedManifest | None, failed: Result) -> tuple[int, str]:
        roots = "; ".join(f"{o.step_id}: {o.error}" for o in failed.failed)
        if previous is None:
            return EXIT_INCOMPLETE, f"Apply failed ({roots}); nothing to roll back to."
        self.tracker.desired = previous
        self.events.emit("rollback_start", manifest=previous.desired.manifest_sha256[:12])
        try:
            back = self.reconciler.reconcile_once(previous.desired, allow_mass_delete=True)
        except OrchestratorError as exc:
            return EXIT_INCOMPLETE, f"Apply failed ({roots}); rollback failed: {exc.summary}"
        self.events.emit("rollback_complete", converged=back.converged)
        if back.converged and not back.failed:
            return EXIT_ROLLED_BACK, (
                f"Apply failed ({roots}); rolled back to manifest "
                f"{previous.desired.manifest_sha256[:12]}."
            )
        return EXIT_INCOMPLETE, (
            f"Apply failed ({roots}); rollback incomplete: an operator must look "
            "(orchestrator status)."
        )

    def resync(self) -> Result | None:
        """One pass toward the manifest in force (the controller's periodic pass).

        A plan refused by the mass-delete guard rejects that manifest and falls back to the one
        that runs; a bug (any other exception) is logged with its traceback (``reconcile_crashed``)
        and the pass is retried later. A pass that converged makes the manifest last-known-good.

        Returns:
            The pass's result; ``None`` when no manifest is desired yet, or the pass was refused or
            crashed.
        """
        if self.tracker.desired is None:
            return None
        desired = self.tracker.desired.desired
        started = self.clock.monotonic()
        try:
            result = self.reconciler.reconcile_once(desired)
        except PlanError as exc:
            self.reject(desired.manifest_sha256, exc.diagnostics, "apply")
            self._fall_back()
            self.metrics.reconciled("error", self.clock.monotonic() - started)
            return None
        except Exception:  # a bug: logged with its traceback, retried later
            self.events.emit("reconcile_crashed", traceback=traceback.format_exc())
            self.metrics.reconciled("error", self.clock.monotonic() - started)
            return None
        self.metrics.reconciled(
            "success" if result.converged else "error", self.clock.monotonic() - started
        )
        if result.converged:
            self.tracker.applied(self.clock.wall())
        return result

    def reject(self, sha: str, diagnostics: Sequence[Diagnostic], stage: str) -> bool:
        """Record a manifest that failed to load (``stage`` ``load``) or to apply (``apply``), and
        say so (``manifest_rejected``), unless it is the one already rejected.

        Returns:
            ``False`` (nothing new was applied), for callers that return it as theirs.
        """
        diags = tuple(diagnostics)
        if sha and self.tracker.rejected and self.tracker.rejected.sha256 == sha:
            return False
        self.tracker.reject(sha, self.clock.wall(), diags, stage)
        self.metrics.reload(False, 0.0)
        self.events.emit(
            "manifest_rejected",
            manifest=sha[:12],
            stage=stage,
            errors=[d.render() for d in diags],
            keeping=self.tracker.running_sha256[:12],
        )
        return False

    def _fall_back(self) -> None:
        """The desired manifest was refused: go back to the one that runs, if any."""
        if self.tracker.running is not None:
            self.tracker.desired = self.tracker.running
