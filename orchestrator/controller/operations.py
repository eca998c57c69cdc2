"""What the operator verbs' jobs answer: ``orchestrator reload``'s outcome, from what happened.

Owns: ``reload_answer`` (the events a reload emitted and the tracker's record after it → the
admin API's ``reload`` result: ``outcome`` ``applied``, ``unchanged`` or ``rejected``, with the
rejection's errors first and its warnings counted). Reads no files and touches no backend; must not
import ``cli``.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import Severity
from orchestrator.reconcile.manifests import ManifestTracker, Rejected


def _counts(summary: object) -> bool:
    """Whether a plan summary (``add``, ``change``, ...) changed anything."""
    return isinstance(summary, dict) and any(int(str(n)) for n in summary.values())


def rejection(rejected: Rejected) -> dict[str, object]:
    """A rejection as data: its errors (rendered, first line each) and its warnings."""
    errors = [d.render() for d in rejected.diagnostics if d.severity is Severity.ERROR]
    warnings = [d.render() for d in rejected.diagnostics if d.severity is not Severity.ERROR]
    return {
        "manifest": rejected.sha256.split("@", 1)[0][:12],
        "stage": rejected.stage,
        "errors": errors or [rejected.summary()],
        "warnings": warnings,
    }


def reload_answer(
    accepted: bool,
    events: Sequence[dict[str, object]],
    tracker: ManifestTracker,
    path: str,
) -> dict[str, object]:
    """The ``reload`` job's result.

    Args:
        accepted: whether the reload applied a new manifest (``Daemon._reload``).
        events: what the controller emitted while it reloaded.
        tracker: the manifest record after it.
        path: the manifest path it read.

    Returns:
        ``accepted``, ``outcome`` (``applied``: a manifest was applied, ``unchanged``: the files
        are the manifest in force or it applied with no changes, ``rejected``: they failed to
        load or apply, now or before), ``message`` (one line), and for a rejection ``errors[]``
        and ``warnings[]``.
    """
    names = {str(e.get("event")) for e in events}
    outcome = next((e for e in events if e.get("event") == "reload_outcome"), None)
    if accepted:
        changed = outcome is None or _counts(outcome.get("summary"))
        sha = tracker.desired.desired.manifest_sha256[:12] if tracker.desired else ""
        return {
            "accepted": True,
            "outcome": "applied" if changed else "unchanged",
            "manifest": sha,
            "message": f"applied manifest {sha} from {path}"
            if changed
            else f"manifest {sha} applied: no changes",
        }
    rejected = tracker.rejected
    fresh = "manifest_rejected" in names or outcome is not None
    if rejected is not None and (fresh or "manifest_loaded" not in names):
        # No event at all: the files are unchanged since they were rejected (not retried).
        data = rejection(rejected)
        again = "" if fresh else " (unchanged since; retry with --force)"
        return {
            "accepted": False,
            "outcome": "rejected",
            "message": f"manifest {data['manifest'] or '(unreadable)'} rejected{again}",
            **data,
        }
    sha = tracker.running_sha256[:12]
    return {
        "accepted": False,
        "outcome": "unchanged",
        "manifest": sha,
        "message": f"no changes: {path} is the manifest in force ({sha})",
    }
