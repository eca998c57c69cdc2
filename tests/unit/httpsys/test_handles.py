"""Handle wrappers close exactly once and work as context managers; ``ApiInit`` initialises in parts."""

from __future__ import annotations

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError, ServerProperty
from orchestrator.httpapi.binding import TimeoutLimits
from orchestrator.httpapi.handles import ApiInit, ServerSession
from orchestrator.httpapi.queue_open import open_request_queue
from tests.support.httpsys_fake import Call, FakeHttpSys, Flavor, RecordingBinding


def test_context_managers_close_in_reverse_order() -> None:
    """with-blocks give group -> session -> terminate on the way out."""
    binding = RecordingBinding()
    with ApiInit(binding), ServerSession(binding) as session, session.create_url_group():
        pass
    assert ["HttpCloseUrlGroup", "HttpCloseServerSession", "HttpTerminate"] == (
        binding.system.functions()[-3:]
    )


def test_close_is_idempotent() -> None:
    """A second close() makes no call."""
    binding = RecordingBinding()
    binding.initialize()
    queue = open_request_queue(binding, "api")
    queue.close()
    queue.close()
    assert 1 == len(binding.system.calls_to("HttpCloseRequestQueue"))
    assert queue.closed


def test_a_failing_close_is_not_retried() -> None:
    """close() marks the handle closed before calling, so teardown never repeats a failure."""
    binding = RecordingBinding()
    binding.initialize()
    session = ServerSession(binding)
    binding.system.script("HttpCloseServerSession", 6)
    with pytest.raises(HttpApiError):
        session.close()
    session.close()
    assert 1 == len(binding.system.calls_to("HttpCloseServerSession"))


def test_url_group_tracks_its_urls_and_binding() -> None:
    """add/remove keep the group's own record, which stop() relies on."""
    binding = RecordingBinding()
    binding.initialize()
    session = ServerSession(binding)
    group = session.create_url_group()
    queue = open_request_queue(binding, None)
    group.bind(queue)
    group.add_url("http://+:8080/a/", 1)
    group.add_url("http://+:8080/b/", 2)
    group.remove_url("http://+:8080/a/")
    assert ({"http://+:8080/b/": 2}, queue) == (group.urls, group.bound_to)
    group.remove_all_urls()
    group.unbind()
    assert ({}, None) == (group.urls, group.bound_to)
    assert "UrlGroup(id=" in repr(group)
    assert "ServerSession(id=" in repr(session)


def test_handles_forward_properties() -> None:
    """set_property on session, group and queue reach the binding."""
    binding = RecordingBinding()
    binding.initialize()
    session = ServerSession(binding)
    session.set_property(TimeoutLimits(entity_body_s=10))
    session.create_url_group().set_property(TimeoutLimits(header_wait_s=3))
    queue = open_request_queue(binding, "api")
    queue.set_property(ServerProperty.QUEUE_LENGTH, 20)
    assert 20 == queue.query_property(ServerProperty.QUEUE_LENGTH)
    queue.shutdown()
    assert "created=True" in repr(queue)


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
