"""The diff: which action each change gets, why, in what order, and what counts as drift."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.errors import PlanError
from orchestrator.model import Fault, Key, Kind, LiveState, Repair
from orchestrator.plan import Op, check_mass_delete, make_plan
from tests.support.states import desired, group, live, pool, queue, session, site


def _ops(plan: object) -> dict[str, Op]:
    return {str(s.key): s.op for s in plan.steps}  # type: ignore[attr-defined]


def test_a_state_diffed_against_itself_is_empty() -> None:
    """Nothing to do when live equals desired."""
    state = site()
    plan = make_plan(state, live(*state.resources.values()))
    assert plan.is_empty
    assert 7 == len(plan.unchanged)


def test_everything_is_a_create_against_empty_live_state() -> None:
    """With no controller, live is empty: every object is created, in reference order."""
    plan = make_plan(site(), LiveState.empty())
    assert {Op.CREATE} == set(_ops(plan).values())
    assert [0, 1, 1, 2, 2, 2, 2] == [s.wave for s in plan.steps]
    assert "session/main" == str(plan.steps[0].key)


def test_a_worker_command_change_restarts_create_first() -> None:
    """command is a replace field for workers: +/- with the reason and the forcing path."""
    before, after = site("app"), site("app-v2")
    plan = make_plan(after, live(*before.resources.values()))
    (step,) = plan.steps
    assert (Op.REPLACE_CBD, "worker/api") == (step.op, str(step.key))
    assert "restart_because_spec_changed" == step.reason
    assert ("command",) == step.replace_paths
    assert [(["app"], ["app-v2"], True)] == [(c.before, c.after, c.forces) for c in step.changes]


def test_an_acl_and_length_change_updates_a_queue_in_place() -> None:
    """Queue fields other than its session change in place."""
    before = desired(session(), queue("api"))
    after = desired(session(), queue("api", max_length=5, acl=()))
    (step,) = make_plan(after, live(*before.resources.values())).steps
    assert Op.UPDATE == step.op
    assert ["acl", "maxLength"] == [c.path for c in step.changes]
    assert not step.replace_paths


def test_a_pool_not_in_the_manifest_is_deleted_with_its_reason() -> None:
    """Removing a pool deletes it, and says why."""
    before = site()
    after = desired(*(r for k, r in before.resources.items() if k != Key(Kind.WORKER, "web")))
    (step,) = make_plan(after, live(*before.resources.values())).steps
    assert (Op.DELETE, "delete_because_not_in_manifest") == (step.op, step.reason)


def test_deletes_run_against_the_references() -> None:
    """Workers and URL groups let go of a queue before the queue is deleted."""
    before = desired(session(), queue("q"), group("g", "q", "http://+:80/"), pool("p", "q"))
    plan = make_plan(desired(session()), live(*before.resources.values()))
    order = [str(s.key) for s in plan.steps]
    assert order.index("worker/p") < order.index("queue/q")
    assert order.index("urlgroup/g") < order.index("queue/q")
    q = next(s for s in plan.steps if str(s.key) == "queue/q")
    assert {"delete urlgroup/g", "delete worker/p"} == set(q.requires)


def test_a_group_moves_to_its_new_queue_before_the_old_one_goes() -> None:
    """Retargeting a group and deleting its old queue: update the group first."""
    before = desired(
        session(),
        queue("old"),
        queue("new"),
        pool("p", "new"),
        group("g", "old", "http://+:80/"),
        pool("o", "old"),
    )
    after = desired(session(), queue("new"), pool("p", "new"), group("g", "new", "http://+:80/"))
    plan = make_plan(after, live(*before.resources.values()))
    delete_old = plan.step("delete queue/old")
    assert "update urlgroup/g" in delete_old.requires
    assert plan.step("update urlgroup/g").wave < delete_old.wave


def test_a_renamed_queue_is_a_delete_and_a_create_and_moves_its_pool() -> None:
    """Names are identities: the pool's queue field changes, which forces its restart."""
    before = desired(session(), queue("a"), pool("p", "a"), group("g", "a", "http://+:80/"))
    after = desired(session(), queue("b"), pool("p", "b"), group("g", "b", "http://+:80/"))
    ops = _ops(make_plan(after, live(*before.resources.values())))
    assert {
        "queue/a": Op.DELETE,
        "queue/b": Op.CREATE,
        "worker/p": Op.REPLACE_CBD,
        "urlgroup/g": Op.UPDATE,
    } == ops


def test_a_queue_recreated_after_drift_replaces_the_workers_holding_it() -> None:
    """A queue socket deleted by hand: the queue is created again and its pool restarted."""
    state = site()
    observed = [r for k, r in state.resources.items() if k != Key(Kind.QUEUE, "api")]
    plan = make_plan(state, live(*observed, applied=state.resources.values()))
    assert (Op.CREATE, "create_because_missing") == (
        plan.step("create queue/api").op,
        plan.step("create queue/api").reason,
    )
    restart = plan.step("replace_cbd worker/api")
    assert ("restart_because_queue_replaced", ("queue",)) == (restart.reason, restart.replace_paths)
    assert ["deleted_outside"] == [d.reason for d in plan.drift]


def test_a_fault_that_heals_itself_is_drift_but_no_action() -> None:
    """A worker that exited is restarted by the supervisor: shown, not planned."""
    state = site()
    fault = Fault(
        key=Key(Kind.WORKER, "api"),
        instance="worker/api[1]",
        reason="process_exited",
        detail="exited with code 137",
    )
    plan = make_plan(state, live(*state.resources.values(), faults=[fault]))
    assert plan.is_empty
    assert [("worker/api[1]", "process_exited")] == [(d.address, d.reason) for d in plan.drift]
    assert 1 == plan.summary()["drift"]


@pytest.mark.parametrize(
    ("repair", "op", "reason"),
    [
        (Repair.UPDATE, Op.UPDATE, "update_because_drifted"),
        (Repair.REPLACE, Op.REPLACE, "replace_because_drifted"),
    ],
)
def test_a_fault_needing_repair_is_planned(repair: Repair, op: Op, reason: str) -> None:
    """A chmod'ed socket is put back in place; an unusable one is replaced."""
    state = site()
    fault = Fault(key=Key(Kind.QUEUE, "web"), reason="socket_mode", repair=repair)
    plan = make_plan(state, live(*state.resources.values(), faults=[fault]))
    step = next(s for s in plan.steps if str(s.key) == "queue/web")
    assert (op, reason) == (step.op, step.reason)


def test_an_object_changed_by_hand_is_drift_and_is_put_back() -> None:
    """Live differs from the last apply while the manifest is unchanged."""
    state = site()
    changed = dataclasses.replace(state.resources[Key(Kind.QUEUE, "api")], max_length=1)
    observed = {**state.resources, changed.key: changed}
    plan = make_plan(state, live(*observed.values(), applied=state.resources.values()))
    assert ["changed_outside"] == [d.reason for d in plan.drift]
    assert ["maxLength"] == [c.path for c in plan.drift[0].changes]
    assert Op.UPDATE == plan.step("update queue/api").op


def test_a_changed_manifest_is_not_reported_as_drift() -> None:
    """Drift is only where the manifest did not change the object."""
    before, after = site("app"), site("app-v2")
    plan = make_plan(after, live(*before.resources.values()))
    assert () == plan.drift


def test_a_session_backend_change_replaces_everything_under_it() -> None:
    """backend forces a destroy-first replacement that the dependents follow."""
    before = site()
    new_session = session(backend="linux")
    after = desired(
        *(new_session if k.kind is Kind.SESSION else r for k, r in before.resources.items())
    )
    ops = _ops(make_plan(after, live(*before.resources.values())))
    assert Op.REPLACE == ops["session/main"]
    assert Op.REPLACE == ops["queue/api"]
    assert Op.REPLACE_CBD == ops["worker/api"]
    assert Op.UPDATE == ops["urlgroup/api"]


def test_every_requirement_is_in_an_earlier_wave() -> None:
    """Waves are a topological order of the requirements."""
    plan = make_plan(site(), LiveState.empty())
    waves = {s.id: s.wave for s in plan.steps}
    for step in plan.steps:
        assert all(waves[r] < step.wave for r in step.requires)


@pytest.mark.parametrize(
    ("deleted", "total", "refused"),
    [(7, 7, True), (4, 7, True), (3, 7, False), (1, 2, False), (2, 2, True)],
)
def test_the_mass_delete_guard(deleted: int, total: int, refused: bool) -> None:
    """Deleting everything, or more than half, needs consent."""
    items = [session(), *(queue(f"q{i}") for i in range(total - 1))]
    keep = items[: total - deleted]
    plan = make_plan(desired(*keep), live(*items))
    if refused:
        with pytest.raises(PlanError, match="mass-delete guard"):
            check_mass_delete(plan, allow=False)
        check_mass_delete(plan, allow=True)
    else:
        check_mass_delete(plan, allow=False)


def test_secrets_never_appear_in_field_changes() -> None:
    """A changed secret shows as masked on both sides."""
    from orchestrator.model import EnvVar

    before = desired(
        session(), queue("q"), pool("p", "q", env=(EnvVar(name="TOKEN", value="old", secret=True),))
    )
    after = desired(
        session(), queue("q"), pool("p", "q", env=(EnvVar(name="TOKEN", value="new", secret=True),))
    )
    (step,) = make_plan(after, live(*before.resources.values())).steps
    assert [("env.TOKEN", "(sensitive value)", "(sensitive value)")] == [
        (c.path, c.before, c.after) for c in step.changes
    ]
