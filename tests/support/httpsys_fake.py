"""An in-memory model of http.sys behind the ``HttpSysBinding`` protocol, recording every call.

Owns: ``FakeHttpSys`` (the machine-wide state: per-process initialisation, server sessions, URL groups
with their bindings, named request queues with their creator process, handles, registered URL
prefixes with their contexts, and the ordered call log) and ``RecordingBinding`` (one process's view
of it). Failures use the real Win32 codes of notes/httpsys-backend.md section 1.6: 1114 before
``HttpInitialize``, 183 for a taken queue name without OPEN_EXISTING or a prefix registered already,
2 for OPEN_EXISTING of a missing name, 5 when the queue DACL refuses the opener, 87 for bad prefix
syntax (``orchestrator.model.urlprefix.parse_prefix``) or a non-creator setting queue properties,
6 for a stale handle, 1168 for removing a URL that is not in the group. ``script()`` makes the next
calls of a function return chosen codes.
The ``wine8`` flavour reproduces Wine 8.0's httpapi.dll as observed against the real DLL (the Wine
tier asserts the same table, tests/wine/scenarios/lifecycle_program.py): names and flags ignored,
one URL per group, URLs reach the driver only when added to a bound group (an unbound group stores
anything; binding later registers it and swallows any error), lenient syntax (no trailing-slash or
port-range check, case-sensitive paths), https -> 1, removal that forgets the group's URL before
asking the driver (2 when the driver lacks it), closing a group leaves its URLs registered, most
properties 120, ``HttpInitialize`` with any flag besides SERVER starts no driver (queues then fail
with 3), and ``WineAbortError`` for the calls that abort or crash a process under Wine (the
unimplemented stubs, and a stale URL group id, which Wine dereferences as NULL).
Pure Python: imports ``_ffi`` only for its constants (nothing is loaded) and must not import ctypes
functions, the backend or anything that touches the OS.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from orchestrator.backends.httpsys.sddl import allowed_sids
from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ErrorCode, HttpApiError, ServerProperty
from orchestrator.httpapi.binding import (
    QUEUE_PROPERTIES,
    BandwidthLimit,
    ConnectionLimit,
    QueueBinding,
    SessionProperty,
    UrlGroupProperty,
    property_id,
)
from orchestrator.model.urlprefix import UrlPrefixError, parse_prefix

if TYPE_CHECKING:
    from orchestrator.httpapi.binding import HttpSysBinding

__all__ = ["Call", "FakeHttpSys", "Flavor", "RecordingBinding", "Registration", "WineAbortError"]

_QUEUE_FLAGS = (
    _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING
    | _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_CONTROLLER
    | _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_DELEGATION
)
_INIT_FLAGS = _ffi.HTTP_INITIALIZE_SERVER | _ffi.HTTP_INITIALIZE_CONFIG | _ffi.HTTP_DEMAND_CBT


class Flavor(enum.StrEnum):
    """Which http.sys the fake imitates."""

    WINDOWS = "windows"
    WINE8 = "wine8"


class WineAbortError(AssertionError):
    """The code under test called a function whose Wine 8 stub aborts the whole process."""


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded call: the calling process, the Win32 function name, its arguments and result."""

    pid: int
    function: str
    args: tuple[object, ...]
    result: int


@dataclass(slots=True)
class FakeSession:
    """A server session and its properties."""

    id: int
    pid: int
    properties: dict[ServerProperty, object] = field(default_factory=dict)


@dataclass(slots=True)
class FakeUrlGroup:
    """A URL group: its URLs (text as added -> context) and its binding."""

    id: int
    session_id: int
    pid: int
    urls: dict[str, int] = field(default_factory=dict)
    bound_handle: int | None = None
    properties: dict[ServerProperty, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Registration:
    """A URL known to the driver: who registered it, its context and (Wine) the queue it went to."""

    group_id: int
    context: int
    queue_handle: int | None


@dataclass(slots=True)
class FakeQueue:
    """A request queue object: shared by every handle opened on it."""

    id: int
    name: str | None
    creator_pid: int
    security_descriptor: str | None
    controller: bool
    properties: dict[ServerProperty, int] = field(
        default_factory=lambda: {
            ServerProperty.QUEUE_LENGTH: 1000,
            ServerProperty.STATE: int(EnabledState.ACTIVE),
            ServerProperty.VERBOSITY_503: int(_ffi.Verbosity503.BASIC),
        }
    )
    handles: set[int] = field(default_factory=set)
    shut_down_pids: set[int] = field(default_factory=set)
    #: Wine: a queue opened with a name or OPEN_EXISTING that never receives anything.
    dead: bool = False


@dataclass(slots=True)
class FakeHandle:
    """One process's handle on a queue."""

    value: int
    queue: FakeQueue
    pid: int
    inheritable: bool


class _Failure(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _fail(code: int) -> NoReturn:
    raise _Failure(code)


class FakeHttpSys:
    """The machine-wide http.sys state that every ``RecordingBinding`` of a test shares."""

    def __init__(self, flavor: Flavor = Flavor.WINDOWS) -> None:
        """Start empty: no process initialised, no objects, no calls."""
        self.flavor = flavor
        self.calls: list[Call] = []
        self.sessions: dict[int, FakeSession] = {}
        self.groups: dict[int, FakeUrlGroup] = {}
        self.queues: list[FakeQueue] = []
        self.handles: dict[int, FakeHandle] = {}
        #: What routing sees, by registration key: the canonical prefix on Windows (host and path
        #: are case-insensitive there), the URL exactly as added under Wine (paths case-sensitive).
        self.registrations: dict[str, Registration] = {}
        self.initialized: dict[int, int] = {}
        #: Wine: whether some process started the http.sys driver (HttpInitialize(SERVER) alone).
        self.driver_running = False
        #: pid -> the SID its token carries, for DACL checks on OPEN_EXISTING (absent: allowed).
        self.process_sids: dict[int, str] = {}
        self._scripted: dict[str, deque[int]] = {}
        self._session_ids = itertools.count(0xFF00000120000001)
        self._group_ids = itertools.count(0xFE00000140000001)
        self._queue_ids = itertools.count(1)
        self._handle_values = itertools.count(0x100, 4)

    # --- test controls ----------------------------------------------------------------------
    def process(self, pid: int) -> RecordingBinding:
        """A binding for another process on the same machine."""
        return RecordingBinding(self, pid)

    def script(self, function: str, *codes: int) -> None:
        """Make the next calls of ``function`` (Win32 name) return ``codes`` in order.

        A scripted non-zero code fails the call without touching the model; a scripted 0 lets
        the call run normally. Unscripted calls always run the model.
        """
        self._scripted.setdefault(function, deque()).extend(codes)

    def functions(self, pid: int | None = None) -> list[str]:
        """The names of the recorded calls, in order (of one process when ``pid`` is given)."""
        return [c.function for c in self.calls if pid is None or c.pid == pid]

    def calls_to(self, function: str) -> list[Call]:
        """The recorded calls of one function."""
        return [c for c in self.calls if c.function == function]

    def queue_named(self, name: str) -> FakeQueue | None:
        """The live queue with this name (``None`` when there is none)."""
        for queue in self.queues:
            if queue.name == name and queue.handles:
                return queue
        return None

    def queue_of(self, handle: int) -> FakeQueue:
        """The queue behind a handle (KeyError for a closed one)."""
        return self.handles[handle].queue

    def route_table(self) -> dict[str, int]:
        """Registered prefixes (registration key) -> URL context."""
        return {key: reg.context for key, reg in self.registrations.items()}

    # --- the dispatcher ---------------------------------------------------------------------
    def invoke(
        self, pid: int, function: str, args: tuple[object, ...], body: Callable[[], int]
    ) -> int:
        """Run one call: scripted code, Wine abort, initialisation check, then the model."""
        scripted = self._scripted.get(function)
        code = scripted.popleft() if scripted else 0
        value = 0
        if code == 0:
            if self.flavor is Flavor.WINE8 and function in _ffi.WINE_ABORTING_FUNCTIONS:
                self.calls.append(Call(pid, function, args, -1))
                raise WineAbortError(f"{function} is an unimplemented stub under Wine 8: it aborts")
            try:
                if (
                    self.flavor is Flavor.WINDOWS
                    and function != "HttpInitialize"
                    and not (self.initialized.get(pid, 0) & _ffi.HTTP_INITIALIZE_SERVER)
                ):
                    _fail(ErrorCode.ERROR_DLL_INIT_FAILED)
                value = body()
            except _Failure as failure:
                code = failure.code
        if code != 0:
            self.calls.append(Call(pid, function, args, code))
            raise HttpApiError(code, function)
        self.calls.append(Call(pid, function, args, 0))
        return value

    # --- model helpers ----------------------------------------------------------------------
    def _session(self, session_id: int, pid: int) -> FakeSession:
        session = self.sessions.get(session_id)
        if session is None or session.pid != pid:
            _fail(ErrorCode.ERROR_INVALID_PARAMETER)
        return session

    def _group(self, group_id: int, pid: int, *, wine_checks: bool = False) -> FakeUrlGroup:
        group = self.groups.get(group_id)
        if group is None or group.pid != pid:
            if self.flavor is Flavor.WINE8 and not wine_checks:
                # Wine looks the id up and dereferences the result without a NULL check.
                raise WineAbortError(f"URL group id {group_id:#x} is stale: Wine 8 crashes")
            _fail(ErrorCode.ERROR_INVALID_PARAMETER)
        return group

    def _handle(self, handle: int, pid: int) -> FakeHandle:
        record = self.handles.get(handle)
        if record is None or record.pid != pid:
            _fail(ErrorCode.ERROR_INVALID_HANDLE)
        return record

    def _register(self, key: str, registration: Registration) -> None:
        if key in self.registrations:
            _fail(ErrorCode.ERROR_ALREADY_EXISTS)
        self.registrations[key] = registration

    def _unregister_group(self, group: FakeUrlGroup) -> None:
        for key in [k for k, reg in self.registrations.items() if reg.group_id == group.id]:
            del self.registrations[key]

    def _close_group(self, group: FakeUrlGroup) -> None:
        if self.flavor is Flavor.WINDOWS:
            self._unregister_group(group)
        # Wine frees only its bookkeeping: the URLs stay with the queue until it is closed.
        del self.groups[group.id]

    def _open_handle(self, queue: FakeQueue, pid: int, inheritable: bool) -> int:
        value = next(self._handle_values)
        self.handles[value] = FakeHandle(value, queue, pid, inheritable)
        queue.handles.add(value)
        return value


class RecordingBinding:
    """``HttpSysBinding`` for one process of a ``FakeHttpSys`` (a fresh machine by default)."""

    def __init__(self, system: FakeHttpSys | None = None, pid: int = 1000) -> None:
        """Bind to ``system`` as process ``pid``."""
        self.system = system if system is not None else FakeHttpSys()
        self.pid = pid

    @property
    def calls(self) -> list[Call]:
        """Every recorded call on the machine, in order."""
        return self.system.calls

    def process(self, pid: int) -> RecordingBinding:
        """Another process on the same machine."""
        return RecordingBinding(self.system, pid)

    def _call(self, function: str, args: tuple[object, ...], body: Callable[[], int]) -> int:
        return self.system.invoke(self.pid, function, args, body)

    @property
    def _wine(self) -> bool:
        return self.system.flavor is Flavor.WINE8

    # --- HttpSysBinding -----------------------------------------------------------------------
    def initialize(self, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        def body() -> int:
            if self._wine:
                # Wine 8 returns 0 for any flag besides SERVER without starting its driver.
                if flags == _ffi.HTTP_INITIALIZE_SERVER:
                    self.system.driver_running = True
                    self.system.initialized[self.pid] = flags
                return 0
            if flags == 0 or flags & ~_INIT_FLAGS:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            self.system.initialized[self.pid] = self.system.initialized.get(self.pid, 0) | flags
            return 0

        self._call("HttpInitialize", (flags,), body)

    def terminate(self, flags: int = _ffi.HTTP_INITIALIZE_SERVER) -> None:
        def body() -> int:
            system = self.system
            remaining = system.initialized.get(self.pid, 0) & ~flags
            if flags & _ffi.HTTP_INITIALIZE_SERVER:
                # Terminating the server API releases the process's sessions and their groups.
                for group in [g for g in system.groups.values() if g.pid == self.pid]:
                    system._close_group(group)
                for sid in [s for s, rec in system.sessions.items() if rec.pid == self.pid]:
                    del system.sessions[sid]
            if remaining:
                system.initialized[self.pid] = remaining
            else:
                system.initialized.pop(self.pid, None)
            return 0

        self._call("HttpTerminate", (flags,), body)

    def create_server_session(self) -> int:
        def body() -> int:
            session = FakeSession(next(self.system._session_ids), self.pid)
            self.system.sessions[session.id] = session
            return session.id

        return self._call("HttpCreateServerSession", (), body)

    def close_server_session(self, session_id: int) -> None:
        def body() -> int:
            self.system._session(session_id, self.pid)
            for group in [g for g in self.system.groups.values() if g.session_id == session_id]:
                self.system._close_group(group)
            del self.system.sessions[session_id]
            return 0

        self._call("HttpCloseServerSession", (session_id,), body)

    def set_server_session_property(self, session_id: int, value: SessionProperty) -> None:
        prop = property_id(value)

        def body() -> int:
            if self._wine:
                # Wine 8 never looks the session up: it ignores Qos and answers 120 to the rest.
                if prop is not ServerProperty.QOS:
                    _fail(ErrorCode.ERROR_CALL_NOT_IMPLEMENTED)
                return 0
            session = self.system._session(session_id, self.pid)
            _validate_property(value, on_group=False)
            session.properties[prop] = value
            return 0

        self._call("HttpSetServerSessionProperty", (session_id, prop, value), body)

    def create_url_group(self, session_id: int) -> int:
        def body() -> int:
            self.system._session(session_id, self.pid)
            group = FakeUrlGroup(next(self.system._group_ids), session_id, self.pid)
            self.system.groups[group.id] = group
            return group.id

        return self._call("HttpCreateUrlGroup", (session_id,), body)

    def close_url_group(self, group_id: int) -> None:
        def body() -> int:
            # HttpCloseUrlGroup is the one group call Wine checks (87 for a stale id).
            self.system._close_group(self.system._group(group_id, self.pid, wine_checks=True))
            return 0

        self._call("HttpCloseUrlGroup", (group_id,), body)

    def set_url_group_property(self, group_id: int, value: UrlGroupProperty) -> None:
        prop = property_id(value)

        def body() -> int:
            system = self.system
            group = system._group(group_id, self.pid)
            if isinstance(value, QueueBinding):
                if self._wine:
                    # Wine trusts the handle, and on (re)binding hands a stored URL to the driver,
                    # ignoring the result: a bad or duplicate URL is silently never registered.
                    group.bound_handle = value.queue
                    if value.queue is not None:
                        for url, ctx in group.urls.items():
                            if _wine_driver_check(url) == 0 and url not in system.registrations:
                                system.registrations[url] = Registration(group.id, ctx, value.queue)
                    return 0
                if value.queue is not None and value.queue not in system.handles:
                    _fail(ErrorCode.ERROR_INVALID_HANDLE)
                group.bound_handle = value.queue
                return 0
            if self._wine:
                _fail(ErrorCode.ERROR_CALL_NOT_IMPLEMENTED)
            _validate_property(value, on_group=True)
            group.properties[prop] = value
            return 0

        self._call("HttpSetUrlGroupProperty", (group_id, prop, value), body)

    def add_url_to_url_group(self, group_id: int, url: str, context: int) -> None:
        def body() -> int:
            system = self.system
            group = system._group(group_id, self.pid)
            if self._wine:
                if group.urls:
                    _fail(ErrorCode.ERROR_CALL_NOT_IMPLEMENTED)  # one URL per group
                if group.bound_handle is not None:
                    code = _wine_driver_check(url)
                    if code:
                        _fail(code)
                    system._register(url, Registration(group.id, context, group.bound_handle))
                group.urls[url] = context
                return 0
            try:
                prefix = parse_prefix(url)
            except UrlPrefixError:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            if prefix.port == 0:
                # Our grammar takes port 0 (the Linux backend picks a free port); http.sys does not.
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            key = str(prefix)
            system._register(key, Registration(group.id, context, None))
            group.urls[url] = context
            return 0

        self._call("HttpAddUrlToUrlGroup", (group_id, url, context), body)

    def remove_url_from_url_group(
        self, group_id: int, url: str | None, *, remove_all: bool = False
    ) -> None:
        flags = _ffi.HTTP_URL_FLAG_REMOVE_ALL if remove_all else 0

        def body() -> int:
            system = self.system
            group = system._group(group_id, self.pid)
            if self._wine:
                # Wine forgets the group's URL first, whatever URL was asked for, then asks the
                # driver to remove the one given (flags ignored).
                if not group.urls:
                    _fail(ErrorCode.ERROR_FILE_NOT_FOUND)
                group.urls.clear()
                if group.bound_handle is None:
                    return 0
                registration = system.registrations.get(url or "")
                if registration is None or registration.group_id != group.id:
                    _fail(ErrorCode.ERROR_FILE_NOT_FOUND)
                del system.registrations[url or ""]
                return 0
            if remove_all:
                system._unregister_group(group)
                group.urls.clear()
                return 0
            if url is None:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            try:
                key = str(parse_prefix(url))
            except UrlPrefixError:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            added = next((u for u in group.urls if str(parse_prefix(u)) == key), None)
            if added is None:
                _fail(ErrorCode.ERROR_NOT_FOUND)
            del group.urls[added]
            system.registrations.pop(key, None)
            return 0

        self._call("HttpRemoveUrlFromUrlGroup", (group_id, url, flags), body)

    def create_request_queue(
        self,
        name: str | None,
        *,
        security_descriptor: str | None = None,
        flags: int = 0,
        inheritable: bool = False,
    ) -> int:
        def body() -> int:
            system = self.system
            if self._wine:
                if not system.driver_running:
                    _fail(ErrorCode.ERROR_PATH_NOT_FOUND)
                # Wine 8 ignores name and flags: every call makes a fresh queue, and one asked for
                # by name (OPEN_EXISTING or a duplicate) never receives anything.
                queue = self._new_queue(name, security_descriptor, flags)
                queue.dead = name is not None and (
                    bool(flags & _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING)
                    or any(q.name == name and q.handles and q is not queue for q in system.queues)
                )
                return system._open_handle(queue, self.pid, inheritable)
            if flags & ~_QUEUE_FLAGS:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            if name is not None and (
                not name or len(name) > _ffi.MAX_PATH or any(c in name for c in "\\/")
            ):
                _fail(ErrorCode.ERROR_INVALID_NAME)
            existing = system.queue_named(name) if name is not None else None
            if flags & _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING:
                if name is None or security_descriptor is not None:
                    _fail(ErrorCode.ERROR_INVALID_PARAMETER)
                if existing is None:
                    _fail(ErrorCode.ERROR_FILE_NOT_FOUND)
                sid = system.process_sids.get(self.pid)
                if (
                    sid is not None
                    and existing.security_descriptor is not None
                    and sid not in allowed_sids(existing.security_descriptor)
                ):
                    _fail(ErrorCode.ERROR_ACCESS_DENIED)
                return system._open_handle(existing, self.pid, inheritable)
            if existing is not None:
                _fail(ErrorCode.ERROR_ALREADY_EXISTS)
            if security_descriptor is not None:
                try:
                    allowed_sids(security_descriptor)
                except ValueError:
                    _fail(ErrorCode.ERROR_INVALID_SECURITY_DESCR)
            queue = self._new_queue(name, security_descriptor, flags)
            return system._open_handle(queue, self.pid, inheritable)

        args = (name, security_descriptor, flags, inheritable)
        return self._call("HttpCreateRequestQueue", args, body)

    def _new_queue(
        self, name: str | None, security_descriptor: str | None, flags: int
    ) -> FakeQueue:
        queue = FakeQueue(
            next(self.system._queue_ids),
            name,
            self.pid,
            security_descriptor,
            controller=bool(flags & _ffi.HTTP_CREATE_REQUEST_QUEUE_FLAG_CONTROLLER),
        )
        self.system.queues.append(queue)
        return queue

    def set_request_queue_property(self, queue: int, prop: ServerProperty, value: int) -> None:
        def body() -> int:
            record = self.system._handle(queue, self.pid)
            if self._wine:
                _fail(ErrorCode.ERROR_CALL_NOT_IMPLEMENTED)
            # Only the creator configures a queue; everyone else gets 87 (notes section 1).
            if prop not in QUEUE_PROPERTIES or record.queue.creator_pid != self.pid:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            if not _queue_value_ok(prop, value):
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            record.queue.properties[prop] = value
            return 0

        self._call("HttpSetRequestQueueProperty", (queue, prop, value), body)

    def query_request_queue_property(self, queue: int, prop: ServerProperty) -> int:
        def body() -> int:
            record = self.system._handle(queue, self.pid)
            if prop not in QUEUE_PROPERTIES:
                _fail(ErrorCode.ERROR_INVALID_PARAMETER)
            return record.queue.properties[prop]

        return self._call("HttpQueryRequestQueueProperty", (queue, prop), body)

    def shutdown_request_queue(self, queue: int) -> None:
        def body() -> int:
            record = self.system._handle(queue, self.pid)
            record.queue.shut_down_pids.add(self.pid)
            return 0

        self._call("HttpShutdownRequestQueue", (queue,), body)

    def close_request_queue(self, queue: int) -> None:
        def body() -> int:
            system = self.system
            record = system._handle(queue, self.pid)
            del system.handles[queue]
            record.queue.handles.discard(queue)
            if self._wine:
                # Wine's driver keeps URLs per queue object: they go with the queue handle.
                for key in [k for k, r in system.registrations.items() if r.queue_handle == queue]:
                    del system.registrations[key]
            return 0

        self._call("HttpCloseRequestQueue", (queue,), body)


def _wine_driver_check(url: str) -> int:
    """What Wine 8's http.sys driver checks of a URL: ``http://HOST:DIGITS/...`` and nothing more."""
    if url.startswith("https://"):
        return 1  # ERROR_INVALID_FUNCTION: no TLS in Wine's driver
    if not url.startswith("http://"):
        return ErrorCode.ERROR_INVALID_PARAMETER
    authority, slash, _path = url[len("http://") :].partition("/")
    host, colon, port = authority.rpartition(":")
    if not slash or not colon or not host or host.startswith("[") or not port.isdigit():
        return ErrorCode.ERROR_INVALID_PARAMETER
    return 0


def _queue_value_ok(prop: ServerProperty, value: int) -> bool:
    if prop is ServerProperty.QUEUE_LENGTH:
        return 1 <= value <= _ffi.HTTP_MAX_QUEUE_LENGTH
    if prop is ServerProperty.STATE:
        return value in set(EnabledState)
    return value in set(_ffi.Verbosity503)


def _validate_property(value: SessionProperty | UrlGroupProperty, *, on_group: bool) -> None:
    if isinstance(value, ConnectionLimit) and not on_group:
        # Connection limits exist on URL groups only (notes section 1.1).
        _fail(ErrorCode.ERROR_INVALID_PARAMETER)
    if (
        isinstance(value, BandwidthLimit)
        and value.max_bytes_per_s != _ffi.HTTP_LIMIT_INFINITE
        and value.max_bytes_per_s < _ffi.HTTP_MIN_ALLOWED_BANDWIDTH_THROTTLING_RATE
    ):
        _fail(ErrorCode.ERROR_INVALID_PARAMETER)


if TYPE_CHECKING:
    _conforms: HttpSysBinding = RecordingBinding()
