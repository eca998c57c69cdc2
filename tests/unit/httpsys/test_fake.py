"""RecordingBinding: the in-memory http.sys answers with the real Win32 codes and records every call."""

from __future__ import annotations

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ErrorCode, HttpApiError, ServerProperty
from orchestrator.httpapi.binding import (
    BandwidthLimit,
    ConnectionLimit,
    QueueBinding,
    TimeoutLimits,
)
from tests.support.httpsys_fake import (
    Call,
    FakeHttpSys,
    Flavor,
    RecordingBinding,
    WineAbortError,
)

OPEN_EXISTING = _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING


def _ready(flavor: Flavor = Flavor.WINDOWS, pid: int = 1000) -> RecordingBinding:
    binding = RecordingBinding(FakeHttpSys(flavor), pid)
    binding.initialize()
    return binding


def _code(exc: pytest.ExceptionInfo[HttpApiError]) -> int:
    return exc.value.code


def test_calls_before_initialize_fail_with_1114() -> None:
    """Nothing works before HttpInitialize (ERROR_DLL_INIT_FAILED)."""
    binding = RecordingBinding()
    with pytest.raises(HttpApiError) as info:
        binding.create_server_session()
    assert ErrorCode.ERROR_DLL_INIT_FAILED == _code(info)


def test_calls_are_recorded_in_order_with_pid_args_and_result() -> None:
    """The log holds the Win32 names, the arguments in API order, and the result."""
    binding = _ready()
    session = binding.create_server_session()
    with pytest.raises(HttpApiError):
        binding.close_url_group(12345)
    assert [
        Call(1000, "HttpInitialize", (_ffi.HTTP_INITIALIZE_SERVER,), 0),
        Call(1000, "HttpCreateServerSession", (), 0),
        Call(1000, "HttpCloseUrlGroup", (12345,), ErrorCode.ERROR_INVALID_PARAMETER),
    ] == binding.calls
    assert session > 0


def test_duplicate_queue_name_without_open_existing_is_183() -> None:
    """A second create of a taken name fails with ERROR_ALREADY_EXISTS."""
    binding = _ready()
    binding.create_request_queue("api")
    binding.system.initialized[2000] = _ffi.HTTP_INITIALIZE_SERVER
    with pytest.raises(HttpApiError) as info:
        binding.process(2000).create_request_queue("api")
    assert ErrorCode.ERROR_ALREADY_EXISTS == _code(info)


def test_open_existing_of_a_missing_name_is_2() -> None:
    """OPEN_EXISTING on a name nobody created fails with ERROR_FILE_NOT_FOUND."""
    binding = _ready()
    with pytest.raises(HttpApiError) as info:
        binding.create_request_queue("nope", flags=OPEN_EXISTING)
    assert ErrorCode.ERROR_FILE_NOT_FOUND == _code(info)


def test_open_existing_shares_the_queue_object() -> None:
    """An attached handle refers to the creator's queue, which remembers its creator."""
    system = FakeHttpSys()
    controller, worker = system.process(1), system.process(2)
    controller.initialize()
    worker.initialize()
    created = controller.create_request_queue("api")
    attached = worker.create_request_queue("api", flags=OPEN_EXISTING)
    assert system.queue_of(created) is system.queue_of(attached)
    assert 1 == system.queue_of(attached).creator_pid


def test_open_existing_with_a_security_descriptor_is_87() -> None:
    """OPEN_EXISTING needs a NULL SECURITY_ATTRIBUTES."""
    binding = _ready()
    binding.create_request_queue("api")
    with pytest.raises(HttpApiError) as info:
        binding.create_request_queue("api", security_descriptor="D:", flags=OPEN_EXISTING)
    assert ErrorCode.ERROR_INVALID_PARAMETER == _code(info)


@pytest.mark.parametrize("name", ["", "a\\b", "a/b", "x" * 261])
def test_bad_queue_names_are_123(name: str) -> None:
    """Empty, too long, or path-like names fail with ERROR_INVALID_NAME."""
    binding = _ready()
    with pytest.raises(HttpApiError) as info:
        binding.create_request_queue(name)
    assert ErrorCode.ERROR_INVALID_NAME == _code(info)


def test_queue_dacl_refuses_an_identity_it_does_not_list() -> None:
    """OPEN_EXISTING by a process whose SID is not in the DACL fails with 5."""
    system = FakeHttpSys()
    controller, worker = system.process(1), system.process(2)
    controller.initialize()
    worker.initialize()
    system.process_sids[2] = "S-1-5-21-1-2-3-1001"
    controller.create_request_queue("api", security_descriptor="D:(A;;GA;;;SY)(A;;GA;;;BA)")
    with pytest.raises(HttpApiError) as info:
        worker.create_request_queue("api", flags=OPEN_EXISTING)
    assert ErrorCode.ERROR_ACCESS_DENIED == _code(info)


def test_queue_dacl_admits_a_listed_identity() -> None:
    """The worker's SID in the DACL lets it attach."""
    system = FakeHttpSys()
    controller, worker = system.process(1), system.process(2)
    controller.initialize()
    worker.initialize()
    system.process_sids[2] = "S-1-5-21-1-2-3-1001"
    controller.create_request_queue(
        "api", security_descriptor="D:(A;;GA;;;SY)(A;;GA;;;S-1-5-21-1-2-3-1001)"
    )
    assert worker.create_request_queue("api", flags=OPEN_EXISTING) > 0


def test_malformed_security_descriptor_is_1338() -> None:
    """An SDDL that is not a DACL of ACEs fails like ConvertStringSecurityDescriptor would."""
    binding = _ready()
    with pytest.raises(HttpApiError) as info:
        binding.create_request_queue("api", security_descriptor="garbage")
    assert ErrorCode.ERROR_INVALID_SECURITY_DESCR == _code(info)


def test_only_the_creator_sets_queue_properties() -> None:
    """The creator sets QueueLength; an attached process gets 87 for the same call."""
    system = FakeHttpSys()
    controller, worker = system.process(1), system.process(2)
    controller.initialize()
    worker.initialize()
    created = controller.create_request_queue("api")
    attached = worker.create_request_queue("api", flags=OPEN_EXISTING)
    controller.set_request_queue_property(created, ServerProperty.QUEUE_LENGTH, 50)
    with pytest.raises(HttpApiError) as info:
        worker.set_request_queue_property(attached, ServerProperty.QUEUE_LENGTH, 10)
    assert ErrorCode.ERROR_INVALID_PARAMETER == _code(info)
    assert 50 == worker.query_request_queue_property(attached, ServerProperty.QUEUE_LENGTH)


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        (ServerProperty.QUEUE_LENGTH, 0),
        (ServerProperty.QUEUE_LENGTH, 0x80000000),
        (ServerProperty.STATE, 2),
        (ServerProperty.VERBOSITY_503, 3),
        (ServerProperty.TIMEOUTS, 1),
    ],
)
def test_out_of_range_queue_properties_are_87(prop: ServerProperty, value: int) -> None:
    """Values outside the documented ranges, or non-queue properties, fail with 87."""
    binding = _ready()
    queue = binding.create_request_queue("api")
    with pytest.raises(HttpApiError) as info:
        binding.set_request_queue_property(queue, prop, value)
    assert ErrorCode.ERROR_INVALID_PARAMETER == _code(info)


def test_queue_property_defaults_are_http_sys_defaults() -> None:
    """Length 1000, state active, verbosity basic."""
    binding = _ready()
    queue = binding.create_request_queue("api")
    values = [
        binding.query_request_queue_property(queue, p)
        for p in (ServerProperty.QUEUE_LENGTH, ServerProperty.STATE, ServerProperty.VERBOSITY_503)
    ]
    assert [1000, 0, 0] == values


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x/",  # no port
        "HTTP://+:80/",  # uppercase scheme
        "http://+:80/app",  # path without trailing slash
        "http://+:0/",  # port 0
        "ftp://+:80/",
    ],
)
def test_bad_prefix_syntax_is_87(url: str) -> None:
    """HttpAddUrlToUrlGroup refuses what parse_prefix refuses, and port 0 (which our grammar takes
    for the Linux backend), with ERROR_INVALID_PARAMETER."""
    binding = _ready()
    group = binding.create_url_group(binding.create_server_session())
    with pytest.raises(HttpApiError) as info:
        binding.add_url_to_url_group(group, url, 1)
    assert ErrorCode.ERROR_INVALID_PARAMETER == _code(info)


def test_a_prefix_registered_by_another_group_is_183() -> None:
    """Prefixes are machine-wide; the canonical form (case-insensitive path) is compared."""
    binding = _ready()
    session = binding.create_server_session()
    first, second = binding.create_url_group(session), binding.create_url_group(session)
    binding.add_url_to_url_group(first, "http://+:8080/app/", 1)
    with pytest.raises(HttpApiError) as info:
        binding.add_url_to_url_group(second, "http://+:8080/APP/", 2)
    assert ErrorCode.ERROR_ALREADY_EXISTS == _code(info)
    assert {"http://+:8080/app/": 1} == binding.system.route_table()


def test_removing_a_url_not_in_the_group_is_1168() -> None:
    """HttpRemoveUrlFromUrlGroup of an unknown URL fails with ERROR_NOT_FOUND."""
    binding = _ready()
    group = binding.create_url_group(binding.create_server_session())
    with pytest.raises(HttpApiError) as info:
        binding.remove_url_from_url_group(group, "http://+:8080/app/")
    assert ErrorCode.ERROR_NOT_FOUND == _code(info)


def test_remove_all_clears_the_group() -> None:
    """HTTP_URL_FLAG_REMOVE_ALL unregisters every URL of the group."""
    binding = _ready()
    group = binding.create_url_group(binding.create_server_session())
    binding.add_url_to_url_group(group, "http://+:8080/a/", 1)
    binding.add_url_to_url_group(group, "http://+:8080/b/", 2)
    binding.remove_url_from_url_group(group, None, remove_all=True)
    assert {} == binding.system.route_table()


def test_closing_a_session_closes_its_groups_and_frees_their_prefixes() -> None:
    """After HttpCloseServerSession the groups are gone and the prefixes can be registered again."""
    binding = _ready()
    session = binding.create_server_session()
    group = binding.create_url_group(session)
    binding.add_url_to_url_group(group, "http://+:8080/app/", 1)
    binding.close_server_session(session)
    assert ({}, {}) == (binding.system.groups, binding.system.route_table())


def test_binding_to_a_closed_queue_handle_is_6() -> None:
    """A stale handle fails with ERROR_INVALID_HANDLE."""
    binding = _ready()
    group = binding.create_url_group(binding.create_server_session())
    queue = binding.create_request_queue(None)
    binding.close_request_queue(queue)
    with pytest.raises(HttpApiError) as info:
        binding.set_url_group_property(group, QueueBinding(queue))
    assert ErrorCode.ERROR_INVALID_HANDLE == _code(info)


def test_last_handle_closed_frees_the_queue_name() -> None:
    """A name is taken only while some process holds a handle on the queue."""
    binding = _ready()
    binding.close_request_queue(binding.create_request_queue("api"))
    assert binding.create_request_queue("api") > 0


def test_connection_limit_on_a_session_is_87() -> None:
    """Connection limits belong to URL groups; bandwidth below 1024 B/s is refused."""
    binding = _ready()
    session = binding.create_server_session()
    with pytest.raises(HttpApiError):
        binding.set_server_session_property(session, ConnectionLimit(10))
    with pytest.raises(HttpApiError):
        binding.set_server_session_property(session, BandwidthLimit(100))
    binding.set_server_session_property(session, TimeoutLimits(entity_body_s=30))
    binding.set_server_session_property(session, EnabledState.ACTIVE)


def test_shutdown_affects_the_calling_process_only() -> None:
    """HttpShutdownRequestQueue marks this process, not the queue, as done."""
    system = FakeHttpSys()
    old, new = system.process(1), system.process(2)
    old.initialize()
    new.initialize()
    handle = old.create_request_queue("api")
    new.create_request_queue("api", flags=OPEN_EXISTING)
    old.shutdown_request_queue(handle)
    assert {1} == system.queue_of(handle).shut_down_pids


def test_scripted_codes_fail_calls_without_changing_state() -> None:
    """script() makes the next calls return chosen codes; 0 lets a call run normally."""
    binding = _ready()
    group = binding.create_url_group(binding.create_server_session())
    binding.system.script("HttpAddUrlToUrlGroup", ErrorCode.ERROR_ACCESS_DENIED, 0)
    with pytest.raises(HttpApiError) as info:
        binding.add_url_to_url_group(group, "http://+:8080/app/", 1)
    assert ErrorCode.ERROR_ACCESS_DENIED == _code(info)
    assert {} == binding.system.route_table()
    binding.add_url_to_url_group(group, "http://+:8080/app/", 1)
    binding.add_url_to_url_group(group, "http://+:8080/api/", 2)
    assert {"http://+:8080/app/": 1, "http://+:8080/api/": 2} == binding.system.route_table()


def test_terminate_releases_the_process_sessions() -> None:
    """HttpTerminate(SERVER) closes what the process still held, and later calls fail with 1114."""
    binding = _ready()
    binding.create_server_session()
    binding.terminate()
    assert {} == binding.system.sessions
    with pytest.raises(HttpApiError) as info:
        binding.create_server_session()
    assert ErrorCode.ERROR_DLL_INIT_FAILED == _code(info)


# --- the Wine 8 flavour --------------------------------------------------------------------------
def test_wine_initialize_with_config_starts_no_driver() -> None:
    """Wine 8: HttpInitialize(SERVER|CONFIG) returns 0 but queues then fail with 3."""
    binding = RecordingBinding(FakeHttpSys(Flavor.WINE8))
    binding.initialize(_ffi.HTTP_INITIALIZE_SERVER | _ffi.HTTP_INITIALIZE_CONFIG)
    with pytest.raises(HttpApiError) as info:
        binding.create_request_queue(None)
    assert ErrorCode.ERROR_PATH_NOT_FOUND == _code(info)


def test_wine_allows_one_url_per_group() -> None:
    """Wine 8: a second URL in a group is 120."""
    binding = _ready(Flavor.WINE8)
    group = binding.create_url_group(binding.create_server_session())
    binding.add_url_to_url_group(group, "http://+:8080/a/", 1)
    with pytest.raises(HttpApiError) as info:
        binding.add_url_to_url_group(group, "http://+:8080/b/", 2)
    assert ErrorCode.ERROR_CALL_NOT_IMPLEMENTED == _code(info)


def test_wine_registers_a_url_only_once_its_group_is_bound() -> None:
    """Wine 8 hands a stored URL to its driver at binding time and swallows the driver's error."""
    binding = _ready(Flavor.WINE8)
    session = binding.create_server_session()
    first, second = binding.create_url_group(session), binding.create_url_group(session)
    queue = binding.create_request_queue(None)
    binding.add_url_to_url_group(first, "http://+:8080/a/", 1)
    binding.add_url_to_url_group(second, "http://+:8080/a/", 2)
    assert {} == binding.system.route_table()
    binding.set_url_group_property(first, QueueBinding(queue))
    binding.set_url_group_property(second, QueueBinding(queue))
    assert {"http://+:8080/a/": 1} == binding.system.route_table()


def test_wine_removal_forgets_the_group_url_even_when_the_wrong_one_is_named() -> None:
    """Removing another URL fails with 2 but orphans the group's own, still registered, URL."""
    binding = _ready(Flavor.WINE8)
    group = binding.create_url_group(binding.create_server_session())
    binding.set_url_group_property(group, QueueBinding(binding.create_request_queue(None)))
    binding.add_url_to_url_group(group, "http://+:8080/a/", 1)
    with pytest.raises(HttpApiError) as info:
        binding.remove_url_from_url_group(group, "http://+:8080/b/")
    assert ErrorCode.ERROR_FILE_NOT_FOUND == _code(info)
    assert ({}, {"http://+:8080/a/": 1}) == (
        binding.system.groups[group].urls,
        binding.system.route_table(),
    )


def test_wine_closing_a_group_leaves_its_urls_until_the_queue_closes() -> None:
    """Wine's HttpCloseUrlGroup frees bookkeeping only; the queue's close drops its URLs."""
    binding = _ready(Flavor.WINE8)
    group = binding.create_url_group(binding.create_server_session())
    queue = binding.create_request_queue(None)
    binding.set_url_group_property(group, QueueBinding(queue))
    binding.add_url_to_url_group(group, "http://+:8080/a/", 1)
    binding.close_url_group(group)
    assert {"http://+:8080/a/": 1} == binding.system.route_table()
    binding.close_request_queue(queue)
    assert {} == binding.system.route_table()


def test_wine_stale_group_id_would_crash_the_process() -> None:
    """Wine dereferences an unknown group id: the fake fails the test instead."""
    binding = _ready(Flavor.WINE8)
    with pytest.raises(WineAbortError):
        binding.add_url_to_url_group(0xDEAD, "http://+:8080/a/", 1)


def test_wine_ignores_names_and_gives_a_dead_queue_for_open_existing() -> None:
    """Wine 8: duplicate names succeed and OPEN_EXISTING yields a fresh queue that never receives."""
    system = FakeHttpSys(Flavor.WINE8)
    binding = system.process(1)
    binding.initialize()
    first = binding.create_request_queue("api")
    duplicate = binding.create_request_queue("api")
    attached = binding.create_request_queue("api", flags=OPEN_EXISTING)
    assert [False, True, True] == [system.queue_of(h).dead for h in (first, duplicate, attached)]


@pytest.mark.parametrize(
    "call",
    [
        lambda b, q: b.set_request_queue_property(q, ServerProperty.QUEUE_LENGTH, 10),
        lambda b, q: b.set_url_group_property(
            b.create_url_group(b.create_server_session()), TimeoutLimits()
        ),
        lambda b, q: b.set_server_session_property(b.create_server_session(), TimeoutLimits()),
    ],
    ids=["queue-length", "group-timeouts", "session-timeouts"],
)
def test_wine_properties_are_120(call: object) -> None:
    """Wine 8 implements none of the queue properties and only Binding on groups."""
    binding = _ready(Flavor.WINE8)
    queue = binding.create_request_queue(None)
    with pytest.raises(HttpApiError) as info:
        call(binding, queue)  # type: ignore[operator]
    assert ErrorCode.ERROR_CALL_NOT_IMPLEMENTED == _code(info)


@pytest.mark.parametrize(
    "call",
    [
        lambda b, q: b.shutdown_request_queue(q),
        lambda b, q: b.query_request_queue_property(q, ServerProperty.STATE),
    ],
    ids=["shutdown", "query"],
)
def test_wine_aborting_calls_raise_wine_abort(call: object) -> None:
    """Calls whose Wine 8 stub kills the process fail the test loudly instead."""
    binding = _ready(Flavor.WINE8)
    queue = binding.create_request_queue(None)
    with pytest.raises(WineAbortError):
        call(binding, queue)  # type: ignore[operator]


def test_wine_closing_a_stale_group_id_is_87_not_a_crash() -> None:
    """HttpCloseUrlGroup is the one group call that Wine 8 checks."""
    binding = _ready(Flavor.WINE8)
    with pytest.raises(HttpApiError) as info:
        binding.close_url_group(0xDEAD)
    assert ErrorCode.ERROR_INVALID_PARAMETER == _code(info)
