"""The stale-plan check: a reviewed plan is applied only to what it was made from.

Owns: ``check_manifest_unchanged`` and ``check_live_unchanged``, and the words of the refusal
(``StalePlanError("Plan is stale", ...)``, Terraform's). ``orchestrator apply PLANFILE`` checks the
manifest's hash in the CLI (the files on disk against the plan), the controller checks it again
(the files as it loaded them against what the CLI sent) and the reconciler checks the live state's
fingerprint against the plan's, right before applying. Every one of those checks is made here.
Pure: standard library, ``orchestrator.errors`` and ``orchestrator.plan.steps``.
"""

from __future__ import annotations

from orchestrator.errors import StalePlanError
from orchestrator.plan.steps import Plan

SUMMARY = "Plan is stale"


def check_manifest_unchanged(
    expected_sha256: str | None, sha256: str, *, path: str | None = None
) -> None:
    """Refuse a manifest whose hash is not the one the plan (or the client) was made from.

    Args:
        expected_sha256: the hash the plan was made from; ``None`` checks nothing.
        sha256: the hash of the manifest as loaded now.
        path: the manifest file, when a saved plan is checked against the files on disk; without
            it, the check is the controller's (the files changed on their way from the CLI).

    Raises:
        StalePlanError: the hashes differ.
    """
    if expected_sha256 is None or expected_sha256 == sha256:
        return
    if path is None:
        raise StalePlanError(SUMMARY, "The manifest changed while it was sent.")
    raise StalePlanError(
        SUMMARY, f"The manifest {path} changed after the plan was made; run plan again."
    )


def check_live_unchanged(expected_fingerprint: str | None, plan: Plan) -> None:
    """Refuse to apply ``plan`` when live state is no longer what the reviewed plan saw.

    Args:
        expected_fingerprint: the live-state fingerprint of the reviewed plan; ``None`` checks
            nothing.
        plan: the plan made now, from the live state observed now.

    Raises:
        StalePlanError: the fingerprints differ.
    """
    if expected_fingerprint is not None and plan.base_fingerprint != expected_fingerprint:
        raise StalePlanError(SUMMARY, "Live state changed after the plan was made; run plan again.")
