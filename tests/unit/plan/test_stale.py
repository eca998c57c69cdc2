"""The stale-plan check: one place, three callers (the CLI, the controller, the reconciler)."""

from __future__ import annotations

import pytest

from orchestrator.errors import PlanError, StalePlanError
from orchestrator.plan.stale import check_live_unchanged, check_manifest_unchanged
from orchestrator.plan.steps import Plan

SHA = "a" * 64


@pytest.mark.parametrize(("expected", "path"), [(None, None), (SHA, None), (SHA, "/x/site.yaml")])
def test_an_unchanged_or_unchecked_manifest_passes(expected: str | None, path: str | None) -> None:
    """The same hash, or no hash to compare with, is not stale."""
    check_manifest_unchanged(expected, SHA, path=path)


def test_a_saved_plan_of_a_changed_manifest_names_the_file() -> None:
    """``apply PLANFILE`` against edited files: the refusal names the manifest and the fix."""
    with pytest.raises(StalePlanError) as info:
        check_manifest_unchanged(SHA, "b" * 64, path="/x/site.yaml")
    assert "Plan is stale" == info.value.summary
    assert (
        "The manifest /x/site.yaml changed after the plan was made; run plan again."
        == info.value.detail
    )


def test_a_manifest_changed_in_transit_is_refused_by_the_controller() -> None:
    """Without a path the check is the controller's: the files changed on their way."""
    with pytest.raises(StalePlanError) as info:
        check_manifest_unchanged(SHA, "b" * 64)
    assert ("Plan is stale", "The manifest changed while it was sent.") == (
        info.value.summary,
        info.value.detail,
    )


def test_an_empty_saved_hash_is_a_change() -> None:
    """Only ``None`` means "do not check": a saved plan without a hash is stale."""
    with pytest.raises(StalePlanError):
        check_manifest_unchanged("", SHA, path="/x/site.yaml")


def test_a_plan_made_from_the_same_live_state_is_fresh() -> None:
    """Same fingerprint, or none expected: nothing is raised."""
    plan = Plan(steps=(), base_fingerprint="f" * 64)
    check_live_unchanged("f" * 64, plan)
    check_live_unchanged(None, plan)


def test_live_state_that_moved_makes_the_plan_stale() -> None:
    """Another fingerprint: refused as a ``PlanError`` (nothing is applied)."""
    with pytest.raises(StalePlanError) as info:
        check_live_unchanged("e" * 64, Plan(steps=(), base_fingerprint="f" * 64))
    assert isinstance(info.value, PlanError)
    assert ("Plan is stale", "Live state changed after the plan was made; run plan again.") == (
        info.value.summary,
        info.value.detail,
    )
