"""``HttpSysBackend`` against the recording fake: the http.sys calls each step makes, create/attach and
drift, DACLs, updates and deletes of each kind, supervision and rapid-fail, and the Wine flavour."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator.backends.httpsys.backend import HttpSysBackend
from orchestrator.backends.httpsys.routes import (
    group_timeout_limits,
    route_id,
    session_timeout_limits,
)
from orchestrator.backends.httpsys.sddl import build_queue_sddl, mapping_resolver
from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ServerProperty
from orchestrator.httpapi.binding import ConnectionLimit, QueueBinding, TimeoutLimits
from orchestrator.model import Key, Kind, Principal, Repair
from orchestrator.model.desired import (
    Health,
    PrincipalKind,
    RapidFail,
    RestartPolicy,
    State,
    TimeoutOverrides,
    Timeouts,
    Verbosity503,
)
from orchestrator.plan import Op, make_plan
from tests.support.httpsys_fake import Flavor
from tests.support.states import desired, group, pool, queue, session
from tests.unit.httpsys.backend_kit import CONTROLLER, PID, SIDS, Kit

OPEN_EXISTING = _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING


def site(*, api_urls: tuple[str, ...] = ("http://+:8080/api/",), **api_queue: object) -> object:
    """Two apps: api (its URLs and queue options as given) and web."""
    return desired(
        session(),
        queue("api", **api_queue),
        queue("web"),
        group("api", "api", *api_urls),
        group("web", "web", "http://+:8080/"),
        pool("api", "api", "api-app"),
        pool("web", "web", "web-app"),
    )


# --- create -------------------------------------------------------------------------------------------
def test_a_site_is_created_in_dependency_order_with_bind_before_add() -> None:
    """Session, queues (with their properties), URL groups (options, bind, URLs), then workers."""
    kit = Kit()
    kit.converge(site())
    calls = [c for c in kit.system.calls if c.pid == PID]
    names = [c.function for c in calls]
    assert "HttpInitialize" == names[0]
    assert names.index("HttpCreateServerSession") < names.index("HttpCreateRequestQueue")
    first_group = names.index("HttpCreateUrlGroup")
    assert names.index("HttpCreateRequestQueue") < first_group
    after = names[first_group:]
    assert (
        [
            "HttpCreateUrlGroup",
            "HttpSetUrlGroupProperty",  # timeouts
            "HttpSetUrlGroupProperty",  # connection limit
            "HttpSetUrlGroupProperty",  # state
            "HttpSetUrlGroupProperty",  # binding: before any URL
            "HttpAddUrlToUrlGroup",
        ]
        == after[:6]
    )
    assert 2 == len(kit.launcher.running())


def test_each_url_carries_its_route_id_as_url_context() -> None:
    """The fake's registrations hold route_id(group, url) for every URL."""
    kit = Kit()
    kit.converge(site(api_urls=("http://+:8080/api/", "http://+:8080/v2/api/")))
    assert {
        "http://+:8080/api/": route_id("api", "http://+:8080/api/"),
        "http://+:8080/v2/api/": route_id("api", "http://+:8080/v2/api/"),
        "http://+:8080/": route_id("web", "http://+:8080/"),
    } == kit.system.route_table()


def test_queue_properties_come_from_the_definition() -> None:
    """Queue length, 503 verbosity and state are set by the creator, as http.sys values."""
    kit = Kit()
    kit.converge(site(max_length=25, verbosity503=Verbosity503.FULL, state=State.DISABLED))
    props = kit.queue("api").properties
    assert {
        ServerProperty.QUEUE_LENGTH: 25,
        ServerProperty.VERBOSITY_503: int(_ffi.Verbosity503.FULL),
        ServerProperty.STATE: int(EnabledState.INACTIVE),
    } == props


def test_session_timeouts_and_group_limits_are_http_sys_payloads() -> None:
    """Session timers go on the session; the group gets its overrides and the connection limit."""
    kit = Kit()
    timeouts = Timeouts(entity_body_s=30.5, header_wait_s=10)
    state = desired(
        session(timeouts=timeouts),
        queue("api"),
        group(
            "api",
            "api",
            "http://+:8080/api/",
            timeouts=TimeoutOverrides(idle_connection_s=5),
            max_connections=9,
        ),
    )
    kit.converge(state)
    session_props = next(iter(kit.system.sessions.values())).properties
    assert TimeoutLimits(31, 120, 120, 120, 10, 150) == session_props[ServerProperty.TIMEOUTS]
    group_props = next(iter(kit.system.groups.values())).properties
    assert TimeoutLimits(idle_connection_s=5) == group_props[ServerProperty.TIMEOUTS]
    assert ConnectionLimit(9) == group_props[ServerProperty.QOS]


def test_session_max_connections_is_the_default_group_limit() -> None:
    """A group without maxConnections takes the session's; 0 means no limit."""
    from orchestrator.model.desired import SessionLimits

    kit = Kit()
    kit.converge(
        desired(
            session(limits=SessionLimits(max_connections=50)),
            queue("api"),
            group("api", "api", "http://+:8080/api/"),
        )
    )
    group_props = next(iter(kit.system.groups.values())).properties
    assert ConnectionLimit(50) == group_props[ServerProperty.QOS]


def test_timers_beyond_the_ushort_range_are_refused_as_permanent() -> None:
    """http.sys timers are 16-bit seconds: a day-long timer cannot be set."""
    kit = Kit()
    result = kit.apply(desired(session(timeouts=Timeouts(entity_body_s=86400))))
    assert ["failed"] == [o.status for o in result.outcomes]
    assert "65535" in result.outcomes[0].error
    with pytest.raises(ValueError, match="entityBody"):
        session_timeout_limits(Timeouts(entity_body_s=70000))
    assert TimeoutLimits() == group_timeout_limits(TimeoutOverrides())


# --- DACLs ----------------------------------------------------------------------------------------
def _created_sddl(kit: Kit, name: str) -> object:
    call = next(
        c
        for c in kit.system.calls_to("HttpCreateRequestQueue")
        if c.args[0] == name and c.result == 0
    )
    return call.args[1]


def test_the_queue_dacl_is_built_from_the_acl_through_the_resolver() -> None:
    """Users, groups and SIDs become allow ACEs after SYSTEM and Administrators, sorted."""
    acl = (
        Principal(kind=PrincipalKind.USER, name="alice"),
        Principal(kind=PrincipalKind.GROUP, name="staff"),
        Principal(kind=PrincipalKind.SID, name="S-1-5-20"),
    )
    kit = Kit()
    kit.converge(site(acl=acl))
    assert (
        "D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-20)"
        f"(A;;GA;;;{SIDS['staff']})(A;;GA;;;{SIDS['alice']})"
    ) == _created_sddl(kit, "api")
    assert build_queue_sddl(acl, mapping_resolver(SIDS)) == _created_sddl(kit, "api")


def test_a_queue_without_acl_admits_the_controllers_account() -> None:
    """Workers run as the controller's account, so that account is granted the queue."""
    kit = Kit()
    kit.converge(site())
    assert f"D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{SIDS[CONTROLLER]})" == _created_sddl(kit, "web")


def test_the_dacl_lets_the_named_accounts_open_the_queue_and_refuses_others() -> None:
    """The fake enforces the DACL on OPEN_EXISTING: alice attaches, bob gets 5."""
    kit = Kit()
    kit.converge(site(acl=(Principal(kind=PrincipalKind.USER, name="alice"),)))
    kit.system.process_sids[7001] = SIDS["alice"]
    kit.system.process_sids[7002] = "S-1-5-21-1-2-3-1003"
    kit.binding.process(7001).initialize()
    kit.binding.process(7002).initialize()
    assert kit.binding.process(7001).create_request_queue("api", flags=OPEN_EXISTING)
    with pytest.raises(_ffi.HttpApiError) as info:
        kit.binding.process(7002).create_request_queue("api", flags=OPEN_EXISTING)
    assert _ffi.ErrorCode.ERROR_ACCESS_DENIED == info.value.code


def test_an_acl_naming_an_unknown_account_is_a_permanent_failure() -> None:
    """A name the resolver does not know cannot become a SID: no retry until the ACL changes."""
    kit = Kit()
    result = kit.apply(site(acl=(Principal(kind=PrincipalKind.USER, name="nobody"),)))
    failed = {o.step_id: o.error for o in result.failed}
    assert "nobody" in failed["create queue/api"]
    again = kit.apply(site(acl=(Principal(kind=PrincipalKind.USER, name="nobody"),)))
    assert "deferred" == next(o.status for o in again.outcomes if o.step_id == "create queue/api")


def test_an_acl_change_recreates_the_queue_and_restarts_its_pool() -> None:
    """http.sys takes a DACL only at creation: close, create anew, rebind, new processes."""
    kit = Kit()
    kit.converge(site())
    old = kit.launcher.running("api-app")
    old_handle = kit.backend.queues["api"].handle.handle
    kit.converge(site(acl=(Principal(kind=PrincipalKind.USER, name="alice"),)))
    new_handle = kit.backend.queues["api"].handle.handle
    assert new_handle != old_handle
    assert f"(A;;GA;;;{SIDS['alice']})" in kit.queue("api").security_descriptor
    assert all(p.code is not None for p in old)
    assert [new_handle] == [
        g.bound_handle for g in kit.system.groups.values() if "api" in str(g.urls)
    ]
    assert 1 == len(kit.launcher.running("api-app"))


# --- create or attach, drift ------------------------------------------------------------------
def _squat(kit: Kit, name: str, pid: int = 9000) -> int:
    """Another process creates a queue called ``name`` first."""
    other = kit.binding.process(pid)
    other.initialize()
    return other.create_request_queue(name)


def test_a_queue_name_taken_by_another_process_is_attached_and_reported_as_drift() -> None:
    """183, then OPEN_EXISTING; no property is set on it; observe reports a queue_attached fault."""
    kit = Kit()
    _squat(kit, "api")
    mark = kit.mark()
    result = kit.apply(site())
    assert not result.failed
    creates = [
        (c.args[0], c.args[2], c.result)
        for c in kit.system.calls[mark:]
        if c.function == "HttpCreateRequestQueue" and c.args[0] == "api"
    ]
    assert [("api", 0, 183), ("api", OPEN_EXISTING, 0)] == creates
    assert 1000 == kit.queue("api").properties[ServerProperty.QUEUE_LENGTH]  # untouched
    attached = kit.backend.queues["api"].handle.handle
    assert [] == [
        c for c in kit.system.calls_to("HttpSetRequestQueueProperty") if c.args[0] == attached
    ]
    faults = [f for f in kit.backend.observe().faults if f.key == Key(Kind.QUEUE, "api")]
    assert [("queue_attached", Repair.NONE)] == [(f.reason, f.repair) for f in faults]


def test_an_attached_queue_is_not_retried_in_a_loop() -> None:
    """Later passes plan nothing for it (drift only) and make no further create calls."""
    kit = Kit()
    _squat(kit, "api")
    state = site()
    kit.apply(state)
    plan = kit.reconciler.plan(state)
    assert plan.is_empty
    assert "queue/api" in {d.address for d in plan.drift}
    mark = kit.mark()
    for _ in range(3):
        kit.apply(state)
    assert "HttpCreateRequestQueue" not in kit.calls_since(mark)


def test_changing_an_attached_queue_is_a_permanent_failure_not_a_retry() -> None:
    """Only the creator may set properties (87): the update fails once and is then deferred."""
    kit = Kit()
    _squat(kit, "api")
    kit.apply(site())
    changed = site(max_length=10)
    first = kit.apply(changed)
    assert ["update queue/api"] == [o.step_id for o in first.failed]
    assert "created by another process" in first.failed[0].error
    mark = kit.mark()
    second = kit.apply(changed)
    assert "deferred" == next(o.status for o in second.outcomes if o.step_id == "update queue/api")
    assert "HttpSetRequestQueueProperty" not in kit.calls_since(mark)


def test_a_queue_closed_behind_the_controllers_back_is_created_again_and_rebound() -> None:
    """Observe queries the queue (6: gone), the plan re-creates it, the group follows, the pool
    restarts on the new queue."""
    kit = Kit()
    state = site()
    kit.converge(state)
    gone = kit.queue("web")
    for handle in list(gone.handles):
        del kit.system.handles[handle]
        gone.handles.discard(handle)
    plan = make_plan(state, kit.reconciler.live())
    assert {
        ("queue/web", Op.CREATE),
        ("urlgroup/web", Op.UPDATE),
        ("worker/web", Op.REPLACE_CBD),
    } == {(str(s.key), s.op) for s in plan.steps}
    assert "queue/web" in {d.address for d in plan.drift}
    kit.converge(state)
    handle = kit.backend.queues["web"].handle.handle
    web_group = next(g for g in kit.system.groups.values() if "http://+:8080/" in g.urls)
    assert handle == web_group.bound_handle
    assert "http://+:8080/" in kit.system.route_table()
    [worker] = kit.launcher.running("web-app")
    assert "web" == worker.spec.env["ORCHESTRATOR_QUEUE"]


def test_a_queue_property_changed_outside_is_drift_that_is_put_back() -> None:
    """Queried values differ from the definition: the plan updates the queue in place."""
    kit = Kit()
    state = site()
    kit.converge(state)
    kit.queue("api").properties[ServerProperty.QUEUE_LENGTH] = 3
    plan = make_plan(state, kit.reconciler.live())
    assert [("update queue/api", Op.UPDATE)] == [(s.id, s.op) for s in plan.steps]
    kit.converge(state)
    assert 1000 == kit.queue("api").properties[ServerProperty.QUEUE_LENGTH]


# --- updates and deletes --------------------------------------------------------------------------
def test_a_session_update_sets_its_timeouts_and_the_groups_default_limit() -> None:
    """New session timers are set on the same session; a new maxConnections reaches the groups."""
    from orchestrator.model.desired import SessionLimits

    kit = Kit()
    kit.converge(site())
    session_id = next(iter(kit.system.sessions))
    changed = desired(
        *[
            r
            for k, r in site().resources.items()  # type: ignore[attr-defined]
            if k.kind is not Kind.SESSION
        ],
        session(timeouts=Timeouts(idle_connection_s=30), limits=SessionLimits(max_connections=7)),
    )
    mark = kit.mark()
    kit.converge(changed)
    assert "HttpCreateServerSession" not in kit.calls_since(mark)
    props = kit.system.sessions[session_id].properties
    assert 30 == props[ServerProperty.TIMEOUTS].idle_connection_s  # type: ignore[attr-defined]
    assert {ConnectionLimit(7)} == {
        g.properties[ServerProperty.QOS] for g in kit.system.groups.values()
    }


def test_scaling_a_pool_is_an_in_place_update_that_keeps_running_processes() -> None:
    """processes 1 -> 3 starts two more; 3 -> 1 stops the surplus; the first process survives."""
    kit = Kit()
    kit.converge(site())
    [first] = kit.launcher.running("api-app")

    def scaled(n: int) -> object:
        return desired(
            *[
                r
                for k, r in site().resources.items()  # type: ignore[attr-defined]
                if k != Key(Kind.WORKER, "api")
            ],
            pool("api", "api", "api-app", processes=n),
        )

    result = kit.converge(scaled(3))
    assert ["update worker/api"] == [s.id for s in result.plan.steps]
    assert 3 == len(kit.launcher.running("api-app"))
    kit.converge(scaled(1))
    assert [first] == kit.launcher.running("api-app")


def test_url_changes_add_and_remove_only_the_difference() -> None:
    """Unchanged URLs stay registered (no gap); the route ids of the others are computed anew."""
    kit = Kit()
    kit.converge(site(api_urls=("http://+:8080/api/", "http://+:8080/old/")))
    mark = kit.mark()
    kit.converge(site(api_urls=("http://+:8080/api/", "http://+:8080/new/")))
    calls = [
        (c.function, c.args[1])
        for c in kit.system.calls[mark:]
        if c.function in ("HttpAddUrlToUrlGroup", "HttpRemoveUrlFromUrlGroup")
    ]
    assert [
        ("HttpRemoveUrlFromUrlGroup", "http://+:8080/old/"),
        ("HttpAddUrlToUrlGroup", "http://+:8080/new/"),
    ] == calls
    assert route_id("api", "http://+:8080/new/") == kit.system.route_table()["http://+:8080/new/"]


def test_a_group_moved_to_another_queue_is_rebound_in_place_on_windows() -> None:
    """Windows moves registrations with the binding: no URL is removed."""
    kit = Kit()
    state = site()
    kit.converge(state)
    moved = desired(
        *[r for k, r in state.resources.items() if k != Key(Kind.URLGROUP, "api")],  # type: ignore[attr-defined]
        group("api", "web", "http://+:8080/api/"),
    )
    mark = kit.mark()
    kit.converge(moved)
    assert "HttpRemoveUrlFromUrlGroup" not in kit.calls_since(mark)
    api_group = next(g for g in kit.system.groups.values() if "http://+:8080/api/" in g.urls)
    assert kit.backend.queues["web"].handle.handle == api_group.bound_handle


def test_group_options_are_updated_without_touching_urls() -> None:
    """A new state or timeout is a property call on the existing group."""
    kit = Kit()
    kit.converge(site())
    state = desired(
        session(),
        queue("api"),
        queue("web"),
        group("api", "api", "http://+:8080/api/", state=State.DISABLED),
        group("web", "web", "http://+:8080/"),
        pool("api", "api", "api-app"),
        pool("web", "web", "web-app"),
    )
    mark = kit.mark()
    kit.converge(state)
    assert {"HttpSetUrlGroupProperty"} == set(kit.calls_since(mark)) - {
        "HttpQueryRequestQueueProperty"
    }
    api_group = next(g for g in kit.system.groups.values() if "http://+:8080/api/" in g.urls)
    assert EnabledState.INACTIVE == api_group.properties[ServerProperty.STATE]


def test_deleting_everything_follows_the_teardown_order() -> None:
    """Workers stop, URLs are removed before unbinding, groups close, queues close, session closes."""
    kit = Kit()
    kit.converge(site())
    mark = kit.mark()
    kit.reconciler.reconcile_once(desired(), allow_mass_delete=True)
    calls = [c for c in kit.system.calls[mark:] if c.function != "HttpQueryRequestQueueProperty"]
    names = [c.function for c in calls]
    assert all(p.code is not None for p in kit.launcher.started)
    remove = names.index("HttpRemoveUrlFromUrlGroup")
    unbind = next(
        i
        for i, c in enumerate(calls)
        if c.function == "HttpSetUrlGroupProperty" and c.args[2] == QueueBinding(None)
    )
    assert remove < unbind < names.index("HttpCloseUrlGroup")
    assert names.index("HttpCloseUrlGroup") < names.index("HttpCloseRequestQueue")
    assert "HttpCloseServerSession" == names[-1]
    assert {} == dict(kit.backend.observe().resources)
    assert not kit.system.registrations


def test_close_releases_everything_in_aspnet_order_and_terminates() -> None:
    """URLs removed and groups unbound (nothing more is routed); processes killed; queue, groups,
    session closed; terminate."""
    kit = Kit()
    kit.converge(site())
    mark = kit.mark()
    before_kill: list[str] = []
    kill_all = kit.backend.launcher.kill_all

    def recording_kill_all(*args: Any, **kwargs: Any) -> Any:
        before_kill.extend(kit.calls_since(mark))
        return kill_all(*args, **kwargs)

    kit.backend.launcher.kill_all = recording_kill_all  # type: ignore[method-assign]
    kit.backend.close()
    names = kit.calls_since(mark)
    assert "HttpRemoveUrlFromUrlGroup" in before_kill
    assert "HttpCloseRequestQueue" not in before_kill
    assert names.index("HttpRemoveUrlFromUrlGroup") < names.index("HttpCloseRequestQueue")
    assert names.index("HttpCloseRequestQueue") < names.index("HttpCloseUrlGroup")
    assert names.index("HttpCloseUrlGroup") < names.index("HttpCloseServerSession")
    assert "HttpTerminate" == names[-1]
    assert all(p.killed for p in kit.launcher.started)
    kit.backend.close()  # idempotent


# --- pools -------------------------------------------------------------------------------------
def test_workers_are_told_their_queue_name_and_not_a_handle_on_windows() -> None:
    """ORCHESTRATOR_QUEUE names the queue; Windows workers attach by name (no inherited handle)."""
    kit = Kit()
    kit.converge(site())
    [api] = kit.launcher.running("api-app")
    assert "api" == api.spec.env["ORCHESTRATOR_QUEUE"]
    assert "ORCHESTRATOR_QUEUE_HANDLE" not in api.spec.env
    assert api.spec.inherit_handle is None


def test_a_changed_command_starts_the_new_processes_before_stopping_the_old() -> None:
    """Create-before-destroy: the new process exists before the old one is asked to stop."""
    kit = Kit()
    kit.converge(site())
    [old] = kit.launcher.running("api-app")
    state = desired(
        session(),
        queue("api"),
        queue("web"),
        group("api", "api", "http://+:8080/api/"),
        group("web", "web", "http://+:8080/"),
        pool("api", "api", "api-app-v2"),
        pool("web", "web", "web-app"),
    )
    kit.converge(state)
    [new] = kit.launcher.running("api-app-v2")
    assert 1 == old.terminated
    assert old.code is not None
    started = next(
        i for i, (e, f) in enumerate(kit.events) if e == "process_start" and f["pid"] == new.pid
    )
    stopped = next(
        i
        for i, (e, f) in enumerate(kit.events)
        if e == "generation_stop" and f["reason"] == "replaced by a new definition"
    )
    assert started < stopped


def test_a_crashed_worker_is_restarted_after_its_backoff() -> None:
    """Exit is seen by poll; the slot restarts after the initial backoff, not before."""
    kit = Kit()
    kit.converge(site())
    [api] = kit.launcher.running("api-app")
    api.exit(1)
    kit.tick()
    assert [] == kit.launcher.running("api-app")
    faults = [f.reason for f in kit.backend.observe().faults]
    assert "process_exited" in faults
    kit.tick(0.1)
    assert 1 == len(kit.launcher.running("api-app"))


def test_rapid_fail_sets_the_queue_inactive_and_reset_reactivates_it() -> None:
    """maxCrashes crashes within the interval halt the pool; its queue goes Inactive (503)."""
    kit = Kit()
    fragile = pool(
        "api",
        "api",
        "api-app",
        rapid_fail=RapidFail(max_crashes=3, interval_s=60.0),
        restart=RestartPolicy(initial_backoff_s=1.0, max_backoff_s=1.0),
    )
    state = desired(
        session(),
        queue("api"),
        group("api", "api", "http://+:8080/api/"),
        fragile,
    )
    kit.converge(state)
    assert EnabledState.ACTIVE == kit.state_of("api")
    for _ in range(3):
        kit.tick(1.0)  # the restart is due
        [proc] = kit.launcher.running("api-app")
        proc.exit(1)
        kit.tick()
    assert EnabledState.INACTIVE == kit.state_of("api")
    assert "pool_halted" in kit.event_names()
    assert [] == kit.launcher.running("api-app")
    faults = [(f.reason, f.repair) for f in kit.backend.observe().faults]
    assert [("rapid_fail", Repair.NONE)] == faults
    assert kit.reconciler.plan(state).is_empty  # a halted pool is drift, not a loop
    kit.tick(30.0)
    assert [] == kit.launcher.running("api-app")  # stays stopped
    assert kit.backend.reset("api")
    assert EnabledState.ACTIVE == kit.state_of("api")
    assert 1 == len(kit.launcher.running("api-app"))


def test_stopping_the_last_pool_of_a_queue_sets_it_inactive() -> None:
    """IIS pool stop: the queue stays, answering 503; a new pool makes it active again."""
    kit = Kit()
    state = site()
    kit.converge(state)
    without = desired(*[r for k, r in state.resources.items() if k != Key(Kind.WORKER, "api")])  # type: ignore[attr-defined]
    kit.converge(without)
    assert EnabledState.INACTIVE == kit.state_of("api")
    assert EnabledState.ACTIVE == kit.state_of("web")
    kit.converge(state)
    assert EnabledState.ACTIVE == kit.state_of("api")


def test_a_worker_that_ignores_stop_is_killed_after_the_shutdown_time_limit() -> None:
    """Terminate, then kill once shutdownTimeLimit has passed."""
    kit = Kit()
    state = site()
    kit.converge(state)
    [api] = kit.launcher.running("api-app")
    api.obeys = False
    without = desired(*[r for k, r in state.resources.items() if k != Key(Kind.WORKER, "api")])  # type: ignore[attr-defined]
    kit.converge(without)
    assert (1, 1) == (api.terminated, api.killed)
    assert "process_kill" in kit.event_names()


def test_a_command_that_cannot_start_counts_as_a_crash_until_rapid_fail() -> None:
    """Launch failures back off and halt the pool instead of spinning."""
    kit = Kit()
    kit.launcher.fail = True
    result = kit.apply(site())
    assert {"create worker/api", "create worker/web"} <= {o.step_id for o in result.failed}
    assert "spawn_failed" in kit.event_names()
    assert any("was stopped" in o.error for o in result.failed)


def test_a_pool_that_never_started_leaves_its_queue_stopped_until_a_pool_runs() -> None:
    """A failed start leaves no pool record behind; its queue answers 503 (stopped) until a
    working pool starts on it."""
    kit = Kit()
    kit.launcher.fail = True
    state = site()
    kit.apply(state)
    assert Key(Kind.WORKER, "api") not in kit.backend.observe().resources
    assert not kit.backend.pools
    assert EnabledState.INACTIVE == kit.state_of("api")
    without = desired(*[r for k, r in state.resources.items() if k.kind is not Kind.WORKER])  # type: ignore[attr-defined]
    kit.converge(without)
    assert EnabledState.INACTIVE == kit.state_of("api")
    kit.launcher.fail = False
    kit.clock.advance(301)  # past the backoff of the failed creates
    kit.converge(state)
    assert EnabledState.ACTIVE == kit.state_of("api")


def test_a_pool_under_another_account_is_refused_permanently() -> None:
    """Per-pool identities are not implemented on http.sys: said plainly, not retried."""
    kit = Kit()
    state = desired(session(), queue("api"), pool("api", "api", "api-app", user="alice"))
    result = kit.apply(state)
    [failed] = result.failed
    assert "own account" in failed.error
    with pytest.raises(PermanentBackendError):
        kit.backend.apply(next(s for s in make_plan(state, kit.backend.observe()).steps))


def test_a_failing_health_probe_recycles_the_pool() -> None:
    """unhealthyThreshold failures in a row start a new generation; the old one stops when ready."""
    kit = Kit(probe_results=[(False, "HTTP 500")] * 3)
    checked = pool("api", "api", "api-app", health=Health(path="/api/healthz", interval_s=5))
    state = desired(session(), queue("api"), group("api", "api", "http://+:8080/api/"), checked)
    kit.converge(state)
    [first] = kit.launcher.running("api-app")
    for _ in range(4):
        kit.tick(5.0)
    assert "pool_unhealthy" in kit.event_names()
    assert first.code is not None
    assert 1 == len(kit.launcher.running("api-app"))
    target = kit.probes[0]
    assert ("127.0.0.1", 8080, "localhost:8080", "/api/healthz") == (
        target.connect_host,
        target.port,
        target.host_header,
        target.path,
    )


# --- URL errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (183, TemporaryBackendError, "already registered"),
        (5, TemporaryBackendError, "urlacl"),
        (87, PermanentBackendError, "refused"),
    ],
)
def test_refused_urls_say_what_to_do(code: int, error: type[Exception], words: str) -> None:
    """183 (taken), 5 (no URL ACL) and 87 (syntax) each get an operator-facing message."""
    kit = Kit()
    state = desired(session(), queue("api"), group("api", "api", "http://+:8080/api/"))
    kit.converge(desired(session(), queue("api")))
    kit.system.script("HttpAddUrlToUrlGroup", code)
    step = make_plan(state, kit.backend.observe()).step("create urlgroup/api")
    with pytest.raises(error) as info:
        kit.backend.apply(step)
    assert words in str(info.value) + getattr(info.value, "detail", "")
    # the half-made group was taken down again
    assert not kit.system.groups


# --- Wine ----------------------------------------------------------------------------------------
def test_under_wine_the_site_converges_without_calling_an_aborting_function() -> None:
    """One URL group per URL, no queue or group properties, no Query calls, inheritable handles."""
    kit = Kit(Flavor.WINE8)
    state = site(api_urls=("http://+:8080/api/", "http://+:8080/v2/api/"))
    kit.converge(state)
    calls = kit.system.functions(PID)
    assert not set(calls) & _ffi.WINE_ABORTING_FUNCTIONS
    assert "HttpSetRequestQueueProperty" not in calls
    assert 3 == calls.count("HttpCreateUrlGroup")  # api: two URLs, two groups; web: one
    assert all(h.inheritable for h in kit.system.handles.values())
    notes = [f["message"] for e, f in kit.events if e == "note"]
    assert any("not supported here (Wine)" in n for n in notes)


def test_under_wine_workers_get_the_queue_handle_to_inherit() -> None:
    """Names are ignored by Wine: the handle value travels in the environment and is inherited."""
    kit = Kit(Flavor.WINE8)
    kit.converge(site())
    [api] = kit.launcher.running("api-app")
    handle = kit.backend.queues["api"].handle.handle
    assert (str(handle), handle) == (
        api.spec.env["ORCHESTRATOR_QUEUE_HANDLE"],
        api.spec.inherit_handle,
    )


def test_under_wine_updates_moves_and_deletes_converge_too() -> None:
    """URL changes, a group moving queues (rebuilt), rapid-fail and delete-all, all Wine-safe."""
    kit = Kit(Flavor.WINE8)
    kit.converge(site())
    kit.converge(site(api_urls=("http://+:8080/api/", "http://+:8080/more/")))
    moved = desired(
        session(),
        queue("api"),
        queue("web"),
        group("api", "web", "http://+:8080/api/"),
        group("web", "web", "http://+:8080/"),
        pool("api", "api", "api-app"),
        pool("web", "web", "web-app"),
    )
    kit.converge(moved)
    web_handle = kit.backend.queues["web"].handle.handle
    assert web_handle == kit.system.registrations["http://+:8080/api/"].queue_handle
    kit.reconciler.reconcile_once(desired(), allow_mass_delete=True)
    assert {} == dict(kit.backend.observe().resources)
    assert not kit.system.registrations
    kit.backend.close()
    assert not set(kit.system.functions(PID)) & _ffi.WINE_ABORTING_FUNCTIONS


def test_under_wine_rapid_fail_cannot_set_the_queue_inactive_and_says_so() -> None:
    """No queue state under Wine: the halt is reported, the queue property is never touched."""
    kit = Kit(Flavor.WINE8)
    fragile = pool("api", "api", "api-app", rapid_fail=RapidFail(max_crashes=2, interval_s=60.0))
    kit.converge(
        desired(session(), queue("api"), group("api", "api", "http://+:8080/api/"), fragile)
    )
    for _ in range(2):
        kit.tick(1.0)
        for proc in kit.launcher.running("api-app"):
            proc.exit(1)
        kit.tick()
    assert "pool_halted" in kit.event_names()
    assert "HttpSetRequestQueueProperty" not in kit.system.functions(PID)
    notes = [f["message"] for e, f in kit.events if e == "note"]
    assert any("cannot be set Inactive" in n for n in notes)


# --- the surface --------------------------------------------------------------------------------------
def test_status_has_the_linux_backends_keys() -> None:
    """workers, pools, listener, queues: the shape ``orchestrator status`` renders."""
    kit = Kit()
    kit.converge(site())
    status = kit.backend.status()
    assert {"workers", "pools", "listener", "queues"} <= set(status)
    assert {"api", "web"} == set(status["pools"])  # type: ignore[arg-type]
    worker = status["workers"][0]  # type: ignore[index]
    assert {"pool", "pid", "user", "state", "uptime_s", "restarts", "health", "last_exit"} <= set(
        worker
    )
    assert {"pid", "pids", "user", "addresses", "restarts"} <= set(status["listener"])  # type: ignore[arg-type]
    assert ["api", "web"] == [q["name"] for q in status["queues"]]  # type: ignore[attr-defined]


def test_capabilities_are_reduced_under_wine() -> None:
    """Wine lacks queue properties, https and many URLs per group; health probes work anywhere."""
    windows, wine = Kit().backend.capabilities(), Kit(Flavor.WINE8).backend.capabilities()
    assert {
        "queue_state",
        "verbosity503",
        "queue_length",
        "urls_per_group_many",
    } <= windows.features
    assert not {"queue_state", "urls_per_group_many", "https"} & wine.features
    assert {"health_probe"} <= wine.features & windows.features
    assert "httpsys" == windows.backend


def test_without_a_binding_linux_cannot_run_the_backend() -> None:
    """On Linux the backend needs an injected binding: the registry reports why."""
    with pytest.raises(PermanentBackendError, match="Windows"):
        HttpSysBackend(run_dir="")


def test_a_session_asking_for_the_linux_backend_is_refused() -> None:
    """The manifest says linux, the controller runs httpsys: permanent, with a reason."""
    from orchestrator.model.desired import Backend

    kit = Kit()
    result = kit.apply(desired(session(backend=Backend.LINUX)))
    assert "linux backend" in result.failed[0].error


def test_observation_holds_exactly_the_managed_objects() -> None:
    """After apply, observe equals desired (the contract's convergence check)."""
    kit = Kit()
    state = site()
    kit.converge(state)
    observed = kit.backend.observe()
    assert dict(state.resources) == dict(observed.resources)  # type: ignore[attr-defined]
    assert "httpsys" == observed.backend
    assert dataclasses.replace(observed).fingerprint() == kit.backend.observe().fingerprint()
