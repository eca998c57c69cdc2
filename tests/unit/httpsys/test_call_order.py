"""The exact http.sys calls ``HttpSysBackend`` makes, in ASP.NET Core's order, against the fake.

ASP.NET Core's HttpSysListener (notes/httpsys-backend.md section 2) sets a queue's properties as its
creator, binds every URL group to the queue before adding any URL, and takes things down in reverse:
remove the URLs, unbind, then close the queue, the URL groups and the session. The backend applies
one plan step at a time (session, queues, then URL groups), so its queue exists before its URL
groups; within each object the order is ASP.NET's. Under Wine every URL gets its own URL group,
bound before its URL is added. These checks came with the removal of ``HttpSysListener``, which
repeated that sequence for tests only.
"""

from __future__ import annotations

import pytest

from orchestrator.backends.httpsys.routes import route_id
from orchestrator.errors import TemporaryBackendError
from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ErrorCode, ServerProperty
from orchestrator.httpapi.binding import ConnectionLimit, QueueBinding, TimeoutLimits
from orchestrator.model import DesiredState
from orchestrator.model.desired import State, TimeoutOverrides, Verbosity503
from orchestrator.plan import make_plan
from tests.support.httpsys_fake import Call, Flavor
from tests.support.states import desired, group, queue, session
from tests.unit.httpsys.backend_kit import PID, Kit

APP = "http://+:8080/app/"
DEEP = "http://+:8080/app/deep/"


def _site(*urls: str, **queue_options: object) -> DesiredState:
    """One app with no pool: a session, queue "api" and URL group "api" serving ``urls``."""
    return desired(session(), queue("api", **queue_options), group("api", "api", *urls))


def _calls(kit: Kit, mark: int) -> list[Call]:
    """The controller's calls since ``mark`` that change something (observe's queries left out)."""
    return [
        c
        for c in kit.system.calls[mark:]
        if c.pid == PID and not c.function.startswith("HttpQuery")
    ]


def _names(calls: list[Call]) -> list[str]:
    return [c.function for c in calls]


def test_a_new_site_is_made_in_aspnet_order_with_bind_before_add() -> None:
    """Session (its timers), queue (its three properties), URL group (timers, connection limit,
    state), the binding, then the URLs, each with its route id as UrlContext."""
    kit = Kit()
    state = desired(
        session(),
        queue("api", max_length=50),
        group(
            "api",
            "api",
            APP,
            DEEP,
            timeouts=TimeoutOverrides(entity_body_s=30),
            max_connections=9,
        ),
    )
    mark = kit.mark()
    kit.converge(state)
    calls = _calls(kit, mark)
    assert [
        "HttpCreateServerSession",
        "HttpSetServerSessionProperty",
        "HttpCreateRequestQueue",
        "HttpSetRequestQueueProperty",
        "HttpSetRequestQueueProperty",
        "HttpSetRequestQueueProperty",
        "HttpCreateUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpSetUrlGroupProperty",
        "HttpSetUrlGroupProperty",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
        "HttpAddUrlToUrlGroup",
    ] == _names(calls)
    handle = kit.backend.queues["api"].handle.handle
    assert [
        TimeoutLimits(entity_body_s=30),
        ConnectionLimit(9),
        EnabledState.ACTIVE,
        QueueBinding(handle),  # bound before any URL is added
    ] == [c.args[2] for c in calls if c.function == "HttpSetUrlGroupProperty"]
    assert {APP: route_id("api", APP), DEEP: route_id("api", DEEP)} == kit.system.route_table()


def test_queue_properties_are_set_in_order_as_bare_values() -> None:
    """QueueLength, 503Verbosity and State go to the queue as their http.sys values."""
    kit = Kit()
    mark = kit.mark()
    kit.converge(_site(APP, max_length=50, verbosity503=Verbosity503.LIMITED, state=State.DISABLED))
    assert [
        (ServerProperty.QUEUE_LENGTH, 50),
        (ServerProperty.VERBOSITY_503, int(_ffi.Verbosity503.LIMITED)),
        (ServerProperty.STATE, int(EnabledState.INACTIVE)),
    ] == [c.args[1:] for c in _calls(kit, mark) if c.function == "HttpSetRequestQueueProperty"]


def test_deleting_a_url_group_removes_its_urls_then_unbinds_then_closes() -> None:
    """Every URL removed first, then the group detached (binding to NULL), then closed; the queue and
    the session stay."""
    kit = Kit()
    kit.converge(_site(APP, DEEP))
    mark = kit.mark()
    kit.converge(desired(session(), queue("api")))
    calls = _calls(kit, mark)
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseUrlGroup",
    ] == _names(calls)
    assert QueueBinding(None) == calls[2].args[2]
    assert {} == kit.system.route_table()
    assert kit.system.queue_named("api") is not None
    assert kit.system.sessions


def test_close_releases_urls_queue_group_session_in_order_and_only_once() -> None:
    """Close: remove URLs, unbind, close the queue, the URL group and the session, terminate; the
    machine holds nothing of ours afterwards, and a second close makes no call."""
    kit = Kit()
    kit.converge(_site(APP, DEEP))
    mark = kit.mark()
    kit.backend.close()
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseRequestQueue",
        "HttpCloseUrlGroup",
        "HttpCloseServerSession",
        "HttpTerminate",
    ] == _names(_calls(kit, mark))
    assert ({}, {}, {}, {}) == (
        kit.system.route_table(),
        kit.system.sessions,
        kit.system.groups,
        kit.system.handles,
    )
    mark = kit.mark()
    kit.backend.close()
    assert [] == kit.calls_since(mark)


def test_a_group_that_fails_halfway_is_taken_down_again() -> None:
    """A 183 on the second URL: the first is removed, the group unbound and closed, and the step
    fails (temporary, with what to do); nothing of the group stays registered."""
    kit = Kit()
    kit.converge(desired(session(), queue("api")))
    kit.system.script("HttpAddUrlToUrlGroup", 0, ErrorCode.ERROR_ALREADY_EXISTS)
    step = make_plan(_site(APP, DEEP), kit.backend.observe()).step("create urlgroup/api")
    mark = kit.mark()
    with pytest.raises(TemporaryBackendError, match="already registered"):
        kit.backend.apply(step)
    calls = _calls(kit, mark)
    failed_at = next(i for i, c in enumerate(calls) if c.result)
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseUrlGroup",
    ] == _names(calls[failed_at + 1 :])
    assert QueueBinding(None) == calls[-2].args[2]
    assert ({}, {}) == (kit.system.route_table(), kit.system.groups)
    assert "api" not in kit.backend.resources.groups


def test_removing_a_url_on_windows_keeps_the_shared_group() -> None:
    """With many URLs per group only the URL goes: no unbind, no close."""
    kit = Kit()
    kit.converge(_site(APP, DEEP))
    mark = kit.mark()
    kit.converge(_site(APP))
    assert ["HttpRemoveUrlFromUrlGroup"] == _names(_calls(kit, mark))
    assert {APP: route_id("api", APP)} == kit.system.route_table()


# --- Wine: one URL per URL group ------------------------------------------------------------------
def test_under_wine_each_url_gets_its_own_group_bound_before_its_url() -> None:
    """Two URLs make two URL groups, each bound to the queue before its URL is added; no property
    Wine lacks is set (notes say so instead) and every call succeeds, close included."""
    kit = Kit(Flavor.WINE8)
    mark = kit.mark()
    kit.converge(_site(APP, DEEP))
    calls = _calls(kit, mark)
    assert [
        "HttpCreateServerSession",
        "HttpCreateRequestQueue",
        "HttpCreateUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
        "HttpCreateUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
    ] == _names(calls)
    handle = kit.backend.queues["api"].handle.handle
    assert [QueueBinding(handle)] * 2 == [
        c.args[2] for c in calls if c.function == "HttpSetUrlGroupProperty"
    ]
    assert {APP: route_id("api", APP), DEEP: route_id("api", DEEP)} == kit.system.route_table()
    assert 2 == len(kit.backend.resources.groups["api"].handles)
    notes = [str(f["message"]) for e, f in kit.events if e == "note"]
    assert any(n.startswith("queue length, 503 verbosity and state") for n in notes)
    assert any(n.startswith("URL group timeouts, connection limits and state") for n in notes)
    kit.backend.close()
    assert all(c.result == 0 for c in kit.system.calls)
    assert not {"HttpSetRequestQueueProperty", "HttpShutdownRequestQueue"} & set(
        kit.system.functions()
    )


def test_under_wine_an_added_url_gets_a_new_bound_group_and_a_removed_one_takes_its_group() -> None:
    """Adding a URL: a new group, bound, then the URL. Removing it: the URL, the unbind, the close
    of the group it leaves empty; the other URL keeps its group."""
    kit = Kit(Flavor.WINE8)
    kit.converge(_site(APP))
    mark = kit.mark()
    kit.converge(_site(APP, DEEP))
    assert [
        "HttpCreateUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
    ] == _names(_calls(kit, mark))
    mark = kit.mark()
    kit.converge(_site(APP))
    calls = _calls(kit, mark)
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseUrlGroup",
    ] == _names(calls)
    assert QueueBinding(None) == calls[1].args[2]
    assert {APP: route_id("api", APP)} == kit.system.route_table()
    assert 1 == len(kit.backend.resources.groups["api"].handles)
