"""RealBinding's ctypes plumbing, on Linux: a stand-in HttpApi records the payloads it is given.

The stand-in reads each payload while the call is in progress (as the DLL would), so these tests
show that the right property id, struct, size and pointers reach httpapi.dll.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ServerProperty
from orchestrator.httpapi.binding import (
    BandwidthLimit,
    ConnectionLimit,
    QueueBinding,
    RealBinding,
    TimeoutLimits,
)


def _target(arg: Any) -> Any:
    """The object behind a ctypes.byref() argument."""
    return arg._obj


class StubApi:
    """Records (function, decoded args); fills the out-parameters the way httpapi.dll does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.descriptor = ctypes.create_string_buffer(20)

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> int:
            self.calls.append((name, self._decode(name, args)))
            return 0

        return call

    def _decode(self, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if name in ("HttpCreateServerSession", "HttpCreateUrlGroup"):
            _target(args[1]).value = 0xFE00000140000001
        if name == "HttpCreateRequestQueue":
            _target(args[4]).value = 0x1234
            sa = None if args[2] is None else _target(args[2])
            copied = (
                None if sa is None else (sa.nLength, sa.lpSecurityDescriptor, sa.bInheritHandle)
            )
            return (args[1], copied, args[3])
        if name == "ConvertStringSecurityDescriptorToSecurityDescriptorW":
            _target(args[2]).value = ctypes.addressof(self.descriptor)
        if name in ("HttpSetUrlGroupProperty", "HttpSetServerSessionProperty"):
            payload = _target(args[2])
            return (args[0], args[1], bytes(payload), args[3], _qos_limit(payload))
        if name == "HttpSetRequestQueueProperty":
            payload = _target(args[2])
            return (args[0], args[1], type(payload), payload.value, args[3])
        return args


def _qos_limit(payload: Any) -> bytes | None:
    if isinstance(payload, _ffi.HTTP_QOS_SETTING_INFO):
        return ctypes.string_at(payload.QosSetting, 8)
    return None


@pytest.fixture
def api() -> StubApi:
    return StubApi()


@pytest.fixture
def binding(api: StubApi) -> RealBinding:
    return RealBinding(api)  # type: ignore[arg-type]


def test_initialize_passes_version_2_by_value(api: StubApi, binding: RealBinding) -> None:
    """HttpInitialize(HTTPAPI_VERSION{2,0}, flags, NULL)."""
    binding.initialize(_ffi.HTTP_INITIALIZE_SERVER)
    name, (version, flags, reserved) = api.calls[0]
    assert ("HttpInitialize", (2, 0), 1, None) == (
        name,
        (version.HttpApiMajorVersion, version.HttpApiMinorVersion),
        flags,
        reserved,
    )


def test_ids_come_back_as_64_bit_ints(binding: RealBinding) -> None:
    """Session and group ids are read out of the ULONGLONG out-parameter."""
    assert 0xFE00000140000001 == binding.create_server_session()
    assert 0xFE00000140000001 == binding.create_url_group(1)


def test_binding_property_is_present_with_the_queue_handle(
    api: StubApi, binding: RealBinding
) -> None:
    """Binding: property 7, 16 bytes, Present=1 at 0 and the handle at 8."""
    binding.set_url_group_property(5, QueueBinding(0x1234))
    _, (group, prop, raw, size, _) = api.calls[0]
    assert (5, ServerProperty.BINDING, 16) == (group, prop, size)
    assert (1, 0x1234) == (int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[8:16], "little"))


def test_unbinding_clears_present_and_the_handle(api: StubApi, binding: RealBinding) -> None:
    """Detach: Present=0 and a NULL handle."""
    binding.set_url_group_property(5, QueueBinding(None))
    raw = api.calls[0][1][2]
    assert bytes(16) == raw


def test_timeouts_are_a_20_byte_limit_info(api: StubApi, binding: RealBinding) -> None:
    """Timeouts: property 3, Present=1 then USHORT timers and MinSendRate at 16."""
    binding.set_server_session_property(
        9, TimeoutLimits(entity_body_s=30, header_wait_s=7, min_send_rate=150)
    )
    _, (_, prop, raw, size, _) = api.calls[0]
    assert (ServerProperty.TIMEOUTS, 20) == (prop, size)
    assert 1 == int.from_bytes(raw[0:4], "little")
    assert 30 == int.from_bytes(raw[4:6], "little")
    assert 7 == int.from_bytes(raw[12:14], "little")
    assert 150 == int.from_bytes(raw[16:20], "little")


def test_connection_limit_is_a_qos_setting_pointing_at_the_limit(
    api: StubApi, binding: RealBinding
) -> None:
    """Qos: property 2, type ConnectionLimit, and a live pointer to {Present=1, MaxConnections}."""
    binding.set_url_group_property(5, ConnectionLimit(77))
    _, (_, prop, raw, size, limit) = api.calls[0]
    assert (ServerProperty.QOS, 16, 1) == (prop, size, int.from_bytes(raw[0:4], "little"))
    assert (1, 77) == (
        int.from_bytes(limit[0:4], "little"),
        int.from_bytes(limit[4:8], "little"),
    )


def test_bandwidth_limit_is_qos_type_bandwidth(api: StubApi, binding: RealBinding) -> None:
    """Qos bandwidth: type 0 and the rate in bytes per second."""
    binding.set_server_session_property(9, BandwidthLimit(4096))
    _, (_, _, raw, _, limit) = api.calls[0]
    assert (0, 4096) == (int.from_bytes(raw[0:4], "little"), int.from_bytes(limit[4:8], "little"))


def test_state_on_a_group_is_a_state_info(api: StubApi, binding: RealBinding) -> None:
    """State on sessions and groups: HTTP_STATE_INFO{Present=1, State}."""
    binding.set_url_group_property(5, EnabledState.INACTIVE)
    _, (_, prop, raw, size, _) = api.calls[0]
    assert (ServerProperty.STATE, 8, b"\x01\0\0\0\x01\0\0\0") == (prop, size, raw)


@pytest.mark.parametrize(
    ("prop", "ctype"),
    [
        (ServerProperty.QUEUE_LENGTH, ctypes.c_uint32),
        (ServerProperty.STATE, ctypes.c_int32),
        (ServerProperty.VERBOSITY_503, ctypes.c_int32),
    ],
)
def test_queue_properties_are_bare_4_byte_values(
    api: StubApi, binding: RealBinding, prop: ServerProperty, ctype: type
) -> None:
    """Queue properties are a bare ULONG or enum of 4 bytes, not a *_INFO struct."""
    binding.set_request_queue_property(0x1234, prop, 1)
    _, (handle, sent_prop, sent_type, value, size) = api.calls[0]
    assert (0x1234, prop, ctype, 1, 4) == (handle, sent_prop, sent_type, value, size)


def test_non_queue_property_on_a_queue_is_refused_locally(binding: RealBinding) -> None:
    """Timeouts are not a queue property: refused before any call."""
    with pytest.raises(ValueError, match="not a request queue property"):
        binding.set_request_queue_property(1, ServerProperty.TIMEOUTS, 1)


def test_create_with_sddl_and_inheritance_passes_security_attributes(
    api: StubApi, binding: RealBinding
) -> None:
    """SDDL is converted, passed in a 24-byte SECURITY_ATTRIBUTES with bInheritHandle, then freed."""
    handle = binding.create_request_queue("api", security_descriptor="D:", inheritable=True)
    names = [name for name, _ in api.calls]
    assert [
        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        "HttpCreateRequestQueue",
        "LocalFree",
    ] == names
    descriptor = ctypes.addressof(api.descriptor)
    assert ("api", (24, descriptor, 1), 0) == api.calls[1][1]
    assert (descriptor,) == api.calls[2][1]
    assert 0x1234 == handle


def test_create_without_sddl_or_inheritance_passes_null_attributes(
    api: StubApi, binding: RealBinding
) -> None:
    """No SA at all when nothing needs one."""
    binding.create_request_queue(None)
    assert [("HttpCreateRequestQueue", (None, None, 0))] == api.calls


def test_inheritable_attach_sets_inheritance_after_opening(
    api: StubApi, binding: RealBinding
) -> None:
    """OPEN_EXISTING needs a NULL SA, so inheritance is set on the handle afterwards."""
    flags = _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING
    binding.create_request_queue("api", flags=flags, inheritable=True)
    assert [
        ("HttpCreateRequestQueue", ("api", None, flags)),
        ("SetHandleInformation", (0x1234, 1, 1)),
    ] == api.calls


def test_remove_all_sets_the_flag(api: StubApi, binding: RealBinding) -> None:
    """HTTP_URL_FLAG_REMOVE_ALL with a NULL URL."""
    binding.remove_url_from_url_group(5, None, remove_all=True)
    assert [("HttpRemoveUrlFromUrlGroup", (5, None, 1))] == api.calls


def test_add_url_passes_context_and_zero_reserved(api: StubApi, binding: RealBinding) -> None:
    """HttpAddUrlToUrlGroup(group, url, context, 0)."""
    binding.add_url_to_url_group(5, "http://+:80/", 2**64 - 1)
    assert [("HttpAddUrlToUrlGroup", (5, "http://+:80/", 2**64 - 1, 0))] == api.calls


@pytest.mark.parametrize(
    "make",
    [
        lambda: TimeoutLimits(entity_body_s=65536),
        lambda: TimeoutLimits(min_send_rate=-1),
        lambda: ConnectionLimit(2**32),
        lambda: BandwidthLimit(-5),
    ],
)
def test_payloads_refuse_values_that_do_not_fit(make: Any) -> None:
    """USHORT timers and ULONG limits are range-checked before reaching ctypes."""
    with pytest.raises(ValueError, match="must be between"):
        make()
