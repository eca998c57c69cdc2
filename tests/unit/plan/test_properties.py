"""Properties of every plan, over random pairs of desired and live states (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.backends.fake import FakeBackend
from orchestrator.clock import FakeClock
from orchestrator.model import DesiredState
from orchestrator.plan import Op, make_plan
from orchestrator.reconcile.reconciler import Reconciler
from tests.support.states import live, states


def _backend_holding(state: DesiredState) -> FakeBackend:
    backend = FakeBackend()
    backend.store.update(state.resources)
    return backend


@settings(max_examples=200, deadline=None)
@given(states(), states())
def test_applying_any_plan_converges(before: DesiredState, after: DesiredState) -> None:
    """Apply the plan from before to after on the fake backend: a second diff is empty."""
    backend = _backend_holding(before)
    plan = make_plan(after, backend.observe())
    for step in plan.steps:
        backend.apply(step)  # raises if a step runs before what it references
    assert make_plan(after, backend.observe()).is_empty


@settings(max_examples=200, deadline=None)
@given(states(), states())
def test_every_plan_respects_dependency_order(before: DesiredState, after: DesiredState) -> None:
    """Each step's requirements are steps of the plan in earlier waves; steps are in wave order."""
    plan = make_plan(after, live(*before.resources.values()))
    waves = {s.id: s.wave for s in plan.steps}
    assert [s.wave for s in plan.steps] == sorted(s.wave for s in plan.steps)
    for step in plan.steps:
        for req in step.requires:
            assert waves[req] < step.wave
    for step in plan.steps:
        # a created or updated object never waits for nothing it does not reference
        if step.op is not Op.DELETE and step.after is not None:
            referenced = {f"{o.value} {r}" for r in step.after.refs() for o in Op}
            assert step.requires <= referenced | {s.id for s in plan.steps if s.op is Op.DELETE} | {
                s.id for s in plan.steps
            }


@settings(max_examples=100, deadline=None)
@given(states())
def test_a_state_diffed_with_itself_is_empty(state: DesiredState) -> None:
    """No change, no drift, no step."""
    plan = make_plan(state, live(*state.resources.values()))
    assert plan.is_empty
    assert () == plan.drift


@settings(max_examples=100, deadline=None)
@given(states(), states(), st.integers(0, 2**32 - 1))
def test_the_reconciler_converges_in_one_pass(
    before: DesiredState, after: DesiredState, seed: int
) -> None:
    """reconcile_once from any state to any state applies everything and converges."""
    import random

    backend = _backend_holding(before)
    reconciler = Reconciler(backend, FakeClock(), rng=random.Random(seed))
    reconciler.applied.update(before.resources)
    result = reconciler.reconcile_once(after, allow_mass_delete=True)
    assert result.converged, result.outcomes
    assert 0 == result.count("failed")
