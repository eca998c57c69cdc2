"""The HTTP.sys backend: plan steps applied to http.sys through ``HttpSysBinding``, plus worker processes.

Owns: ``HttpSysBackend`` (the ``Backend`` protocol, ``poll``, ``status``, ``reset``, ``shutdown``), the
route-id encoding carried in every URL's UrlContext (``route_id``, ``decode_route_id``,
``ROUTE_ID_VERSION``), the ``netsh http show servicestate`` parser (``parse_servicestate``, pure), the
worker-process seam (``LaunchSpec``, ``WorkerProcess``, ``Launcher``, ``launch_process``) and the
default HTTP health probe (``ProbeTarget``, ``http_probe``).

How steps map to http.sys (notes/httpsys-backend.md sections 1, 2 and 4; DESIGN.md section 7):

- session: ``HttpInitialize`` (once, at construction) and one server session per manifest session,
  with its timeouts. The session's ``limits.maxConnections`` becomes the QoS connection limit of every
  URL group that sets none (http.sys limits connections per URL group, as ASP.NET Core does).
- queue: a named request queue opened Create-or-Attach with a DACL built from the ACL (``sddl``); the
  creator sets queue length, 503 verbosity and state. A name another process already created is
  attached and reported as a ``queue_attached`` fault (drift), never retried in a loop; its properties
  are not ours to set. The DACL is fixed at creation, so an ACL change re-creates the queue (and
  restarts its pools).
- URL group: one http.sys URL group per manifest group (one per URL under Wine), with timeouts,
  connection limit and state, bound to its queue before any URL is added; every URL carries a route
  id as its UrlContext.
- worker pool: processes launched with ``ORCHESTRATOR_QUEUE`` (and ``ORCHESTRATOR_QUEUE_HANDLE`` with
  an inherited handle where names do not work, as under Wine), supervised with the pure
  ``supervise.core`` (restart backoff, rapid-fail, escalation, recycling, probe verdicts). Rapid-fail
  and pool stop set the queue Inactive, so http.sys answers 503 per its verbosity.

Under Wine (``HttpSysCapabilities.is_wine``) the functions that abort the process are never called and
unsupported properties are skipped with a note. Must not import ``ctypes`` (``_ffi`` does), another
backend, ``reconcile``, ``controller`` or ``cli``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import itertools
import math
import os
import queue as queue_module
import re
import select
import signal
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from orchestrator.backends.base import Capabilities, Progress
from orchestrator.backends.httpsys import _ffi
from orchestrator.backends.httpsys._ffi import EnabledState, ErrorCode, HttpApiError, ServerProperty
from orchestrator.backends.httpsys.binding import ConnectionLimit, HttpSysBinding, TimeoutLimits
from orchestrator.backends.httpsys.capabilities import (
    HttpSysCapabilities,
    capabilities_for,
    detect_capabilities,
)
from orchestrator.backends.httpsys.handles import ApiInit, ServerSession
from orchestrator.backends.httpsys.handles import RequestQueue as QueueHandle
from orchestrator.backends.httpsys.handles import UrlGroup as GroupHandle
from orchestrator.backends.httpsys.queue_open import (
    QueueAccessDeniedError,
    QueueMode,
    QueueNameInvalidError,
    QueueOpenError,
    open_request_queue,
)
from orchestrator.backends.httpsys.sddl import (
    InvalidSidError,
    PrincipalResolutionError,
    SidResolver,
    build_queue_sddl,
)
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import BackendError, PermanentBackendError, TemporaryBackendError
from orchestrator.model.desired import (
    Backend,
    Principal,
    PrincipalKind,
    RequestQueue,
    Resource,
    Session,
    State,
    TimeoutOverrides,
    Timeouts,
    UrlGroup,
    Verbosity503,
    WorkerPool,
)
from orchestrator.model.ids import Key, Kind
from orchestrator.model.live import Fault, LiveState, Repair
from orchestrator.model.urlprefix import HostKind, UrlPrefixError, parse_prefix
from orchestrator.plan.steps import Op, Step
from orchestrator.supervise import core

__all__ = [
    "ROUTE_ID_VERSION",
    "HttpSysBackend",
    "LaunchSpec",
    "Launcher",
    "PopenProcess",
    "ProbeTarget",
    "RouteId",
    "ServiceState",
    "ServiceStateGroup",
    "ServiceStateQueue",
    "ServiceStateSession",
    "WorkerProcess",
    "decode_route_id",
    "group_timeout_limits",
    "http_probe",
    "launch_process",
    "parse_servicestate",
    "route_id",
    "session_timeout_limits",
]

Emit = Callable[..., None]

#: A process that has stayed up this long counts as ready (http.sys has no readiness channel).
READY_GRACE_S = 1.0
#: How often process exits are polled where no exit fd exists (Windows).
EXIT_POLL_S = 0.1
#: How often results of probes running on threads are collected.
PROBE_POLL_S = 0.25
#: How long ``servicestate`` output is reused (observe runs twice per reconcile pass).
SERVICESTATE_TTL_S = 2.0
#: Queue names in the environment of every worker.
ENV_QUEUE = "ORCHESTRATOR_QUEUE"
ENV_QUEUE_HANDLE = "ORCHESTRATOR_QUEUE_HANDLE"


def _null_emit(event: str, **fields: object) -> None:
    return None


def _no_progress(event: str, fields: dict[str, object]) -> None:
    return None


# --- route ids (the UrlContext of every registered URL) ---------------------------------------------
#: Version 1 of the UrlContext layout (64 bits, most significant first):
#:   bits 63..56  version (1; 0 is never used, so a context of 0 means "not a route id")
#:   bits 55..24  CRC-32 of the URL group's name (UTF-8)
#:   bits 23..0   the low 24 bits of the CRC-32 of the URL prefix in canonical form (UTF-8)
#: A route id depends only on its group and prefix, so adding or removing other prefixes never
#: changes it. A worker recognises a route by recomputing ``route_id(group, prefix)``.
ROUTE_ID_VERSION = 1
_VERSION_SHIFT = 56
_GROUP_SHIFT = 24
_URL_MASK = 0xFFFFFF


@dataclass(frozen=True, slots=True)
class RouteId:
    """A decoded UrlContext: its layout version and the two hashes."""

    version: int
    group_hash: int
    url_hash: int

    def matches(self, group: str, url: str) -> bool:
        """Whether this route id was made for ``url`` in URL group ``group``."""
        return decode_route_id(route_id(group, url)) == self


def route_id(group: str, url: str) -> int:
    """The UrlContext of ``url`` (canonical prefix) in URL group ``group`` (layout version 1)."""
    group_hash = zlib.crc32(group.encode("utf-8"))
    url_hash = zlib.crc32(url.encode("utf-8")) & _URL_MASK
    return (ROUTE_ID_VERSION << _VERSION_SHIFT) | (group_hash << _GROUP_SHIFT) | url_hash


def decode_route_id(context: int) -> RouteId:
    """Split a UrlContext into version and hashes.

    Raises:
        ValueError: not a 64-bit value, or a version this code does not know (0 included).
    """
    if not 0 <= context < 1 << 64:
        raise ValueError(f"UrlContext {context} is not a 64-bit value")
    version = context >> _VERSION_SHIFT
    if version != ROUTE_ID_VERSION:
        raise ValueError(f"UrlContext {context:#x} has route id version {version}, not 1")
    return RouteId(version, (context >> _GROUP_SHIFT) & 0xFFFFFFFF, context & _URL_MASK)


# --- property payloads from the model -------------------------------------------------------------
_USHORT_MAX = 0xFFFF

_VERBOSITY = {
    Verbosity503.BASIC: _ffi.Verbosity503.BASIC,
    Verbosity503.LIMITED: _ffi.Verbosity503.LIMITED,
    Verbosity503.FULL: _ffi.Verbosity503.FULL,
}
_VERBOSITY_BACK = {v: k for k, v in _VERBOSITY.items()}


def _whole_seconds(name: str, value: float) -> int:
    seconds = math.ceil(value)
    if seconds > _USHORT_MAX:
        raise ValueError(f"{name} of {value:g}s is more than http.sys allows ({_USHORT_MAX}s)")
    return max(0, seconds)


def session_timeout_limits(timeouts: Timeouts) -> TimeoutLimits:
    """A session's timers as ``HTTP_TIMEOUT_LIMIT_INFO`` (seconds rounded up).

    Raises:
        ValueError: a timer longer than 65535 s.
    """
    return TimeoutLimits(
        entity_body_s=_whole_seconds("entityBody", timeouts.entity_body_s),
        drain_entity_body_s=_whole_seconds("drainEntityBody", timeouts.drain_entity_body_s),
        request_queue_s=_whole_seconds("requestQueue", timeouts.request_queue_s),
        idle_connection_s=_whole_seconds("idleConnection", timeouts.idle_connection_s),
        header_wait_s=_whole_seconds("headerWait", timeouts.header_wait_s),
        min_send_rate=timeouts.min_send_rate,
    )


def group_timeout_limits(overrides: TimeoutOverrides) -> TimeoutLimits:
    """A URL group's timers; a field left unset is 0, which http.sys reads as "inherit the session".

    Raises:
        ValueError: a timer longer than 65535 s.
    """

    def pick(name: str, value: float | None) -> int:
        return 0 if value is None else _whole_seconds(name, value)

    return TimeoutLimits(
        entity_body_s=pick("entityBody", overrides.entity_body_s),
        drain_entity_body_s=pick("drainEntityBody", overrides.drain_entity_body_s),
        request_queue_s=pick("requestQueue", overrides.request_queue_s),
        idle_connection_s=pick("idleConnection", overrides.idle_connection_s),
        header_wait_s=pick("headerWait", overrides.header_wait_s),
        min_send_rate=overrides.min_send_rate or 0,
    )


# --- netsh http show servicestate ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ServiceStateGroup:
    """A URL group as ``netsh http show servicestate`` shows it."""

    id: str
    state: str
    queue: str | None  # None: "Request queue is unnamed."
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceStateSession:
    """A server session and its URL groups."""

    id: str
    state: str
    groups: tuple[ServiceStateGroup, ...]


@dataclass(frozen=True, slots=True)
class ServiceStateQueue:
    """A request queue: state, 503 verbosity, limits and the processes attached to it."""

    name: str | None
    state: str
    verbosity503: str
    max_requests: int | None
    processes: int | None
    controller_pid: int | None
    pids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ServiceState:
    """The parsed snapshot: sessions (with their URL groups) and request queues."""

    sessions: tuple[ServiceStateSession, ...]
    queues: tuple[ServiceStateQueue, ...]

    def queue(self, name: str) -> ServiceStateQueue | None:
        """The queue with this name (case-insensitive), if listed."""
        folded = name.casefold()
        return next((q for q in self.queues if q.name and q.name.casefold() == folded), None)

    def registered_urls(self) -> frozenset[str]:
        """Every registered URL of every group, casefolded (netsh prints them uppercased)."""
        return frozenset(u.casefold() for s in self.sessions for g in s.groups for u in g.urls)


_LIST_KEYS = frozenset({"registered urls", "process ids", "processes"})
_UNNAMED = "request queue is unnamed"


def _opt_int(text: str) -> int | None:
    match = re.search(r"\d+", text)
    return int(match.group(0)) if match else None


def _queue_name(text: str) -> str | None:
    value = text.strip()
    return None if not value or value.casefold().rstrip(".") == _UNNAMED else value


@dataclass(slots=True)
class _GroupDraft:
    id: str
    state: str = ""
    queue: str | None = None
    urls: list[str] = field(default_factory=list)

    def freeze(self) -> ServiceStateGroup:
        return ServiceStateGroup(self.id, self.state, self.queue, tuple(self.urls))


@dataclass(slots=True)
class _SessionDraft:
    id: str
    state: str = ""
    groups: list[_GroupDraft] = field(default_factory=list)

    def freeze(self) -> ServiceStateSession:
        return ServiceStateSession(self.id, self.state, tuple(g.freeze() for g in self.groups))


@dataclass(slots=True)
class _QueueDraft:
    name: str | None
    state: str = ""
    verbosity503: str = ""
    max_requests: int | None = None
    processes: int | None = None
    controller_pid: int | None = None
    pids: list[str] = field(default_factory=list)

    def freeze(self) -> ServiceStateQueue:
        pids = tuple(p for item in self.pids for p in _pids_of(item))
        return ServiceStateQueue(
            self.name,
            self.state,
            self.verbosity503,
            self.max_requests,
            self.processes,
            self.controller_pid,
            pids,
        )


def parse_servicestate(text: str) -> ServiceState:
    """Parse ``netsh http show servicestate [view=session] [verbose=yes]`` output.

    Tolerant of the differences between Windows builds (notes section 3): list values (registered
    URLs, process ids) may follow their key on the same line or on more-indented lines; unknown keys
    are ignored; ``Request queue is unnamed.`` reads as ``None``. Pure: text in, values out.
    """
    sessions: list[_SessionDraft] = []
    queues: list[_QueueDraft] = []
    group: _GroupDraft | None = None
    in_queues = False
    list_target: list[str] | None = None
    list_indent = 0
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or set(stripped) <= {"-", "="}:
            continue
        indent = len(raw) - len(raw.lstrip())
        if list_target is not None:
            if indent > list_indent:
                list_target.append(stripped)
                continue
            list_target = None
        key, sep, value = stripped.partition(":")
        if not sep:
            continue
        name = key.strip().casefold()
        value = value.strip()
        queue = queues[-1] if in_queues and queues else None
        if name == "server session id":
            in_queues, group = False, None
            sessions.append(_SessionDraft(value))
        elif name == "url group id" and sessions and not in_queues:
            group = _GroupDraft(value)
            sessions[-1].groups.append(group)
        elif name == "request queues" and not value:
            in_queues, group = True, None
        elif name == "request queue name":
            if in_queues:
                queues.append(_QueueDraft(_queue_name(value)))
            elif group is not None:
                group.queue = _queue_name(value)
        elif name == "state":
            target = queue if in_queues else (group or (sessions[-1] if sessions else None))
            if target is not None and not target.state:
                target.state = value
        elif queue is not None and name == "request queue 503 verbosity level":
            queue.verbosity503 = value
        elif queue is not None and name == "max requests":
            queue.max_requests = _opt_int(value)
        elif queue is not None and name == "number of active processes attached":
            queue.processes = _opt_int(value)
        elif queue is not None and name == "controller process id":
            queue.controller_pid = _opt_int(value)
        elif name in _LIST_KEYS:
            items: list[str] | None = None
            if name == "registered urls" and group is not None and not in_queues:
                items = group.urls
            elif name != "registered urls" and queue is not None:
                items = queue.pids
            if items is not None:
                if value:
                    items.extend(v for v in re.split(r"[\s,]+", value) if v)
                else:
                    list_target, list_indent = items, indent
    return ServiceState(tuple(s.freeze() for s in sessions), tuple(q.freeze() for q in queues))


def _pids_of(text: str) -> list[int]:
    """Process ids in one list item: ``5678``, or ``ID: 5678, image: C:\\...`` on newer builds."""
    match = re.match(r"(?:id\s*:\s*)?(\d+)\b", text.strip(), re.IGNORECASE)
    return [int(match.group(1))] if match else []


def _run_netsh() -> str:
    """``netsh http show servicestate verbose=yes`` (Windows only; ``""`` when it cannot run)."""
    try:
        result = subprocess.run(
            ["netsh", "http", "show", "servicestate", "view=session", "verbose=yes"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout if result.returncode == 0 else ""


# --- worker processes ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What to start: command, environment, directory, and a queue handle the child must inherit."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None = None
    inherit_handle: int | None = None


class WorkerProcess(Protocol):
    """A started worker process, as the supervisor drives it."""

    @property
    def pid(self) -> int:
        """The process id."""
        ...

    def poll(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal, on POSIX), else ``None``."""
        ...

    def terminate(self) -> None:
        """Ask it to stop (Windows: CTRL_BREAK to its process group; POSIX: SIGTERM to its group)."""
        ...

    def kill(self) -> None:
        """Stop it now (Windows: TerminateProcess; POSIX: SIGKILL to its group)."""
        ...

    def exit_fd(self) -> int | None:
        """A descriptor that becomes readable when it exits (Linux pidfd), or ``None`` (poll it)."""
        ...

    def release(self) -> None:
        """Free what watching it needed (after it exited)."""
        ...


Launcher = Callable[[LaunchSpec], WorkerProcess]


class PopenProcess:
    """``WorkerProcess`` over ``subprocess.Popen``."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self._fd: int | None = None
        if sys.platform == "linux":
            with contextlib.suppress(OSError):
                self._fd = os.pidfd_open(popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def terminate(self) -> None:
        if sys.platform == "win32":
            # CTRL_BREAK reaches the child's process group (CREATE_NEW_PROCESS_GROUP) as SIGBREAK.
            with contextlib.suppress(OSError):
                self.popen.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def kill(self) -> None:
        if sys.platform == "win32":
            with contextlib.suppress(OSError):
                self.popen.kill()
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def exit_fd(self) -> int | None:
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def launch_process(spec: LaunchSpec) -> WorkerProcess:
    """Start a worker with ``subprocess.Popen``: its own process group, stdin from the null device.

    On Windows a handle to inherit (Wine) needs ``close_fds=False``, which passes every inheritable
    handle; the controller makes only queue handles inheritable, and only under Wine.

    Raises:
        OSError: the command cannot be started (not found, not executable, bad directory).
    """
    if sys.platform == "win32":
        popen = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            close_fds=spec.inherit_handle is None,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
        )
    else:
        popen = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    return PopenProcess(popen)


# --- health probes -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where a pool's health probe goes: through http.sys, to a URL routed to the pool's queue."""

    scheme: str
    connect_host: str
    port: int
    host_header: str
    path: str
    timeout_s: float


ProbeFn = Callable[[ProbeTarget], tuple[bool, str]]


def http_probe(target: ProbeTarget) -> tuple[bool, str]:
    """GET the probe path; 2xx and 3xx are healthy. Never raises."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a local liveness probe, not a trust decision
        conn = http.client.HTTPSConnection(
            target.connect_host, target.port, timeout=target.timeout_s, context=context
        )
    else:
        conn = http.client.HTTPConnection(
            target.connect_host, target.port, timeout=target.timeout_s
        )
    try:
        conn.request(
            "GET", target.path, headers={"Host": target.host_header, "User-Agent": "orchestrator"}
        )
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return False, f"probe failed: {exc or type(exc).__name__}"
    finally:
        conn.close()
    return 200 <= response.status < 400, f"HTTP {response.status}"


def _start_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="httpsys-probe", daemon=True).start()


# --- supervision records ----------------------------------------------------------------------------
def policy_of(spec: WorkerPool) -> core.Policy:
    """The supervision policy of a pool definition (the same mapping as the Linux backend's)."""
    return core.Policy(
        processes=spec.processes,
        initial_backoff_s=spec.restart.initial_backoff_s,
        max_backoff_s=spec.restart.max_backoff_s,
        reset_after_s=spec.restart.reset_after_s,
        rapid_fail_enabled=spec.rapid_fail.enabled,
        max_crashes=spec.rapid_fail.max_crashes,
        rapid_fail_interval_s=spec.rapid_fail.interval_s,
        startup_time_limit_s=spec.startup_time_limit_s,
        shutdown_time_limit_s=spec.shutdown_time_limit_s,
        unhealthy_threshold=spec.health.unhealthy_threshold,
        recycle_time_s=spec.recycling.time_s,
        recycle_requests=spec.recycling.requests,
        recycle_memory_bytes=spec.recycling.memory_bytes,
        recycle_schedule=spec.recycling.schedule,
    )


@dataclass(slots=True)
class _Instance:
    slot: int
    process: WorkerProcess
    started_at: float
    queue_handle: int
    ready: bool = False
    term_at: float | None = None
    killed: bool = False

    def as_child(self) -> core.Child:
        return core.Child(
            slot=self.slot,
            pid=self.process.pid,
            started_at=self.started_at,
            ready=self.ready,
            term_at=self.term_at,
        )


@dataclass(slots=True)
class _Generation:
    number: int
    spec: WorkerPool
    policy: core.Policy
    started_at: float
    instances: dict[int, _Instance] = field(default_factory=dict)  # by pid
    restart_at: dict[int, float] = field(default_factory=dict)  # by slot
    stopping: bool = False
    stop_reason: str = ""
    ever_ready: bool = False

    def ready(self) -> bool:
        ready_slots = {i.slot for i in self.instances.values() if i.ready and i.term_at is None}
        return all(slot in ready_slots for slot in range(self.policy.processes))


@dataclass(slots=True)
class _Pool:
    name: str
    spec: WorkerPool
    generations: list[_Generation] = field(default_factory=list)
    health: core.PoolHealth = field(default_factory=core.PoolHealth)
    probe: core.ProbeState = field(default_factory=core.ProbeState)
    next_probe_at: float = 0.0
    probe_pending: bool = False
    recycling: bool = False
    last_minute: int | None = None
    removed: bool = False

    @property
    def active(self) -> _Generation | None:
        for gen in reversed(self.generations):
            if not gen.stopping:
                return gen
        return None

    @property
    def serving(self) -> _Generation | None:
        for gen in reversed(self.generations):
            if not gen.stopping and gen.ever_ready:
                return gen
        return self.active


@dataclass(slots=True)
class _SessionRecord:
    spec: Session
    handle: ServerSession


@dataclass(slots=True)
class _QueueRecord:
    spec: RequestQueue
    handle: QueueHandle
    #: The state this controller last set (``None``: never set, e.g. under Wine or when attached).
    state_set: EnabledState | None = None
    #: Its last pool was stopped (removed): IIS answers 503 for a stopped pool.
    stopped: bool = False

    @property
    def created(self) -> bool:
        return self.handle.created


@dataclass(slots=True)
class _GroupRecord:
    spec: UrlGroup
    handles: list[GroupHandle] = field(default_factory=list)
    #: The queue handle the http.sys groups are bound to (``None``: unbound).
    queue_handle: int | None = None
    alive: bool = True


# --- the backend ------------------------------------------------------------------------------------
class HttpSysBackend:
    """Server sessions, URL groups and request queues in http.sys; worker pools as processes."""

    def __init__(
        self,
        *,
        run_dir: str = "",
        emit: Emit | None = None,
        clock: Clock | None = None,
        binding: HttpSysBinding | None = None,
        capabilities: HttpSysCapabilities | None = None,
        sid_resolver: SidResolver | None = None,
        controller_account: str | None = None,
        launcher: Launcher | None = None,
        probe: ProbeFn | None = None,
        run_probe: Callable[[Callable[[], None]], None] | None = None,
        servicestate: Callable[[], str] | None = None,
        sleep: Callable[[float], None] | None = None,
        ready_grace_s: float = READY_GRACE_S,
    ) -> None:
        """Initialise the HTTP Server API of this process.

        Args:
            run_dir: the controller's run directory (created if missing).
            emit: structured event sink, ``emit(event, **fields)``.
            clock: time source (``SystemClock`` by default).
            binding: the HTTP Server API; ``RealBinding`` on Windows, a ``RecordingBinding`` in tests.
            capabilities: what this host supports; detected on Windows, full Windows elsewhere.
            sid_resolver: turns ACL principals into SIDs (``LookupAccountNameW`` on Windows).
            controller_account: the account the controller (and so every worker) runs as; it is
                granted the queue when a queue names no ACL (``USERDOMAIN\\USERNAME`` on Windows).
            launcher: starts worker processes (``launch_process`` by default).
            probe: runs one health probe (``http_probe`` by default).
            run_probe: runs a probe job (on a daemon thread by default; tests run it inline).
            servicestate: returns ``netsh http show servicestate`` text; used on real Windows only.
            sleep: how ``poll`` waits when it has no descriptor to wait on.
            ready_grace_s: how long a process must stay up to count as ready.

        Raises:
            PermanentBackendError: not on Windows and no binding given, or ``HttpInitialize`` failed.
        """
        self.clock: Clock = clock or SystemClock()
        self.emit: Emit = emit or _null_emit
        if binding is None:
            if sys.platform != "win32":
                raise PermanentBackendError(
                    'backend "httpsys" needs Windows (httpapi.dll)',
                    "Use backend: linux on this host; tests give HttpSysBackend a RecordingBinding.",
                )
            from orchestrator.backends.httpsys.binding import RealBinding

            binding = RealBinding()
        self.binding: HttpSysBinding = binding
        if capabilities is None:
            capabilities = (
                detect_capabilities() if sys.platform == "win32" else capabilities_for(None)
            )
        self.caps = capabilities
        if sid_resolver is None and sys.platform == "win32":
            from orchestrator.backends.httpsys.sddl import windows_sid_resolver

            sid_resolver = windows_sid_resolver()
        self.sid_resolver = sid_resolver
        if controller_account is None and sys.platform == "win32" and not self.caps.is_wine:
            user, domain = os.environ.get("USERNAME"), os.environ.get("USERDOMAIN")
            controller_account = f"{domain}\\{user}" if user and domain else user
        self.controller_account = controller_account
        self.launcher: Launcher = launcher or launch_process
        self.probe: ProbeFn = probe or http_probe
        self.run_probe = run_probe or _start_thread
        if servicestate is None and sys.platform == "win32" and not self.caps.is_wine:
            servicestate = _run_netsh
        self.servicestate = servicestate
        self.sleep = sleep or time.sleep
        self.ready_grace_s = ready_grace_s
        self.run_dir = os.path.abspath(run_dir) if run_dir else ""
        if self.run_dir:
            os.makedirs(self.run_dir, exist_ok=True)
        try:
            self.api = ApiInit(self.binding)
        except HttpApiError as exc:
            raise PermanentBackendError(
                f"HttpInitialize failed: {exc.name} ({exc.code})",
                "The HTTP Server API 2.0 is not usable in this process.",
            ) from exc
        self.sessions: dict[str, _SessionRecord] = {}
        self.queues: dict[str, _QueueRecord] = {}
        self.groups: dict[str, _GroupRecord] = {}
        self.pools: dict[str, _Pool] = {}
        self._numbers = itertools.count(1)
        self._probe_results: queue_module.SimpleQueue[tuple[str, bool, str]] = (
            queue_module.SimpleQueue()
        )
        self._noted: set[str] = set()
        self._servicestate_cache: tuple[float, ServiceState | None] | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return "httpsys"

    def capabilities(self) -> Capabilities:
        features = set(self.caps.features()) | {"health_probe"}
        notes = (
            *self.caps.notes(),
            "workers run under the controller's account (per-pool identities are not implemented)",
            "no resource limits (Job objects are not used)",
        )
        return Capabilities("httpsys", frozenset(features), notes)

    # -- notes and helpers -------------------------------------------------------------------------
    def _note(self, report: Progress, message: str, *, once: bool = False) -> None:
        if once and message in self._noted:
            return
        self._noted.add(message)
        report("note", {"message": message})
        self.emit("note", message=message)

    def _session_for(self, spec: UrlGroup) -> _SessionRecord:
        record = self.sessions.get(spec.session.name)
        if record is None:
            raise TemporaryBackendError(
                f"urlgroup/{spec.key.name}: {spec.session} does not exist yet"
            )
        return record

    def _queue_for(self, spec: UrlGroup) -> _QueueRecord | None:
        if spec.queue is None:
            return None
        record = self.queues.get(spec.queue.name)
        if record is None:
            raise TemporaryBackendError(
                f"urlgroup/{spec.key.name}: {spec.queue} does not exist yet"
            )
        return record

    # -- observe -----------------------------------------------------------------------------------
    def observe(self) -> LiveState:
        resources: dict[Key, Resource] = {}
        faults: list[Fault] = []
        state = self._service_state()
        for session in self.sessions.values():
            resources[session.spec.key] = session.spec
        for name, record in self.queues.items():
            observed = self._observe_queue(name, record, faults)
            if observed is not None:
                resources[observed.key] = observed
                if state is not None and record.created and state.queue(name) is None:
                    faults.append(
                        Fault(
                            key=observed.key,
                            reason="missing_from_http_service",
                            detail="netsh http show servicestate does not list it; re-creating",
                            repair=Repair.REPLACE,
                        )
                    )
        registered = state.registered_urls() if state is not None else None
        for group in self.groups.values():
            if not group.alive:
                continue
            resources[group.spec.key] = group.spec
            if registered is not None:
                missing = [u for u in group.spec.urls if u.casefold() not in registered]
                if missing:
                    faults.append(
                        Fault(
                            key=group.spec.key,
                            reason="url_not_registered",
                            detail=f"http.sys does not list {missing[0]}; registering it again",
                            repair=Repair.UPDATE,
                        )
                    )
        for pool in self.pools.values():
            if pool.removed or pool.active is None:
                continue
            resources[pool.spec.key] = pool.spec
            faults.extend(self._pool_faults(pool))
        return LiveState(
            resources=MappingProxyType(resources), faults=tuple(faults), backend=self.name
        )

    def _observe_queue(
        self, name: str, record: _QueueRecord, faults: list[Fault]
    ) -> RequestQueue | None:
        spec = record.spec
        if not record.created:
            faults.append(
                Fault(
                    key=spec.key,
                    reason="queue_attached",
                    detail=(
                        f'http.sys queue "{name}" was created by another process: attached; its '
                        "length, state, 503 verbosity and DACL are its creator's (rename the queue "
                        "or stop the other process)"
                    ),
                )
            )
            return spec
        if not self.caps.query_properties:
            return spec  # Wine: the Query calls abort the process; report what we hold
        try:
            length = record.handle.query_property(ServerProperty.QUEUE_LENGTH)
            verbosity = record.handle.query_property(ServerProperty.VERBOSITY_503)
            state = record.handle.query_property(ServerProperty.STATE)
        except HttpApiError as exc:
            if exc.code == ErrorCode.ERROR_INVALID_HANDLE:
                return None  # closed behind our back: the plan creates it again
            faults.append(Fault(key=spec.key, reason="queue_unreadable", detail=str(exc)))
            return spec
        try:
            observed_verbosity = _VERBOSITY_BACK[_ffi.Verbosity503(verbosity)]
        except ValueError:
            observed_verbosity = spec.verbosity503
        if record.state_set is not None and state != int(record.state_set):
            faults.append(
                Fault(
                    key=spec.key,
                    reason="queue_state_changed",
                    detail=f"http.sys reports state {state}, expected {int(record.state_set)}",
                    repair=Repair.UPDATE,
                )
            )
        return dataclasses.replace(spec, max_length=length, verbosity503=observed_verbosity)

    def _pool_faults(self, pool: _Pool) -> list[Fault]:
        spec = pool.spec
        if pool.health.halted:
            return [
                Fault(
                    key=spec.key,
                    reason="rapid_fail",
                    detail=pool.health.halted + f"; run: orchestrator reset {spec.key.name}",
                )
            ]
        gen = pool.active
        assert gen is not None
        running = {i.slot for i in gen.instances.values() if i.term_at is None}
        return [
            Fault(
                key=spec.key,
                instance=f"worker/{spec.key.name}[{slot}]",
                reason="process_exited",
                detail=f"{pool.health.last_exit or 'not running'}; restarting",
            )
            for slot in range(gen.policy.processes)
            if slot not in running
        ]

    def _service_state(self) -> ServiceState | None:
        if self.servicestate is None:
            return None
        now = self.clock.monotonic()
        cached = self._servicestate_cache
        if cached is not None and now - cached[0] < SERVICESTATE_TTL_S:
            return cached[1]
        text = self.servicestate()
        state = parse_servicestate(text) if text.strip() else None
        self._servicestate_cache = (now, state)
        return state

    # -- apply -------------------------------------------------------------------------------------
    def apply(self, step: Step, progress: Progress | None = None) -> None:
        report: Progress = progress or _no_progress
        handlers = {
            Kind.SESSION: self._apply_session,
            Kind.QUEUE: self._apply_queue,
            Kind.URLGROUP: self._apply_group,
            Kind.WORKER: self._apply_pool,
        }
        try:
            handlers[step.key.kind](step, report)
        except BackendError:
            raise
        except HttpApiError as exc:
            raise TemporaryBackendError(
                f"{step.key}: {exc.function} failed with {exc.name} ({exc.code})",
                "http.sys refused the call; the step is retried with backoff.",
                key=str(step.key),
            ) from exc
        except ValueError as exc:
            raise PermanentBackendError(f"{step.key}: {exc}", key=str(step.key)) from exc
        self._servicestate_cache = None

    # sessions
    def _apply_session(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op is Op.DELETE:
            self._close_session(name)
            return
        assert isinstance(step.after, Session)
        spec = step.after
        if spec.backend is Backend.LINUX:
            raise PermanentBackendError(
                f"session/{name} asks for the linux backend; this controller runs httpsys",
                "Set session.backend to httpsys or auto, or run the controller on Linux.",
            )
        record = self.sessions.get(name)
        if step.op is Op.REPLACE and record is not None:
            for attr in ("run_dir", "backend"):
                if getattr(record.spec, attr) != getattr(spec, attr):
                    raise PermanentBackendError(
                        f"session {attr.replace('_', ' ')} changed: restart the controller",
                        "The run directory and the backend are fixed for a controller's lifetime.",
                    )
        previous = record.spec if record is not None else None
        if record is None:
            record = _SessionRecord(spec, ServerSession(self.binding))
            self.sessions[name] = record
            self.emit("session_created", session=name, id=f"{record.handle.id:#x}")
        record.spec = spec
        if self.caps.group_properties:
            record.handle.set_property(session_timeout_limits(spec.timeouts))
        else:
            self._note(report, "session timeouts are not supported here (Wine): not set", once=True)
        if spec.tls:
            self._note(
                report,
                f"session/{name}: TLS certificates are machine configuration on http.sys "
                "(netsh http add sslcert ipport=... certhash=...); the backend does not bind them",
                once=True,
            )
        if previous is not None and previous.limits.max_connections != spec.limits.max_connections:
            for group in self.groups.values():
                if group.alive and group.spec.session.name == name:
                    for handle in group.handles:
                        self._set_group_options(group, handle, report)

    def _close_session(self, name: str) -> None:
        record = self.sessions.pop(name, None)
        if record is None:
            return
        # Closing a session closes its URL groups; Wine crashes on a stale group id later, so the
        # groups are taken down first, explicitly.
        for group in self.groups.values():
            if group.alive and group.spec.session.name == name:
                self._teardown_group(group)
        with contextlib.suppress(HttpApiError):
            record.handle.close()
        self.emit("session_closed", session=name)

    # queues
    def _apply_queue(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op in (Op.DELETE, Op.REPLACE):
            self._retire_queue(name, report, "deleted" if step.op is Op.DELETE else "replaced")
            if step.op is Op.DELETE:
                return
        assert isinstance(step.after, RequestQueue)
        spec = step.after
        record = self.queues.get(name)
        if record is not None and step.op is Op.CREATE:
            # We hold it, yet it was observed missing (closed behind our back): start afresh.
            self._retire_queue(name, report, "re-created")
            record = None
        if record is None:
            self._create_queue(spec, report)
            return
        if not record.created:
            raise PermanentBackendError(
                f"queue/{name} was created by another process: its properties cannot be set",
                "http.sys lets only a queue's creator set its length, state, 503 verbosity and "
                "DACL (87 for anyone else). Rename the queue, or stop the process that created it.",
            )
        if spec.acl != record.spec.acl:
            self._recreate_queue(spec, report)
            return
        record.spec = spec
        self._set_queue_properties(record, report, force=True)

    def _queue_sddl(self, spec: RequestQueue, report: Progress) -> str:
        name = spec.key.name
        if spec.acl is not None:
            try:
                return build_queue_sddl(spec.acl, self.sid_resolver)
            except (InvalidSidError, PrincipalResolutionError) as exc:
                raise PermanentBackendError(
                    f"queue/{name}: cannot build its DACL: {exc}",
                    "Name accounts that exist on this host, or give SIDs (kind sid).",
                ) from exc
        principals: tuple[Principal, ...] = ()
        if self.controller_account and self.caps.queue_acl:
            principals = (Principal(kind=PrincipalKind.ACCOUNT, name=self.controller_account),)
        try:
            return build_queue_sddl(principals, self.sid_resolver)
        except (InvalidSidError, PrincipalResolutionError) as exc:
            self._note(
                report,
                f"queue/{name}: the controller's account could not be resolved ({exc}); the queue "
                "admits SYSTEM and Administrators only",
            )
            return build_queue_sddl(())

    def _create_queue(self, spec: RequestQueue, report: Progress) -> _QueueRecord:
        name = spec.key.name
        sddl = self._queue_sddl(spec, report)
        try:
            handle = open_request_queue(
                self.binding,
                name,
                QueueMode.CREATE_OR_ATTACH,
                security_descriptor=sddl,
                inheritable=not self.caps.named_queues,
            )
        except QueueNameInvalidError as exc:
            raise PermanentBackendError(f"queue/{name}: {exc}") from exc
        except QueueAccessDeniedError as exc:
            raise PermanentBackendError(
                f"queue/{name}: another process created it and its DACL refuses this controller",
                str(exc),
            ) from exc
        except QueueOpenError as exc:
            raise TemporaryBackendError(f"queue/{name}: {exc}") from exc
        except HttpApiError as exc:
            if exc.code in (ErrorCode.ERROR_INVALID_ACL, ErrorCode.ERROR_INVALID_SECURITY_DESCR):
                raise PermanentBackendError(
                    f"queue/{name}: http.sys refused its security descriptor ({exc.name})", sddl
                ) from exc
            raise
        record = _QueueRecord(spec, handle)
        self.queues[name] = record
        if handle.created:
            self.emit("queue_created", queue=name, handle=f"{handle.handle:#x}", sddl=sddl)
            self._set_queue_properties(record, report, force=True)
        else:
            self.emit("queue_attached", queue=name, handle=f"{handle.handle:#x}")
            self._note(
                report,
                f"queue/{name}: a queue with this name already existed, created by another process; "
                "attached to it (drift: its properties are not ours to set)",
            )
        self._rebind_groups(name, report)
        return record

    def _set_queue_properties(self, record: _QueueRecord, report: Progress, *, force: bool) -> None:
        if not self.caps.queue_properties:
            self._note(
                report,
                "queue length, 503 verbosity and state are not supported here (Wine): not set",
                once=True,
            )
            return
        spec = record.spec
        record.handle.set_property(ServerProperty.QUEUE_LENGTH, spec.max_length)
        record.handle.set_property(ServerProperty.VERBOSITY_503, int(_VERBOSITY[spec.verbosity503]))
        self._apply_queue_state(record, force=force)

    def _effective_state(self, record: _QueueRecord) -> tuple[EnabledState, str]:
        name = record.spec.key.name
        if record.spec.state is State.DISABLED:
            return EnabledState.INACTIVE, "disabled"
        serving = [p for p in self.pools.values() if not p.removed and p.spec.queue.name == name]
        if serving and all(p.health.halted for p in serving):
            return EnabledState.INACTIVE, "offline"
        if not serving and record.stopped:
            return EnabledState.INACTIVE, "stopped"
        return EnabledState.ACTIVE, "enabled"

    def _apply_queue_state(self, record: _QueueRecord, *, force: bool = False) -> None:
        """Set the queue's state to what its definition and its pools call for (creator only)."""
        want, why = self._effective_state(record)
        if not record.created or not self.caps.queue_properties:
            if want is EnabledState.INACTIVE and why != "disabled":
                self._note(
                    _no_progress,
                    f"queue/{record.spec.key.name} cannot be set Inactive here ({why}); requests "
                    "wait in the queue instead of getting 503",
                    once=True,
                )
            return
        if force or record.state_set is not want:
            record.handle.set_property(ServerProperty.STATE, int(want))
            record.state_set = want
            self.emit("queue_state", queue=record.spec.key.name, state=why)

    def _refresh_queue_state(self, queue: str) -> None:
        record = self.queues.get(queue)
        if record is None:
            return
        try:
            self._apply_queue_state(record)
        except HttpApiError as exc:
            self.emit("queue_state_failed", queue=queue, error=str(exc))

    def _retire_queue(self, name: str, report: Progress, reason: str) -> None:
        """Stop using a queue: its pools stop, its groups are unbound, the handle is closed."""
        record = self.queues.pop(name, None)
        if record is None:
            return
        # Processes attached by name keep a queue (and its name) alive after we close it, so a new
        # queue under that name would only attach to the old one: stop our processes first.
        self._stop_pools_on(name, report, f"queue/{name} {reason}")
        for group in self.groups.values():
            if group.alive and group.queue_handle == record.handle.handle:
                for handle in group.handles:
                    if handle.bound_to is not None:
                        with contextlib.suppress(HttpApiError):
                            handle.unbind()
                group.queue_handle = None
        with contextlib.suppress(HttpApiError):
            record.handle.close()
        self.emit("queue_closed", queue=name, reason=reason)

    def _recreate_queue(self, spec: RequestQueue, report: Progress) -> None:
        """A new DACL: http.sys takes it only at creation, so the queue is made again."""
        name = spec.key.name
        pools = [p for p in self.pools.values() if not p.removed and p.spec.queue.name == name]
        self._note(
            report,
            f"queue/{name}: the ACL changed and http.sys sets a queue's DACL only at creation: "
            "re-creating the queue and restarting its pools",
        )
        self._retire_queue(name, report, "re-created for its new ACL")
        self._create_queue(spec, report)
        for pool in pools:
            self.pools[pool.name] = pool  # its stopped generations took it out
            gen = self._start_generation(pool, pool.spec)
            self._wait_ready(pool, gen, report)

    def _rebind_groups(self, queue: str, report: Progress) -> None:
        record = self.queues[queue]
        for group in list(self.groups.values()):
            spec = group.spec
            if not group.alive or spec.queue is None or spec.queue.name != queue:
                continue
            if group.queue_handle != record.handle.handle:
                self._rebind(group, record, report)

    # URL groups
    def _apply_group(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op in (Op.DELETE, Op.REPLACE):
            old = self.groups.pop(name, None)
            if old is not None:
                self._teardown_group(old)
            if step.op is Op.DELETE:
                return
        assert isinstance(step.after, UrlGroup)
        spec = step.after
        record = self.groups.get(name)
        if record is not None and record.alive and (step.op is not Op.UPDATE or step.changes):
            self._update_group(record, spec, report)
            return
        # New, or an update that changes no field (a drift repair, or its queue was re-created):
        # build it again from the definition.
        if record is not None:
            self.groups.pop(name)
            self._teardown_group(record)
        self.groups[name] = self._build_group(spec, report)

    def _build_group(self, spec: UrlGroup, report: Progress) -> _GroupRecord:
        session = self._session_for(spec)
        queue = self._queue_for(spec)
        record = _GroupRecord(spec, queue_handle=queue.handle.handle if queue else None)
        try:
            for url in spec.urls:
                self._add_url(record, session, queue, url, report)
        except BaseException:
            self._teardown_group(record)
            raise
        self.emit(
            "urlgroup_created",
            group=spec.key.name,
            groups=len(record.handles),
            queue=spec.queue.name if spec.queue else None,
        )
        return record

    def _new_handle(
        self,
        record: _GroupRecord,
        session: _SessionRecord,
        queue: _QueueRecord | None,
        report: Progress,
    ) -> GroupHandle:
        handle = session.handle.create_url_group()
        record.handles.append(handle)
        self._set_group_options(record, handle, report)
        if queue is not None:
            handle.bind(queue.handle)  # bind before add (ASP.NET's order)
        return handle

    def _add_url(
        self,
        record: _GroupRecord,
        session: _SessionRecord,
        queue: _QueueRecord | None,
        url: str,
        report: Progress,
    ) -> None:
        limit = self.caps.urls_per_group
        handle = next((h for h in record.handles if limit is None or len(h.urls) < limit), None)
        if handle is None:
            handle = self._new_handle(record, session, queue, report)
        try:
            handle.add_url(url, route_id(record.spec.key.name, url))
        except HttpApiError as exc:
            raise _url_error(record.spec.key.name, url, exc) from exc

    def _set_group_options(
        self, record: _GroupRecord, handle: GroupHandle, report: Progress
    ) -> None:
        if not self.caps.group_properties:
            self._note(
                report,
                "URL group timeouts, connection limits and state are not supported here (Wine): "
                "not set",
                once=True,
            )
            return
        spec = record.spec
        session = self.sessions.get(spec.session.name)
        handle.set_property(group_timeout_limits(spec.timeouts))
        limit = spec.max_connections
        if limit is None and session is not None:
            limit = session.spec.limits.max_connections or None
        handle.set_property(ConnectionLimit(limit if limit else _ffi.HTTP_LIMIT_INFINITE))
        handle.set_property(
            EnabledState.INACTIVE if spec.state is State.DISABLED else EnabledState.ACTIVE
        )

    def _update_group(self, record: _GroupRecord, spec: UrlGroup, report: Progress) -> None:
        session = self._session_for(spec)
        queue = self._queue_for(spec)
        old = record.spec
        record.spec = spec
        wanted_handle = queue.handle.handle if queue else None
        if wanted_handle != record.queue_handle and not self._rebind(record, queue, report):
            return  # rebuilt from the definition
        wanted = set(spec.urls)
        for handle in list(record.handles):
            for url in [u for u in handle.urls if u not in wanted]:
                try:
                    handle.remove_url(url)
                except HttpApiError:
                    handle.urls.pop(url, None)
            if self.caps.urls_per_group is not None and not handle.urls:
                self._close_handle(handle)
                record.handles.remove(handle)
        options = ("timeouts", "max_connections", "state")
        if any(getattr(old, o) != getattr(spec, o) for o in options):
            for handle in record.handles:
                self._set_group_options(record, handle, report)
        held = {u for h in record.handles for u in h.urls}
        for url in sorted(wanted - held):
            self._add_url(record, session, queue, url, report)

    def _rebind(self, record: _GroupRecord, queue: _QueueRecord | None, report: Progress) -> bool:
        """Point a group at another queue handle. Returns False when it had to be rebuilt."""
        if self.caps.named_queues:
            # Windows: the binding property moves the group's registrations with it.
            for handle in record.handles:
                if queue is not None:
                    handle.bind(queue.handle)
                elif handle.bound_to is not None:
                    handle.unbind()
            record.queue_handle = queue.handle.handle if queue else None
            return True
        # Wine: a URL stays with the queue it was registered for, so take it down and add it again.
        name = record.spec.key.name
        self._teardown_group(record)
        fresh = self._build_group(record.spec, report)
        self.groups[name] = fresh
        return False

    def _close_handle(self, handle: GroupHandle) -> None:
        for url in list(handle.urls):
            try:
                handle.remove_url(url)
            except HttpApiError:
                handle.urls.pop(url, None)
        if handle.bound_to is not None:
            with contextlib.suppress(HttpApiError):
                handle.unbind()
        with contextlib.suppress(HttpApiError):
            handle.close()

    def _teardown_group(self, record: _GroupRecord) -> None:
        """Remove every URL, unbind, close (errors are expected when the queue went first)."""
        for handle in record.handles:
            self._close_handle(handle)
        record.handles = []
        record.queue_handle = None
        record.alive = False

    # worker pools
    def _apply_pool(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op is Op.DELETE:
            self._delete_pool(name, report)
            return
        assert isinstance(step.after, WorkerPool)
        spec = step.after
        queue = self.queues.get(spec.queue.name)
        if queue is None:
            raise TemporaryBackendError(f"worker/{name}: {spec.queue} does not exist yet")
        self._check_pool(spec, report)
        pool = self.pools.get(name)
        if step.op is Op.UPDATE and pool is not None and not pool.removed and pool.active:
            pool.spec = spec
            pool.health = core.reset(pool.health)
            gen = pool.active
            gen.spec = spec
            gen.policy = policy_of(spec)
            gen.restart_at.clear()
            self._fill(pool, gen, self.clock.monotonic())
            self._wait_ready(pool, gen, report)
            self._refresh_queue_state(spec.queue.name)
            return
        if pool is None:
            pool = _Pool(name, spec)
            self.pools[name] = pool
        pool.removed = False
        pool.spec = spec
        pool.health = core.reset(pool.health)  # a new definition re-arms a stopped pool (IIS)
        pool.recycling = False
        queue.stopped = False
        old = [g for g in pool.generations if not g.stopping]
        gen = self._start_generation(pool, spec)
        try:
            self._wait_ready(pool, gen, report)
        except BackendError as exc:
            self._stop_generation(pool, gen, "did not become ready")
            if old:
                raise PermanentBackendError(
                    f"worker/{name}: the new processes did not become healthy; the old ones keep "
                    "serving",
                    exc.summary + ". Fix the pool's definition, or run: orchestrator reset " + name,
                ) from exc
            raise
        for previous in old:
            self._stop_generation(pool, previous, "replaced by a new definition")
        self._refresh_queue_state(spec.queue.name)

    def _check_pool(self, spec: WorkerPool, report: Progress) -> None:
        name = spec.key.name
        if spec.user != "auto" or spec.group is not None or spec.groups:
            raise PermanentBackendError(
                f"worker/{name}: running a pool under its own account is not implemented by the "
                "httpsys backend",
                "Workers run under the controller's account: set user: auto (and no group), or "
                "use the linux backend.",
            )
        limits = spec.limits
        if any(
            v is not None for v in (limits.memory_bytes, limits.pids, limits.cpu, limits.open_files)
        ):
            self._note(
                report, f"worker/{name}: resource limits are not applied by the httpsys backend"
            )

    def _delete_pool(self, name: str, report: Progress) -> None:
        pool = self.pools.get(name)
        if pool is None:
            return
        pool.removed = True
        for gen in list(pool.generations):
            self._stop_generation(pool, gen, "removed from the manifest")
        if not pool.generations and self.pools.get(name) is pool:
            del self.pools[name]
        limit = pool.spec.shutdown_time_limit_s + 5.0
        self._wait(lambda: name not in self.pools, limit, report, f"worker/{name} stopping")
        queue = self.queues.get(pool.spec.queue.name)
        if queue is not None and not any(
            p.spec.queue.name == pool.spec.queue.name for p in self.pools.values() if not p.removed
        ):
            queue.stopped = True  # IIS: a stopped pool's queue answers 503
            self._refresh_queue_state(queue.spec.key.name)

    def _stop_pools_on(self, queue: str, report: Progress, reason: str) -> None:
        pools = [p for p in self.pools.values() if p.spec.queue.name == queue and p.generations]
        if not pools:
            return
        for pool in pools:
            for gen in list(pool.generations):
                self._stop_generation(pool, gen, reason)
        limit = max(p.spec.shutdown_time_limit_s for p in pools) + 5.0
        self._wait(
            lambda: not any(p.generations for p in pools),
            limit,
            report,
            f"workers of queue/{queue} stopping",
        )

    def _wait_ready(self, pool: _Pool, gen: _Generation, report: Progress) -> None:
        spec = gen.spec
        name = pool.name
        deadline = self.clock.monotonic() + spec.startup_time_limit_s
        last = ""
        while True:
            if pool.health.halted:
                raise TemporaryBackendError(
                    f"worker/{name} was stopped: {pool.health.halted}",
                    "Fix the pool, then change its definition or run: orchestrator reset " + name,
                    delay_s=spec.rapid_fail.interval_s,
                )
            if gen.ready():
                gen.ever_ready = True
                return
            now = self.clock.monotonic()
            if now >= deadline:
                raise TemporaryBackendError(
                    f"worker/{name} did not become healthy within {spec.startup_time_limit_s:g}s",
                    f"Last exit: {pool.health.last_exit or 'none'}.",
                )
            ready = sum(1 for i in gen.instances.values() if i.ready)
            message = (
                f"worker/{name}: {ready}/{gen.policy.processes} processes ready, "
                f"waiting up to {deadline - now:.0f}s"
            )
            if message != last:
                report(
                    "health_wait",
                    {
                        "message": message,
                        "pool": name,
                        "ready": ready,
                        "wanted": gen.policy.processes,
                    },
                )
                last = message
            self.poll(0.05)

    def _wait(self, done: Callable[[], bool], limit_s: float, report: Progress, what: str) -> None:
        deadline = self.clock.monotonic() + limit_s
        while not done():
            if self.clock.monotonic() >= deadline:
                raise TemporaryBackendError(f"{what}: not done within {limit_s:g}s")
            self.poll(0.05)

    # -- processes ---------------------------------------------------------------------------------
    def _start_generation(self, pool: _Pool, spec: WorkerPool) -> _Generation:
        now = self.clock.monotonic()
        gen = _Generation(next(self._numbers), spec, policy_of(spec), now)
        pool.generations.append(gen)
        self.emit(
            "generation_start", pool=pool.name, generation=gen.number, processes=spec.processes
        )
        self._fill(pool, gen, now)
        return gen

    def _stop_generation(self, pool: _Pool, gen: _Generation, reason: str) -> None:
        if gen.stopping:
            return
        gen.stopping = True
        gen.stop_reason = reason
        now = self.clock.monotonic()
        self.emit("generation_stop", pool=pool.name, generation=gen.number, reason=reason)
        for inst in gen.instances.values():
            self._terminate(inst, now)
        if not gen.instances:
            self._finish(pool, gen)

    def _finish(self, pool: _Pool, gen: _Generation) -> None:
        if gen in pool.generations:
            pool.generations.remove(gen)
        self.emit("generation_stopped", pool=pool.name, generation=gen.number)
        if not pool.generations and self.pools.get(pool.name) is pool:
            # Nothing runs: the next plan creates it again if it is still wanted. Its queue has
            # lost a pool (stopped, as IIS calls it) unless another pool serves it.
            del self.pools[pool.name]
            queue = self.queues.get(pool.spec.queue.name)
            if queue is not None and not any(
                p.spec.queue == pool.spec.queue for p in self.pools.values() if not p.removed
            ):
                queue.stopped = True
                self._refresh_queue_state(pool.spec.queue.name)

    def _environment(self, spec: WorkerPool, queue: _QueueRecord) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(ENV_QUEUE_HANDLE, None)
        env.update({e.name: e.value for e in spec.env})
        env[ENV_QUEUE] = queue.spec.key.name
        if not self.caps.named_queues:
            # Names are ignored here (Wine): the worker uses the handle it inherits.
            env[ENV_QUEUE_HANDLE] = str(queue.handle.handle)
        return env

    def _fill(self, pool: _Pool, gen: _Generation, now: float) -> None:
        if gen.stopping:
            return
        children = [i.as_child() for i in gen.instances.values()]
        for cmd in core.reconcile_slots(
            children, gen.policy, gen.restart_at, now, halted=bool(pool.health.halted)
        ):
            if isinstance(cmd, core.Spawn):
                self._spawn(pool, gen, cmd.slot, now)
            elif isinstance(cmd, core.Terminate):
                self._terminate(gen.instances[cmd.pid], now)

    def _spawn(self, pool: _Pool, gen: _Generation, slot: int, now: float) -> None:
        spec = gen.spec
        gen.restart_at.pop(slot, None)
        queue = self.queues.get(spec.queue.name)
        if queue is None:
            gen.restart_at[slot] = now + 1.0  # its queue is being re-created
            return
        launch = LaunchSpec(
            argv=spec.command,
            env=self._environment(spec, queue),
            cwd=spec.cwd,
            inherit_handle=None if self.caps.named_queues else queue.handle.handle,
        )
        try:
            process = self.launcher(launch)
        except OSError as exc:
            self.emit("spawn_failed", pool=pool.name, slot=slot, error=str(exc))
            # A command that cannot start is a crash like any other: backoff, then rapid-fail.
            info = core.ExitInfo(slot=slot, at=now, started_at=now, code=127)
            self._decide(pool, gen, info)
            return
        inst = _Instance(slot, process, now, queue.handle.handle)
        gen.instances[process.pid] = inst
        self.emit(
            "process_start", pool=pool.name, generation=gen.number, slot=slot, pid=process.pid
        )

    def _terminate(self, inst: _Instance, now: float) -> None:
        if inst.term_at is not None:
            return
        inst.term_at = now
        inst.process.terminate()

    def _exited(self, pool: _Pool, gen: _Generation, inst: _Instance, code: int) -> None:
        pid = inst.process.pid
        gen.instances.pop(pid, None)
        inst.process.release()
        now = self.clock.monotonic()
        expected = inst.term_at is not None or gen.stopping
        info = core.ExitInfo(
            slot=inst.slot,
            at=now,
            started_at=inst.started_at,
            code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            expected=expected,
        )
        self.emit(
            "process_exit",
            pool=pool.name,
            generation=gen.number,
            slot=inst.slot,
            pid=pid,
            exit=info.describe(),
            expected=expected,
        )
        if gen.stopping:
            if not gen.instances:
                self._finish(pool, gen)
            return
        self._decide(pool, gen, info)

    def _decide(self, pool: _Pool, gen: _Generation, info: core.ExitInfo) -> None:
        decision = core.on_exit(pool.health, info, gen.policy)
        pool.health = decision.health
        if decision.halt is not None:
            self.emit("pool_halted", pool=pool.name, reason=decision.halt.reason)
            now = self.clock.monotonic()
            for other in pool.generations:
                for inst in other.instances.values():
                    self._terminate(inst, now)
            self._refresh_queue_state(pool.spec.queue.name)
            return
        if decision.restart_at is not None and info.slot < gen.policy.processes:
            gen.restart_at[info.slot] = decision.restart_at

    def _tick(self) -> None:
        now = self.clock.monotonic()
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                for inst in list(gen.instances.values()):
                    code = inst.process.poll()
                    if code is not None:
                        self._exited(pool, gen, inst, code)
                    elif (
                        not inst.ready
                        and inst.term_at is None
                        and now - inst.started_at >= self.ready_grace_s
                    ):
                        inst.ready = True
                        self.emit("process_ready", pool=pool.name, pid=inst.process.pid)
                if not gen.stopping and not gen.ever_ready and gen.ready():
                    gen.ever_ready = True
                for cmd in core.escalate(
                    [i.as_child() for i in gen.instances.values() if not i.killed],
                    gen.policy.shutdown_time_limit_s,
                    now,
                ):
                    inst = gen.instances[cmd.pid]
                    inst.killed = True
                    self.emit(
                        "process_kill",
                        pool=pool.name,
                        pid=cmd.pid,
                        reason=f"still running {gen.policy.shutdown_time_limit_s:g}s after stop",
                    )
                    inst.process.kill()
                self._fill(pool, gen, now)

    def _next_deadline(self) -> float:
        now = self.clock.monotonic()
        times = [now + 3600.0]
        for pool in self.pools.values():
            serving = pool.serving
            if (
                pool.spec.health.path
                and not (pool.removed or pool.health.halted or pool.probe_pending)
                and serving is not None
                and serving.ever_ready
            ):
                times.append(pool.next_probe_at)
            for gen in pool.generations:
                times.extend(gen.restart_at.values())
                for inst in gen.instances.values():
                    if not inst.ready:
                        times.append(inst.started_at + self.ready_grace_s)
                    if inst.term_at is not None and not inst.killed:
                        times.append(inst.term_at + gen.policy.shutdown_time_limit_s)
        return min(times)

    # -- the event pump --------------------------------------------------------------------------
    def poll(self, timeout_s: float, wake_fds: Iterable[int] = ()) -> set[int]:
        """Wait up to ``timeout_s`` for anything to do, do it, and return the ready ``wake_fds``.

        Services process exits (pidfds on Linux, polling elsewhere), restarts what is due, escalates
        stops, collects and schedules health probes, starts periodic recycles and keeps each queue's
        state in line with its pools (rapid-fail sets it Inactive).
        """
        wake = list(wake_fds)
        now = self.clock.monotonic()
        wait = max(0.0, min(timeout_s, self._next_deadline() - now))
        exit_fds: list[int] = []
        polled = False
        for pool in self.pools.values():
            for gen in pool.generations:
                for inst in gen.instances.values():
                    fd = inst.process.exit_fd()
                    if fd is None:
                        polled = True
                    else:
                        exit_fds.append(fd)
        if polled:
            wait = min(wait, EXIT_POLL_S)
        if any(p.probe_pending for p in self.pools.values()):
            wait = min(wait, PROBE_POLL_S)
        woken: set[int] = set()
        fds = [*wake, *exit_fds]
        if fds:
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except (OSError, ValueError):
                ready = []
                self.sleep(wait)
            wanted = set(wake)
            woken = {fd for fd in ready if fd in wanted}
        elif wait > 0:
            self.sleep(wait)
        self._tick()
        self._drain_probes()
        self._schedule_probes()
        self._recycles()
        return woken

    # -- health probes -----------------------------------------------------------------------------
    def _probe_target(self, spec: WorkerPool) -> ProbeTarget | None:
        path = spec.health.path
        if path is None:
            return None
        wanted = path.split("?", 1)[0].casefold()
        for group in sorted(self.groups.values(), key=lambda g: g.spec.key.name):
            if not group.alive or group.spec.queue != spec.queue:
                continue
            for url in group.spec.urls:
                try:
                    prefix = parse_prefix(url)
                except UrlPrefixError:
                    continue
                if not (wanted.startswith(prefix.path) or wanted + "/" == prefix.path):
                    continue
                if prefix.host_kind in (HostKind.STRONG, HostKind.WEAK):
                    connect, host = "127.0.0.1", "localhost"
                elif prefix.host_kind is HostKind.IP:
                    connect, host = prefix.host.strip("[]"), prefix.host
                else:
                    connect, host = "127.0.0.1", prefix.host
                return ProbeTarget(
                    scheme=prefix.scheme,
                    connect_host=connect,
                    port=prefix.port,
                    host_header=f"{host}:{prefix.port}",  # always with the port (Wine needs it)
                    path=path,
                    timeout_s=spec.health.timeout_s,
                )
        return None

    def _schedule_probes(self) -> None:
        now = self.clock.monotonic()
        for name, pool in self.pools.items():
            spec = pool.spec
            if spec.health.path is None or pool.removed or pool.health.halted or pool.probe_pending:
                continue
            gen = pool.serving
            if gen is None or not gen.ever_ready or now < pool.next_probe_at:
                continue
            pool.next_probe_at = now + spec.health.interval_s
            target = self._probe_target(spec)
            if target is None:
                self._note(
                    _no_progress,
                    f"worker/{name}: no URL of its queue routes {spec.health.path}; "
                    "health is process liveness only",
                    once=True,
                )
                continue
            pool.probe_pending = True
            self.run_probe(self._probe_job(name, target))

    def _probe_job(self, name: str, target: ProbeTarget) -> Callable[[], None]:
        def job() -> None:
            try:
                ok, detail = self.probe(target)
            except Exception as exc:  # a probe must never take the controller down
                ok, detail = False, f"probe error: {exc!r}"
            self._probe_results.put((name, ok, detail))

        return job

    def _drain_probes(self) -> None:
        while True:
            try:
                name, ok, detail = self._probe_results.get_nowait()
            except queue_module.Empty:
                return
            pool = self.pools.get(name)
            if pool is None:
                continue
            pool.probe_pending = False
            gen = pool.active
            if gen is None or pool.removed:
                continue
            pool.probe, replace = core.probe_verdict(
                pool.probe, ok, detail, self.clock.monotonic(), gen.policy
            )
            if not ok:
                self.emit("probe_failed", pool=name, detail=detail, failures=pool.probe.failures)
            if replace and not pool.recycling:
                self.emit("pool_unhealthy", pool=name, detail=detail)
                self._start_recycle(pool, f"unhealthy: {detail}")

    # -- recycling ------------------------------------------------------------------------------
    def _start_recycle(self, pool: _Pool, reason: str) -> None:
        pool.recycling = True
        self.emit("recycle_start", pool=pool.name, reason=reason)
        self._start_generation(pool, pool.spec)

    def _recycles(self) -> None:
        now = self.clock.monotonic()
        wall = time.localtime(self.clock.wall())
        minute = wall.tm_hour * 60 + wall.tm_min
        for pool in list(self.pools.values()):
            if pool.removed:
                continue
            active = pool.active
            if pool.recycling and active is not None:
                older = [g for g in pool.generations if g is not active and not g.stopping]
                if active.ready():
                    active.ever_ready = True
                    for gen in older:
                        self._stop_generation(pool, gen, "recycled")
                    pool.recycling = False
                    self.emit("recycle_done", pool=pool.name, generation=active.number)
                elif now - active.started_at > pool.spec.startup_time_limit_s or pool.health.halted:
                    self._stop_generation(pool, active, "recycle did not become ready")
                    pool.recycling = False
                    self.emit("recycle_failed", pool=pool.name)
                continue
            serving = pool.serving
            if serving is None or pool.health.halted:
                continue
            before = pool.last_minute if pool.last_minute is not None else minute
            pool.last_minute = minute
            reason = core.recycle_reason(
                serving.started_at,
                now,
                [i.as_child() for i in serving.instances.values()],
                serving.policy,
                wall_minutes_before=before,
                wall_minutes_now=minute,
            )
            if reason:
                self._start_recycle(pool, reason)

    # -- operator actions ------------------------------------------------------------------------
    def reset(self, pool: str) -> bool:
        """Re-arm a pool stopped by rapid-fail protection; returns whether it was stopped."""
        record = self.pools.get(pool)
        if record is None:
            return False
        was = bool(record.health.halted)
        record.health = core.reset(record.health)
        gen = record.active
        if gen is not None:
            gen.restart_at.clear()
            self._fill(record, gen, self.clock.monotonic())
        if was:
            self.emit("pool_reset", pool=pool)
            self._refresh_queue_state(record.spec.queue.name)
        return was

    def status(self) -> dict[str, object]:
        """What ``orchestrator status`` shows about this backend (the Linux backend's keys)."""
        now = self.clock.monotonic()
        user = self.controller_account or os.environ.get("USERNAME") or os.environ.get("USER")
        workers = []
        for name, pool in sorted(self.pools.items()):
            for gen in pool.generations:
                for inst in sorted(gen.instances.values(), key=lambda i: i.slot):
                    workers.append(
                        {
                            "pool": name,
                            "generation": gen.number,
                            "slot": inst.slot,
                            "pid": inst.process.pid,
                            "uid": None,
                            "user": user,
                            "state": "stopping"
                            if inst.term_at is not None or gen.stopping
                            else ("ready" if inst.ready else "starting"),
                            "uptime_s": round(now - inst.started_at, 1),
                            "restarts": pool.health.restarts,
                            "health": pool.probe.last or ("ok" if inst.ready else ""),
                            "last_exit": pool.health.last_exit,
                        }
                    )
        pools = {
            name: {
                "halted": pool.health.halted,
                "halted_since": (self.clock.wall() - (now - pool.health.halted_at))
                if pool.health.halted
                else None,
                "restarts": pool.health.restarts,
                "last_exit": pool.health.last_exit,
                "probe": {"failures": pool.probe.failures, "last": pool.probe.last},
                "generations": [g.number for g in pool.generations],
                "queue": pool.spec.queue.name,
            }
            for name, pool in sorted(self.pools.items())
        }
        addresses = sorted(
            {url for g in self.groups.values() if g.alive for h in g.handles for url in h.urls}
        )
        listener = {
            "kind": "http.sys",
            "pid": None,
            "pids": [],
            "uid": None,
            "user": "http.sys (kernel)",
            "addresses": addresses,
            "restarts": 0,
            "stats": [],
            "sessions": {
                name: f"{record.handle.id:#x}" for name, record in sorted(self.sessions.items())
            },
        }
        state = self._service_state()
        queues = []
        for name, record in sorted(self.queues.items()):
            _, why = self._effective_state(record)
            listed = state.queue(name) if state is not None else None
            queues.append(
                {
                    "name": name,
                    "state": why,
                    "path": f"http.sys:{name}",
                    "backlog": record.spec.max_length,
                    "clamped_from": None,
                    "created": record.created,
                    "handle": f"{record.handle.handle:#x}",
                    "state_set": None
                    if record.state_set is None
                    else record.state_set.name.lower(),
                    "attached_pids": list(listed.pids) if listed is not None else None,
                }
            )
        return {
            "workers": workers,
            "pools": pools,
            "listener": listener,
            "queues": queues,
            "cgroups": False,
            "root": None,
            "wine": self.caps.wine_version,
            "notes": list(self.capabilities().notes),
        }

    def shutdown(self, report: Progress | None = None) -> None:
        """Graceful stop: pools stop (CTRL_BREAK/SIGTERM, ``shutdownTimeLimit``, kill), then the
        URLs, queues, groups and sessions are released."""
        progress: Progress = report or _no_progress
        grace = max((p.spec.shutdown_time_limit_s for p in self.pools.values()), default=5.0)
        for pool in list(self.pools.values()):
            pool.removed = True
            for gen in list(pool.generations):
                self._stop_generation(pool, gen, "controller stopping")
        with contextlib.suppress(TemporaryBackendError):
            self._wait(lambda: not self.pools, grace + 2.0, progress, "pools stopping")
        self.close()

    def close(self) -> None:
        """Kill every process, then (ASP.NET's order) remove URLs and unbind, close the queues, the
        URL groups and the sessions, and ``HttpTerminate``."""
        if self._closed:
            return
        self._closed = True
        instances = [
            i for p in self.pools.values() for g in p.generations for i in g.instances.values()
        ]
        for inst in instances:
            inst.process.kill()
        deadline = time.monotonic() + 5.0
        for inst in instances:
            while inst.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            inst.process.release()
        self.pools.clear()
        for group in self.groups.values():
            for handle in group.handles:
                for url in list(handle.urls):
                    try:
                        handle.remove_url(url)
                    except HttpApiError:
                        handle.urls.pop(url, None)
                if handle.bound_to is not None:
                    with contextlib.suppress(HttpApiError):
                        handle.unbind()
        for record in self.queues.values():
            with contextlib.suppress(HttpApiError):
                record.handle.close()
        self.queues.clear()
        for group in self.groups.values():
            for handle in group.handles:
                with contextlib.suppress(HttpApiError):
                    handle.close()
            group.handles = []
            group.alive = False
        self.groups.clear()
        for session in self.sessions.values():
            with contextlib.suppress(HttpApiError):
                session.handle.close()
        self.sessions.clear()
        with contextlib.suppress(HttpApiError):
            self.api.close()


def _url_error(group: str, url: str, exc: HttpApiError) -> BackendError:
    """What a refused ``HttpAddUrlToUrlGroup`` means for the operator."""
    code = exc.code
    where = f"urlgroup/{group}: {url}"
    if code == ErrorCode.ERROR_ALREADY_EXISTS:
        return TemporaryBackendError(
            f"{where} is already registered by another application",
            "See netsh http show servicestate; free the prefix or change it.",
            delay_s=30.0,
        )
    if code == ErrorCode.ERROR_ACCESS_DENIED:
        return TemporaryBackendError(
            f"{where}: access denied (no URL reservation for the controller's account)",
            f"Run as an administrator, or reserve it: netsh http add urlacl url={url} user=ACCOUNT",
            delay_s=60.0,
        )
    if code == ErrorCode.ERROR_SHARING_VIOLATION:
        return TemporaryBackendError(
            f"{where}: the port is held by a program that does not use http.sys", delay_s=30.0
        )
    if code == ErrorCode.ERROR_INVALID_PARAMETER:
        return PermanentBackendError(f"{where}: http.sys refused the URL prefix (87)")
    if code in (1, ErrorCode.ERROR_CALL_NOT_IMPLEMENTED):
        return PermanentBackendError(
            f"{where}: not supported by this http.sys ({exc.name})",
            "Wine's http.sys has no https and takes one URL per URL group.",
        )
    return TemporaryBackendError(f"{where}: {exc.function} failed with {exc.name} ({exc.code})")
