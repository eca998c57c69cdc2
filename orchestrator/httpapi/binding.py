"""The Python-level interface over the HTTP Server API calls the controller side makes.

Owns: the ``HttpSysBinding`` protocol (one method per Win32 function, same argument order, failures
raised as ``_ffi.HttpApiError`` with the real Win32 code), the typed property payloads
(``TimeoutLimits``, ``BandwidthLimit``, ``ConnectionLimit``, ``QueueBinding``, ``EnabledState``) and
``RealBinding``, the ctypes implementation. ``tests/support/httpsys_fake.py`` holds the in-memory
one (``RecordingBinding``, for tests).
Ids (session, URL group, URL context) are Python ints holding the 64-bit values; a request queue is
its HANDLE value as an int.
Imports ``_ffi`` only; must not import ``ctypes.WinDLL``/``windll`` (that is ``_ffi``'s job) nor
anything else from ``orchestrator``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ServerProperty

__all__ = [
    "BandwidthLimit",
    "ConnectionLimit",
    "EnabledState",
    "HttpSysBinding",
    "QUEUE_PROPERTIES",
    "QueueBinding",
    "RealBinding",
    "ServerProperty",
    "SessionProperty",
    "TimeoutLimits",
    "UrlGroupProperty",
]

_USHORT_MAX = 0xFFFF
_ULONG_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class TimeoutLimits:
    """``HTTP_TIMEOUT_LIMIT_INFO``: five timers in whole seconds and MinSendRate in bytes/s.

    On a session 0 means "http.sys default" (120 s, 150 B/s); on a URL group 0 inherits the session.
    """

    entity_body_s: int = 0
    drain_entity_body_s: int = 0
    request_queue_s: int = 0
    idle_connection_s: int = 0
    header_wait_s: int = 0
    min_send_rate: int = 0

    def __post_init__(self) -> None:
        _check_range("entity_body_s", self.entity_body_s, _USHORT_MAX)
        _check_range("drain_entity_body_s", self.drain_entity_body_s, _USHORT_MAX)
        _check_range("request_queue_s", self.request_queue_s, _USHORT_MAX)
        _check_range("idle_connection_s", self.idle_connection_s, _USHORT_MAX)
        _check_range("header_wait_s", self.header_wait_s, _USHORT_MAX)
        _check_range("min_send_rate", self.min_send_rate, _ULONG_MAX)

    def to_struct(self) -> _ffi.HTTP_TIMEOUT_LIMIT_INFO:
        """The ctypes payload, with Present set."""
        return _ffi.HTTP_TIMEOUT_LIMIT_INFO(
            _ffi.HTTP_PROPERTY_FLAGS(1),
            self.entity_body_s,
            self.drain_entity_body_s,
            self.request_queue_s,
            self.idle_connection_s,
            self.header_wait_s,
            self.min_send_rate,
        )


@dataclass(frozen=True, slots=True)
class BandwidthLimit:
    """QoS bandwidth cap in bytes per second (``HTTP_LIMIT_INFINITE`` for none, else >= 1024)."""

    max_bytes_per_s: int = _ffi.HTTP_LIMIT_INFINITE

    def __post_init__(self) -> None:
        _check_range("max_bytes_per_s", self.max_bytes_per_s, _ULONG_MAX)


@dataclass(frozen=True, slots=True)
class ConnectionLimit:
    """QoS connection cap of a URL group (``HTTP_LIMIT_INFINITE`` for none)."""

    max_connections: int = _ffi.HTTP_LIMIT_INFINITE

    def __post_init__(self) -> None:
        _check_range("max_connections", self.max_connections, _ULONG_MAX)


@dataclass(frozen=True, slots=True)
class QueueBinding:
    """``HttpServerBindingProperty``: the queue a URL group delivers to; ``None`` detaches it."""

    queue: int | None


SessionProperty: TypeAlias = TimeoutLimits | BandwidthLimit | EnabledState
UrlGroupProperty: TypeAlias = (
    TimeoutLimits | BandwidthLimit | ConnectionLimit | EnabledState | QueueBinding
)
#: The properties a request queue has; each payload is a bare 4-byte value.
QUEUE_PROPERTIES = frozenset(
    {ServerProperty.QUEUE_LENGTH, ServerProperty.STATE, ServerProperty.VERBOSITY_503}
)


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}, not {value}")


def property_id(value: SessionProperty | UrlGroupProperty) -> ServerProperty:
    """The ``HTTP_SERVER_PROPERTY`` a payload is set through."""
    if isinstance(value, TimeoutLimits):
        return ServerProperty.TIMEOUTS
    if isinstance(value, BandwidthLimit | ConnectionLimit):
        return ServerProperty.QOS
    if isinstance(value, EnabledState):
        return ServerProperty.STATE
    return ServerProperty.BINDING


class HttpSysBinding(Protocol):
    """One method per HTTP Server API call the controller makes; errors raise ``HttpApiError``.

    Method names are the Win32 names in snake case and keep their argument order; the version
    argument is implied (always 2.0) and out-parameters are return values.
    """

    def initialize(self, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        """``HttpInitialize``: must precede every other call of this process (else 1114)."""
        ...

    def terminate(self, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        """``HttpTerminate``."""
        ...

    def create_server_session(self) -> int:
        """``HttpCreateServerSession``: returns the session id."""
        ...

    def close_server_session(self, session_id: int) -> None:
        """``HttpCloseServerSession`` (also closes the session's URL groups)."""
        ...

    def set_server_session_property(self, session_id: int, value: SessionProperty) -> None:
        """``HttpSetServerSessionProperty`` with Timeouts, Qos (bandwidth) or State."""
        ...

    def create_url_group(self, session_id: int) -> int:
        """``HttpCreateUrlGroup``: returns the group id."""
        ...

    def close_url_group(self, group_id: int) -> None:
        """``HttpCloseUrlGroup`` (also unregisters its URLs)."""
        ...

    def set_url_group_property(self, group_id: int, value: UrlGroupProperty) -> None:
        """``HttpSetUrlGroupProperty`` with Binding, Timeouts, Qos or State."""
        ...

    def add_url_to_url_group(self, group_id: int, url: str, context: int) -> None:
        """``HttpAddUrlToUrlGroup``: 87 for bad syntax, 183 if registered already, 5 without a URL ACL."""
        ...

    def remove_url_from_url_group(
        self, group_id: int, url: str | None, *, remove_all: bool = False
    ) -> None:
        """``HttpRemoveUrlFromUrlGroup``: 1168 for a URL not in the group."""
        ...

    def create_request_queue(
        self,
        name: str | None,
        *,
        security_descriptor: str | None = None,
        flags: int = 0,
        inheritable: bool = False,
    ) -> int:
        """``HttpCreateRequestQueue``: returns the handle.

        ``security_descriptor`` is SDDL (the queue DACL, creation only); ``inheritable`` makes the
        handle inheritable by child processes. 183 for a taken name, 2 for ``OPEN_EXISTING`` of a
        missing one, 87 for ``OPEN_EXISTING`` with a security descriptor, 123 for a bad name.
        """
        ...

    def set_request_queue_property(self, queue: int, prop: ServerProperty, value: int) -> None:
        """``HttpSetRequestQueueProperty`` (QueueLength, State, 503Verbosity); 87 unless the creator."""
        ...

    def query_request_queue_property(self, queue: int, prop: ServerProperty) -> int:
        """``HttpQueryRequestQueueProperty`` for the same three properties."""
        ...

    def shutdown_request_queue(self, queue: int) -> None:
        """``HttpShutdownRequestQueue``: this process stops receiving; its queued requests move on."""
        ...

    def close_request_queue(self, queue: int) -> None:
        """``HttpCloseRequestQueue``."""
        ...


class RealBinding:
    """``HttpSysBinding`` over the real ``httpapi.dll`` (Windows, or Windows CPython under Wine)."""

    def __init__(self, api: _ffi.HttpApi | None = None) -> None:
        """Bind to ``api``, or to the process-wide one from ``_ffi.load()`` on first use."""
        self._api = api

    @property
    def api(self) -> _ffi.HttpApi:
        """The declared functions (loads the DLLs the first time)."""
        if self._api is None:
            self._api = _ffi.load()
        return self._api

    def initialize(self, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        self.api.HttpInitialize(_ffi.api_version(), flags, None)

    def terminate(self, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        self.api.HttpTerminate(flags, None)

    def create_server_session(self) -> int:
        out = _ffi.HTTP_OPAQUE_ID(0)
        self.api.HttpCreateServerSession(_ffi.api_version(), ctypes.byref(out), 0)
        return int(out.value)

    def close_server_session(self, session_id: int) -> None:
        self.api.HttpCloseServerSession(session_id)

    def set_server_session_property(self, session_id: int, value: SessionProperty) -> None:
        prop, payload, keep = _payload(value)
        self.api.HttpSetServerSessionProperty(
            session_id, prop, ctypes.byref(payload), ctypes.sizeof(payload)
        )
        del keep  # the QoS limit struct that payload points to must outlive the call

    def create_url_group(self, session_id: int) -> int:
        out = _ffi.HTTP_OPAQUE_ID(0)
        self.api.HttpCreateUrlGroup(session_id, ctypes.byref(out), 0)
        return int(out.value)

    def close_url_group(self, group_id: int) -> None:
        self.api.HttpCloseUrlGroup(group_id)

    def set_url_group_property(self, group_id: int, value: UrlGroupProperty) -> None:
        prop, payload, keep = _payload(value)
        self.api.HttpSetUrlGroupProperty(
            group_id, prop, ctypes.byref(payload), ctypes.sizeof(payload)
        )
        del keep  # the QoS limit struct that payload points to must outlive the call

    def add_url_to_url_group(self, group_id: int, url: str, context: int) -> None:
        self.api.HttpAddUrlToUrlGroup(group_id, url, context, 0)

    def remove_url_from_url_group(
        self, group_id: int, url: str | None, *, remove_all: bool = False
    ) -> None:
        flags = _ffi.HTTP_URL_FLAG_REMOVE_ALL if remove_all else 0
        self.api.HttpRemoveUrlFromUrlGroup(group_id, url, flags)

    def create_request_queue(
        self,
        name: str | None,
        *,
        security_descriptor: str | None = None,
        flags: int = 0,
        inheritable: bool = False,
    ) -> int:
        api = self.api
        handle = _ffi.HANDLE()
        open_existing = bool(flags & _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING)
        descriptor = (
            _ffi.security_descriptor_from_sddl(api, security_descriptor)
            if security_descriptor is not None
            else None
        )
        try:
            # OPEN_EXISTING demands a NULL SECURITY_ATTRIBUTES (87 otherwise), so an inheritable
            # attached handle is made inheritable afterwards instead.
            if (descriptor is not None or inheritable) and not (
                open_existing and descriptor is None
            ):
                attrs = _ffi.SECURITY_ATTRIBUTES(
                    ctypes.sizeof(_ffi.SECURITY_ATTRIBUTES), descriptor, 1 if inheritable else 0
                )
                api.HttpCreateRequestQueue(
                    _ffi.api_version(), name, ctypes.byref(attrs), flags, ctypes.byref(handle)
                )
            else:
                api.HttpCreateRequestQueue(
                    _ffi.api_version(), name, None, flags, ctypes.byref(handle)
                )
                if inheritable:
                    api.SetHandleInformation(
                        handle.value, _ffi.HANDLE_FLAG_INHERIT, _ffi.HANDLE_FLAG_INHERIT
                    )
        finally:
            if descriptor is not None:
                api.LocalFree(descriptor)
        return int(handle.value or 0)

    def set_request_queue_property(self, queue: int, prop: ServerProperty, value: int) -> None:
        payload = _queue_payload(prop, value)
        self.api.HttpSetRequestQueueProperty(
            queue, prop, ctypes.byref(payload), ctypes.sizeof(payload), 0, None
        )

    def query_request_queue_property(self, queue: int, prop: ServerProperty) -> int:
        payload = _queue_payload(prop, 0)
        returned = _ffi.ULONG(0)
        self.api.HttpQueryRequestQueueProperty(
            queue,
            prop,
            ctypes.byref(payload),
            ctypes.sizeof(payload),
            0,
            ctypes.byref(returned),
            None,
        )
        return int(payload.value)

    def shutdown_request_queue(self, queue: int) -> None:
        self.api.HttpShutdownRequestQueue(queue)

    def close_request_queue(self, queue: int) -> None:
        self.api.HttpCloseRequestQueue(queue)


def _queue_payload(prop: ServerProperty, value: int) -> ctypes.c_uint32 | ctypes.c_int32:
    """A queue property's bare 4-byte payload: ULONG for QueueLength, enum for the others."""
    if prop not in QUEUE_PROPERTIES:
        raise ValueError(f"{prop.name} is not a request queue property")
    if prop == ServerProperty.QUEUE_LENGTH:
        return _ffi.ULONG(value)
    return _ffi.ENUM(value)


def _payload(
    value: SessionProperty | UrlGroupProperty,
) -> tuple[ServerProperty, ctypes.Structure, ctypes.Structure | None]:
    """The property id, its payload struct, and any struct the payload points to (keep it alive)."""
    if isinstance(value, TimeoutLimits):
        return ServerProperty.TIMEOUTS, value.to_struct(), None
    if isinstance(value, EnabledState):
        return (
            ServerProperty.STATE,
            _ffi.HTTP_STATE_INFO(_ffi.HTTP_PROPERTY_FLAGS(1), int(value)),
            None,
        )
    if isinstance(value, QueueBinding):
        present = 0 if value.queue is None else 1
        return (
            ServerProperty.BINDING,
            _ffi.HTTP_BINDING_INFO(_ffi.HTTP_PROPERTY_FLAGS(present), value.queue),
            None,
        )
    limit: ctypes.Structure
    if isinstance(value, BandwidthLimit):
        limit = _ffi.HTTP_BANDWIDTH_LIMIT_INFO(_ffi.HTTP_PROPERTY_FLAGS(1), value.max_bytes_per_s)
        kind = _ffi.QosSettingType.BANDWIDTH
    else:
        limit = _ffi.HTTP_CONNECTION_LIMIT_INFO(_ffi.HTTP_PROPERTY_FLAGS(1), value.max_connections)
        kind = _ffi.QosSettingType.CONNECTION_LIMIT
    info = _ffi.HTTP_QOS_SETTING_INFO(kind, ctypes.addressof(limit))
    return ServerProperty.QOS, info, limit
