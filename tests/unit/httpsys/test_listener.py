"""The controller's call sequence: start, stop and dispose in ASP.NET Core's order, against the fake."""

from __future__ import annotations

import pytest

from orchestrator.backends.httpsys import _ffi
from orchestrator.backends.httpsys._ffi import EnabledState, ErrorCode, HttpApiError, ServerProperty
from orchestrator.backends.httpsys.binding import ConnectionLimit, QueueBinding, TimeoutLimits
from orchestrator.backends.httpsys.capabilities import capabilities_for
from orchestrator.backends.httpsys.fake import Call, FakeHttpSys, Flavor, RecordingBinding
from orchestrator.backends.httpsys.handles import ApiInit
from orchestrator.backends.httpsys.listener import (
    GroupOptions,
    HttpSysListener,
    QueueOptions,
    Route,
)
from orchestrator.backends.httpsys.queue_open import QueueMode

WINDOWS = capabilities_for(None)
WINE = capabilities_for("8.0")
ROUTES = (Route("http://+:8080/app/", 11), Route("http://+:8080/app/deep/", 21))


def _binding(flavor: Flavor = Flavor.WINDOWS, pid: int = 1) -> RecordingBinding:
    binding = RecordingBinding(FakeHttpSys(flavor), pid)
    binding.initialize()
    return binding


def _listener(binding: RecordingBinding, **overrides: object) -> HttpSysListener:
    caps = WINE if binding.system.flavor is Flavor.WINE8 else WINDOWS
    args: dict[str, object] = {"queue_name": "api", "routes": ROUTES}
    args.update(overrides)
    return HttpSysListener(binding, caps, **args)  # type: ignore[arg-type]


def _after_init(binding: RecordingBinding) -> list[str]:
    return [c.function for c in binding.calls if c.function != "HttpInitialize"]


def test_start_follows_session_group_queue_options_bind_add() -> None:
    """ASP.NET order: session, URL group, queue, queue options, group options, bind, add URLs."""
    binding = _binding()
    _listener(
        binding,
        queue_options=QueueOptions(max_length=50),
        group_options=GroupOptions(timeouts=TimeoutLimits(entity_body_s=30), max_connections=9),
    ).start()
    assert [
        "HttpCreateServerSession",
        "HttpCreateUrlGroup",
        "HttpCreateRequestQueue",
        "HttpSetRequestQueueProperty",
        "HttpSetRequestQueueProperty",
        "HttpSetRequestQueueProperty",
        "HttpSetUrlGroupProperty",
        "HttpSetUrlGroupProperty",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
        "HttpAddUrlToUrlGroup",
    ] == _after_init(binding)
    group_props = [c.args[2] for c in binding.system.calls_to("HttpSetUrlGroupProperty")]
    assert isinstance(group_props[-1], QueueBinding)
    assert [TimeoutLimits(entity_body_s=30), ConnectionLimit(9)] == group_props[:2]


def test_groups_are_bound_before_any_url_is_added() -> None:
    """Bind-before-add: no URL is registered while its group has no queue."""
    binding = _binding()
    _listener(binding).start()
    names = _after_init(binding)
    assert names.index("HttpSetUrlGroupProperty") < names.index("HttpAddUrlToUrlGroup")


def test_routes_are_registered_with_their_url_contexts() -> None:
    """Each prefix carries its own 64-bit UrlContext (the route id)."""
    binding = _binding()
    _listener(binding, routes=(Route("http://+:8080/app/", 2**63 + 5),)).start()
    assert {"http://+:8080/app/": 2**63 + 5} == binding.system.route_table()


def test_queue_options_are_set_as_bare_values() -> None:
    """QueueLength, 503Verbosity and State go to the queue with their enum values."""
    binding = _binding()
    options = QueueOptions(
        max_length=50, state=EnabledState.INACTIVE, verbosity503=_ffi.Verbosity503.LIMITED
    )
    _listener(binding, queue_options=options).start()
    sets = [c.args[1:] for c in binding.system.calls_to("HttpSetRequestQueueProperty")]
    assert [
        (ServerProperty.QUEUE_LENGTH, 50),
        (ServerProperty.VERBOSITY_503, 1),
        (ServerProperty.STATE, 1),
    ] == sets


def test_stop_removes_urls_then_unbinds() -> None:
    """Stop: every prefix removed first, then the group detached (binding to NULL)."""
    binding = _binding()
    listener = _listener(binding)
    listener.start()
    mark = len(binding.calls)
    listener.stop()
    tail = binding.calls[mark:]
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
    ] == [c.function for c in tail]
    assert QueueBinding(None) == tail[-1].args[2]
    assert {} == binding.system.route_table()


def test_dispose_closes_queue_then_group_then_session() -> None:
    """Dispose (after stop): HttpCloseRequestQueue, HttpCloseUrlGroup, HttpCloseServerSession."""
    binding = _binding()
    listener = _listener(binding)
    listener.start()
    listener.stop()
    mark = len(binding.calls)
    listener.dispose()
    assert [
        "HttpCloseRequestQueue",
        "HttpCloseUrlGroup",
        "HttpCloseServerSession",
    ] == [c.function for c in binding.calls[mark:]]
    assert ({}, {}, {}) == (
        binding.system.sessions,
        binding.system.groups,
        binding.system.handles,
    )


def test_dispose_of_a_started_listener_stops_it_first() -> None:
    """Dispose without stop: remove URLs, unbind, then close in order."""
    binding = _binding()
    with _listener(binding):
        mark = len(binding.calls)
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseRequestQueue",
        "HttpCloseUrlGroup",
        "HttpCloseServerSession",
    ] == [c.function for c in binding.calls[mark:]]


def test_dispose_twice_closes_nothing_twice() -> None:
    """Handles close once; a second dispose makes no call."""
    binding = _binding()
    listener = _listener(binding)
    listener.start()
    listener.dispose()
    mark = len(binding.calls)
    listener.dispose()
    assert [] == binding.calls[mark:]


def test_a_failed_start_undoes_everything_and_reraises() -> None:
    """A 183 on the second prefix: the first is removed, the group unbound, all closed."""
    binding = _binding()
    binding.system.script("HttpAddUrlToUrlGroup", 0, ErrorCode.ERROR_ALREADY_EXISTS)
    listener = _listener(binding)
    with pytest.raises(HttpApiError) as info:
        listener.start()
    assert ErrorCode.ERROR_ALREADY_EXISTS == info.value.code
    failed_at = next(i for i, c in enumerate(binding.calls) if c.result)
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseRequestQueue",
        "HttpCloseUrlGroup",
        "HttpCloseServerSession",
    ] == [c.function for c in binding.calls[failed_at + 1 :]]
    assert ({}, {}, {}) == (
        binding.system.route_table(),
        binding.system.handles,
        binding.system.sessions,
    )
    assert not listener.started


def test_an_existing_queue_is_attached_left_unconfigured_and_reported_as_drift() -> None:
    """CreateOrAttach onto another creator's queue: no properties, no prefixes, drift recorded."""
    system = FakeHttpSys()
    other = system.process(7)
    other.initialize()
    other.create_request_queue("api")
    binding = system.process(1)
    binding.initialize()
    listener = _listener(
        binding, mode=QueueMode.CREATE_OR_ATTACH, queue_options=QueueOptions(max_length=5)
    )
    listener.start()
    assert not listener.queue.created  # type: ignore[union-attr]
    assert listener.drift
    assert "already existed" in listener.drift[0]
    mine = [c.function for c in system.calls if c.pid == 1]
    assert "HttpSetRequestQueueProperty" not in mine
    assert "HttpAddUrlToUrlGroup" not in mine
    assert [ErrorCode.ERROR_ALREADY_EXISTS, 0] == [
        c.result for c in system.calls_to("HttpCreateRequestQueue") if c.pid == 1
    ]


def test_under_wine_each_prefix_gets_its_own_bound_group() -> None:
    """One URL per group: two prefixes make two groups, both bound to the queue before adding."""
    binding = _binding(Flavor.WINE8)
    listener = _listener(binding)
    listener.start()
    assert [
        "HttpCreateServerSession",
        "HttpCreateUrlGroup",
        "HttpCreateUrlGroup",
        "HttpCreateRequestQueue",
        "HttpSetUrlGroupProperty",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
        "HttpAddUrlToUrlGroup",
    ] == _after_init(binding)
    assert {"http://+:8080/app/": 11, "http://+:8080/app/deep/": 21} == (
        binding.system.route_table()
    )
    assert 2 == len(listener.groups)


def test_under_wine_unsupported_options_are_skipped_not_called() -> None:
    """No 120s and no aborting calls: options Wine lacks are listed in skipped."""
    binding = _binding(Flavor.WINE8)
    listener = _listener(
        binding,
        queue_options=QueueOptions(),
        group_options=GroupOptions(timeouts=TimeoutLimits(entity_body_s=5)),
    )
    listener.start()
    listener.dispose()
    assert all(c.result == 0 for c in binding.calls)
    assert 2 == len(listener.skipped)
    assert not {"HttpSetRequestQueueProperty", "HttpShutdownRequestQueue"} & set(
        binding.system.functions()
    )


def test_add_route_under_wine_binds_a_new_group_before_adding() -> None:
    """A route added while running gets a fresh group, bound before its URL is added."""
    binding = _binding(Flavor.WINE8)
    listener = _listener(binding, routes=ROUTES[:1])
    listener.start()
    mark = len(binding.calls)
    listener.add_route(ROUTES[1])
    assert [
        "HttpCreateUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpAddUrlToUrlGroup",
    ] == [c.function for c in binding.calls[mark:]]


def test_remove_route_under_wine_unbinds_and_closes_the_emptied_group() -> None:
    """Removing a route removes its URL, then unbinds and closes its one-URL group."""
    binding = _binding(Flavor.WINE8)
    listener = _listener(binding)
    listener.start()
    mark = len(binding.calls)
    listener.remove_route("http://+:8080/app/deep/")
    assert [
        "HttpRemoveUrlFromUrlGroup",
        "HttpSetUrlGroupProperty",
        "HttpCloseUrlGroup",
    ] == [c.function for c in binding.calls[mark:]]
    assert {"http://+:8080/app/": 11} == binding.system.route_table()


def test_remove_route_on_windows_keeps_the_shared_group() -> None:
    """With many URLs per group only the URL goes."""
    binding = _binding()
    listener = _listener(binding)
    listener.start()
    mark = len(binding.calls)
    listener.remove_route("http://+:8080/app/deep/")
    assert ["HttpRemoveUrlFromUrlGroup"] == [c.function for c in binding.calls[mark:]]


def test_remove_route_of_an_unknown_url_is_a_key_error() -> None:
    """Only registered routes can be removed."""
    listener = _listener(_binding())
    listener.start()
    with pytest.raises(KeyError):
        listener.remove_route("http://+:9/none/")


def test_api_init_initializes_server_and_config_separately() -> None:
    """SERVER and CONFIG are two HttpInitialize calls (Wine starts no driver for SERVER|CONFIG)."""
    binding = RecordingBinding()
    with ApiInit(binding, _ffi.HTTP_INITIALIZE_SERVER | _ffi.HTTP_INITIALIZE_CONFIG):
        pass
    assert [
        Call(1000, "HttpInitialize", (_ffi.HTTP_INITIALIZE_SERVER,), 0),
        Call(1000, "HttpInitialize", (_ffi.HTTP_INITIALIZE_CONFIG,), 0),
        Call(1000, "HttpTerminate", (_ffi.HTTP_INITIALIZE_CONFIG,), 0),
        Call(1000, "HttpTerminate", (_ffi.HTTP_INITIALIZE_SERVER,), 0),
    ] == binding.calls


def test_api_init_under_wine_starts_the_driver() -> None:
    """With ApiInit, SERVER|CONFIG still leaves Wine's driver running, so queues can be created."""
    binding = RecordingBinding(FakeHttpSys(Flavor.WINE8))
    with ApiInit(binding, _ffi.HTTP_INITIALIZE_SERVER | _ffi.HTTP_INITIALIZE_CONFIG):
        assert binding.create_request_queue(None) > 0


def test_api_init_that_fails_halfway_terminates_what_it_initialized() -> None:
    """CONFIG refused: the SERVER part is terminated before the error propagates."""
    binding = RecordingBinding()
    binding.system.script("HttpInitialize", 0, ErrorCode.ERROR_ACCESS_DENIED)
    with pytest.raises(HttpApiError):
        ApiInit(binding, _ffi.HTTP_INITIALIZE_SERVER | _ffi.HTTP_INITIALIZE_CONFIG)
    assert ["HttpInitialize", "HttpInitialize", "HttpTerminate"] == binding.system.functions()
