"""Create / Attach / CreateOrAttach, as ASP.NET Core's RequestQueue.cs does it, against the fake."""

from __future__ import annotations

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import ErrorCode, HttpApiError, ServerProperty
from orchestrator.httpapi.queue_open import (
    QueueAccessDeniedError,
    QueueMode,
    QueueNameInvalidError,
    QueueNameTakenError,
    QueueNotFoundError,
    open_request_queue,
)
from tests.support.httpsys_fake import Call, FakeHttpSys, RecordingBinding

OPEN_EXISTING = _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING
SDDL = "D:(A;;GA;;;SY)(A;;GA;;;BA)"


@pytest.fixture
def system() -> FakeHttpSys:
    return FakeHttpSys()


def _process(system: FakeHttpSys, pid: int) -> RecordingBinding:
    binding = system.process(pid)
    binding.initialize()
    return binding


def _queue_calls(system: FakeHttpSys, pid: int) -> list[Call]:
    return [c for c in system.calls_to("HttpCreateRequestQueue") if c.pid == pid]


def test_create_makes_a_new_queue_with_its_dacl(system: FakeHttpSys) -> None:
    """Create: one call, flags 0, the security descriptor passed, created=True."""
    controller = _process(system, 1)
    queue = open_request_queue(controller, "api", QueueMode.CREATE, security_descriptor=SDDL)
    assert queue.created
    assert [Call(1, "HttpCreateRequestQueue", ("api", SDDL, 0, False), 0)] == _queue_calls(
        system, 1
    )


def test_create_fails_when_the_name_is_taken(system: FakeHttpSys) -> None:
    """Create does not attach: a taken name is QueueNameTakenError (183), after one call."""
    _process(system, 1).create_request_queue("api")
    with pytest.raises(QueueNameTakenError) as info:
        open_request_queue(_process(system, 2), "api", QueueMode.CREATE)
    assert ErrorCode.ERROR_ALREADY_EXISTS == info.value.code
    assert 1 == len(_queue_calls(system, 2))


def test_attach_opens_with_open_existing_and_no_security_attributes(system: FakeHttpSys) -> None:
    """Attach: OPEN_EXISTING, a NULL security descriptor even if one is given, created=False."""
    _process(system, 1).create_request_queue("api")
    queue = open_request_queue(
        _process(system, 2), "api", QueueMode.ATTACH, security_descriptor=SDDL
    )
    assert not queue.created
    assert [Call(2, "HttpCreateRequestQueue", ("api", None, OPEN_EXISTING, False), 0)] == (
        _queue_calls(system, 2)
    )


def test_attach_to_a_missing_queue_reports_queue_not_found(system: FakeHttpSys) -> None:
    """Attach with no such queue: 2 becomes QueueNotFoundError, "queue could not be found"."""
    with pytest.raises(QueueNotFoundError, match="queue could not be found") as info:
        open_request_queue(_process(system, 2), "api", QueueMode.ATTACH)
    assert ErrorCode.ERROR_FILE_NOT_FOUND == info.value.code
    assert isinstance(info.value.__cause__, HttpApiError)


def test_create_or_attach_creates_when_the_name_is_free(system: FakeHttpSys) -> None:
    """CreateOrAttach on a free name: one call, created=True."""
    queue = open_request_queue(_process(system, 1), "api", QueueMode.CREATE_OR_ATTACH)
    assert queue.created
    assert 1 == len(_queue_calls(system, 1))


def test_create_or_attach_retries_183_with_open_existing(system: FakeHttpSys) -> None:
    """CreateOrAttach on a taken name: create -> 183, then OPEN_EXISTING (no SA) -> attached."""
    _process(system, 1).create_request_queue("api")
    queue = open_request_queue(
        _process(system, 2), "api", QueueMode.CREATE_OR_ATTACH, security_descriptor=SDDL
    )
    assert not queue.created
    assert [
        Call(2, "HttpCreateRequestQueue", ("api", SDDL, 0, False), ErrorCode.ERROR_ALREADY_EXISTS),
        Call(2, "HttpCreateRequestQueue", ("api", None, OPEN_EXISTING, False), 0),
    ] == _queue_calls(system, 2)


def test_create_or_attach_does_not_loop_when_the_queue_vanishes(system: FakeHttpSys) -> None:
    """183 then 2 (the creator closed it in between): reported after exactly two calls."""
    binding = _process(system, 2)
    system.script("HttpCreateRequestQueue", ErrorCode.ERROR_ALREADY_EXISTS)
    with pytest.raises(QueueNotFoundError):
        open_request_queue(binding, "api", QueueMode.CREATE_OR_ATTACH)
    assert [ErrorCode.ERROR_ALREADY_EXISTS, ErrorCode.ERROR_FILE_NOT_FOUND] == [
        c.result for c in _queue_calls(system, 2)
    ]


def test_an_attached_queue_refuses_property_changes_with_87(system: FakeHttpSys) -> None:
    """Only the creator configures: the attached handle's property set fails with 87, once."""
    _process(system, 1).create_request_queue("api")
    queue = open_request_queue(_process(system, 2), "api", QueueMode.CREATE_OR_ATTACH)
    with pytest.raises(HttpApiError) as info:
        queue.set_property(ServerProperty.QUEUE_LENGTH, 10)
    assert ErrorCode.ERROR_INVALID_PARAMETER == info.value.code
    assert 1 == len(system.calls_to("HttpSetRequestQueueProperty"))


def test_a_bad_name_is_reported_as_invalid(system: FakeHttpSys) -> None:
    """123 becomes QueueNameInvalidError."""
    with pytest.raises(QueueNameInvalidError, match="invalid queue name"):
        open_request_queue(_process(system, 1), "a\\b", QueueMode.CREATE)


def test_a_refusing_dacl_is_reported_as_access_denied(system: FakeHttpSys) -> None:
    """5 becomes QueueAccessDeniedError."""
    _process(system, 1).create_request_queue("api", security_descriptor=SDDL)
    system.process_sids[2] = "S-1-5-21-9-9-9-1001"
    with pytest.raises(QueueAccessDeniedError):
        open_request_queue(_process(system, 2), "api", QueueMode.ATTACH)


def test_other_errors_propagate_unchanged(system: FakeHttpSys) -> None:
    """Codes without a named meaning stay HttpApiError."""
    system.script("HttpCreateRequestQueue", ErrorCode.ERROR_REVISION_MISMATCH)
    with pytest.raises(HttpApiError) as info:
        open_request_queue(_process(system, 1), "api", QueueMode.CREATE)
    assert ErrorCode.ERROR_REVISION_MISMATCH == info.value.code


def test_attach_needs_a_name(system: FakeHttpSys) -> None:
    """An unnamed queue cannot be attached to."""
    with pytest.raises(ValueError, match="name"):
        open_request_queue(_process(system, 1), None, QueueMode.ATTACH)


def test_controller_and_delegation_flags_are_passed(system: FakeHttpSys) -> None:
    """CONTROLLER on create; DELEGATION joins OPEN_EXISTING on attach; inheritable passes through."""
    controller = _process(system, 1)
    open_request_queue(controller, "api", controller=True, inheritable=True)
    open_request_queue(_process(system, 2), "api", QueueMode.ATTACH, delegation=True)
    flags = [(c.args[2], c.args[3]) for c in system.calls_to("HttpCreateRequestQueue")]
    assert [
        (_ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_CONTROLLER, True),
        (OPEN_EXISTING | _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_DELEGATION, False),
    ] == flags
    assert system.queue_named("api") is not None
    assert system.queue_named("api").controller  # type: ignore[union-attr]
