"""Parsing ``netsh http show servicestate`` (pure) and what observe makes of it.

The first sample is the shape given in notes/httpsys-backend.md section 3; the second is the
multi-line layout of other builds (lists on their own lines, newer process lines). Real output of
current Windows builds is on the Windows-only checklist (docs/backends.md).
"""

from __future__ import annotations

from orchestrator.backends.httpsys.servicestate import (
    ServiceState,
    ServiceStateQueue,
    parse_servicestate,
)
from orchestrator.model import Key, Kind, Repair
from orchestrator.plan import Op, make_plan
from tests.support.states import desired, group, queue, session
from tests.unit.httpsys.backend_kit import Kit

NOTES_SAMPLE = """\
Snapshot of HTTP service state (Server Session View):
-----------------------------------------------------

Server session ID: FF00000120000001
    Version: 2.0
    State: Active
    Properties: Max bandwidth, Timeouts (Entity body timeout (secs): 120 ...)
    URL groups:
    URL group ID: FE00000140000001
        State: Active
        Request queue name: DefaultAppPool
        Properties: Max bandwidth: inherited, Max connections: inherited, Timeouts: Timeout values inherited
        Number of registered URLs: 1
        Registered URLs: HTTP://*:80/
Request queues:
    Request queue name: DefaultAppPool
        Version: 2.0
        State: Active
        Request queue 503 verbosity level: Limited
        Max requests: 1000
        Number of active processes attached: 1
        Controller process ID: 3408
        Process IDs: 5678
"""

MULTILINE_SAMPLE = """\
Snapshot of HTTP service state (Server Session View):
-----------------------------------------------------

Server session ID: FF00000520000001
    Version: 2.0
    State: Active
    Properties:
        Max bandwidth: 4294967295
        Timeouts:
            Entity body timeout (secs): 120
            Minimum send rate (bytes/sec): 150
    URL groups:
    URL group ID: FE00000540000001
        State: Active
        Request queue name: api
        Properties:
            Max bandwidth: inherited
            Max connections: 9
        Number of registered URLs: 2
        Registered URLs:
            HTTP://+:8080/API/
            HTTP://+:8080/V2/API/
    URL group ID: FE00000540000002
        State: Inactive
        Request queue name: Request queue is unnamed.
        Number of registered URLs: 0
        Registered URLs:

Request queues:
    Request queue name: api
        Version: 2.0
        State: Inactive
        Request queue 503 verbosity level: Full
        Max requests: 25
        Number of active processes attached: 2
        Controller process ID: 100
        Processes:
            ID: 5678, image: C:\\Python\\python.exe
            ID: 5679, image: C:\\Python\\python.exe
        Active requests: 0
        Queued requests: 3
    Request queue name: Request queue is unnamed.
        Version: 2.0
        State: Active
        Request queue 503 verbosity level: Basic
        Max requests: 1000
        Number of active processes attached: 1
        Process IDs:
            4
"""


def test_the_notes_sample_parses_into_session_group_and_queue() -> None:
    """The one-line layout of the notes: the whole graph, with PIDs and the controller."""
    state = parse_servicestate(NOTES_SAMPLE)
    [session_state] = state.sessions
    assert ("FF00000120000001", "Active") == (session_state.id, session_state.state)
    [grp] = session_state.groups
    assert ("FE00000140000001", "Active", "DefaultAppPool", ("HTTP://*:80/",)) == (
        grp.id,
        grp.state,
        grp.queue,
        grp.urls,
    )
    assert (
        ServiceStateQueue(
            name="DefaultAppPool",
            state="Active",
            verbosity503="Limited",
            max_requests=1000,
            processes=1,
            controller_pid=3408,
            pids=(5678,),
        ),
    ) == state.queues


def test_multi_line_lists_unnamed_queues_and_newer_process_lines_parse() -> None:
    """URLs and PIDs on their own lines, "unnamed" as None, "ID: n, image: ..." lines."""
    state = parse_servicestate(MULTILINE_SAMPLE)
    groups = state.sessions[0].groups
    assert [("api", ("HTTP://+:8080/API/", "HTTP://+:8080/V2/API/")), (None, ())] == [
        (g.queue, g.urls) for g in groups
    ]
    assert "Inactive" == groups[1].state
    api = state.queue("API")
    assert api is not None
    assert ("Inactive", "Full", 25, 2, 100, (5678, 5679)) == (
        api.state,
        api.verbosity503,
        api.max_requests,
        api.processes,
        api.controller_pid,
        api.pids,
    )
    unnamed = state.queues[1]
    assert (None, (4,), None) == (unnamed.name, unnamed.pids, unnamed.controller_pid)
    assert "http://+:8080/v2/api/" in state.registered_urls()


def test_empty_or_foreign_text_parses_to_nothing() -> None:
    """No session, no queue: nothing to report (and nothing raised)."""
    assert ServiceState((), ()) == parse_servicestate("")
    assert ServiceState((), ()) == parse_servicestate("The requested operation requires elevation.")


def _servicestate_for(kit: Kit, urls: list[str]) -> str:
    handle = kit.backend.queues["api"].handle.handle
    lines = "\n".join(f"            {u.upper()}" for u in urls)
    return f"""Server session ID: FF00000120000001
    State: Active
    URL group ID: FE00000140000001
        State: Active
        Request queue name: api
        Registered URLs:
{lines}
Request queues:
    Request queue name: api
        State: Active
        Process IDs: {handle}
"""


def test_observe_uses_servicestate_to_find_an_unregistered_url_and_the_plan_repairs_it() -> None:
    """A URL http.sys no longer lists is a fault that plans an in-place update, which re-adds it."""
    kit = Kit(servicestate="")
    state = desired(session(), queue("api"), group("api", "api", "http://+:8080/api/"))
    kit.converge(state)
    kit.servicestate_text = _servicestate_for(kit, [])
    kit.backend.service_state.forget()
    faults = [(f.key, f.reason, f.repair) for f in kit.backend.observe().faults]
    assert [(Key(Kind.URLGROUP, "api"), "url_not_registered", Repair.UPDATE)] == faults
    plan = make_plan(state, kit.reconciler.live())
    assert [("update urlgroup/api", Op.UPDATE)] == [(s.id, s.op) for s in plan.steps]
    mark = kit.mark()
    kit.apply(state)
    assert "HttpAddUrlToUrlGroup" in kit.calls_since(mark)
    kit.servicestate_text = _servicestate_for(kit, ["http://+:8080/api/"])
    kit.backend.service_state.forget()
    assert kit.reconciler.plan(state).is_empty


def test_status_lists_the_processes_attached_to_each_queue() -> None:
    """On Windows, status shows the PIDs netsh reports for the queue."""
    kit = Kit(servicestate="")
    kit.converge(desired(session(), queue("api"), group("api", "api", "http://+:8080/api/")))
    kit.servicestate_text = _servicestate_for(kit, ["http://+:8080/api/"])
    kit.backend.service_state.forget()
    [api] = kit.backend.status()["queues"]  # type: ignore[misc]
    assert [kit.backend.queues["api"].handle.handle] == api["attached_pids"]
