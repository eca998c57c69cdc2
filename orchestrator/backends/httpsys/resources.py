"""Server sessions, request queues and URL groups in http.sys: the part of the backend that applies them.

Owns: ``HttpSysResources``, which holds this process's use of the HTTP Server API: its initialisation
(``HttpInitialize`` ... ``HttpTerminate``), the records of what the controller holds in http.sys
(``SessionRecord``, ``QueueRecord``, ``GroupRecord``), the session, queue and URL-group steps (create,
update, rebind, tear down), their observation, their part of ``status``, and the URL a pool's health
probe goes through. ``HttpSysBackend`` owns one and dispatches those steps to it; the worker pools
stay the backend's, and the few questions a queue asks of them (are they all halted? stop them; start
them again) go through callables the backend passes in.

How steps map to http.sys (notes/httpsys-backend.md sections 1, 2 and 4; DESIGN.md section 7):

- session: one server session per manifest session, with its timeouts. The session's
  ``limits.maxConnections`` becomes the QoS connection limit of every URL group that sets none
  (http.sys limits connections per URL group, as ASP.NET Core does).
- queue: a named request queue opened Create-or-Attach with a DACL built from the ACL (``sddl``); the
  creator sets queue length, 503 verbosity and state. A name another process already created is
  attached and reported as a ``queue_attached`` fault (drift), never retried in a loop; its properties
  are not ours to set. The DACL is fixed at creation, so an ACL change re-creates the queue (and
  restarts its pools). Rapid-fail and pool stop set the queue Inactive, so http.sys answers 503 per
  its verbosity.
- URL group: one http.sys URL group per manifest group (one per URL under Wine), with timeouts,
  connection limit and state, bound to its queue before any URL is added (ASP.NET Core's order);
  every URL carries a route id as its UrlContext (``routes``). Teardown is ASP.NET's too: remove the
  URLs, unbind, then close queues, URL groups and sessions.

Under Wine (``HttpSysCapabilities.is_wine``) the functions that abort the process are never called and
unsupported properties are skipped with a note. Must not import ``ctypes`` (``httpapi._ffi`` does),
the backend module, another backend, ``reconcile``, ``controller`` or ``cli``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.backends.base import Progress
from orchestrator.backends.httpsys.launcher import ProbeTarget
from orchestrator.backends.httpsys.routes import (
    group_timeout_limits,
    route_id,
    session_timeout_limits,
    url_error,
)
from orchestrator.backends.httpsys.sddl import (
    InvalidSidError,
    PrincipalResolutionError,
    SidResolver,
    build_queue_sddl,
)
from orchestrator.backends.httpsys.servicestate import ServiceState
from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.httpapi import _ffi
from orchestrator.httpapi._ffi import EnabledState, ErrorCode, HttpApiError, ServerProperty
from orchestrator.httpapi.binding import ConnectionLimit, HttpSysBinding
from orchestrator.httpapi.capabilities import (
    HttpSysCapabilities,
    capabilities_for,
    detect_capabilities,
)
from orchestrator.httpapi.handles import ApiInit, ServerSession
from orchestrator.httpapi.handles import RequestQueue as QueueHandle
from orchestrator.httpapi.handles import UrlGroup as GroupHandle
from orchestrator.httpapi.queue_open import (
    QueueAccessDeniedError,
    QueueMode,
    QueueNameInvalidError,
    QueueOpenError,
    open_request_queue,
)
from orchestrator.model.desired import (
    Backend,
    Principal,
    PrincipalKind,
    RequestQueue,
    Resource,
    Session,
    State,
    UrlGroup,
    Verbosity503,
    WorkerPool,
)
from orchestrator.model.ids import Key
from orchestrator.model.live import Fault, QueueServing, Repair
from orchestrator.model.urlprefix import HostKind, UrlPrefixError, parse_prefix
from orchestrator.plan.steps import Op, Step

__all__ = [
    "GroupRecord",
    "HttpSysResources",
    "QueueRecord",
    "SessionRecord",
]

#: For each pool serving the named queue (and not being removed): whether rapid-fail stopped it.
PoolHalts = Callable[[str], list[bool]]
#: Stop every pool serving the named queue and wait for them: ``(queue, report, reason)``.
StopPools = Callable[[str, Progress, str], None]
#: Remember the pools serving the named queue; the returned function starts them again.
KeepPools = Callable[[str], Callable[[Progress], None]]


def _no_progress(event: str, fields: dict[str, object]) -> None:
    return None


# --- property values from the model --------------------------------------------------------------
_VERBOSITY = {
    Verbosity503.BASIC: _ffi.Verbosity503.BASIC,
    Verbosity503.LIMITED: _ffi.Verbosity503.LIMITED,
    Verbosity503.FULL: _ffi.Verbosity503.FULL,
}
_VERBOSITY_BACK = {v: k for k, v in _VERBOSITY.items()}


# --- records of what this controller holds -------------------------------------------------------
@dataclass(slots=True)
class SessionRecord:
    """A server session this controller created, with the definition it was last applied from."""

    spec: Session
    handle: ServerSession


@dataclass(slots=True)
class QueueRecord:
    """A request queue this controller created or attached to."""

    spec: RequestQueue
    handle: QueueHandle
    #: The state this controller last set (``None``: never set, e.g. under Wine or when attached).
    state_set: EnabledState | None = None
    #: Its last pool was stopped (removed): IIS answers 503 for a stopped pool.
    stopped: bool = False

    @property
    def created(self) -> bool:
        """Whether this controller created it (only the creator may set its properties)."""
        return self.handle.created


@dataclass(slots=True)
class GroupRecord:
    """A manifest URL group: its http.sys URL groups (one per URL under Wine) and their binding."""

    spec: UrlGroup
    handles: list[GroupHandle] = field(default_factory=list)
    #: The queue handle the http.sys groups are bound to (``None``: unbound).
    queue_handle: int | None = None
    alive: bool = True


# --- the sessions, queues and URL groups of one backend ---------------------------------------------
class HttpSysResources:
    """What one backend holds in http.sys (server sessions, request queues, URL groups), and the
    steps that change it.

    Initialises the HTTP Server API at construction and terminates it at ``close``. ``HttpSysBackend``
    owns one and dispatches session, queue and URL-group steps to ``apply_session``, ``apply_queue``
    and ``apply_group``; it reads ``queues`` (by manifest name) to start workers on them, and
    ``observe``, ``status`` and ``probe_target`` for its own answers. Errors leave as
    ``BackendError``, ``HttpApiError`` or ``ValueError``; the backend turns the last two into
    temporary and permanent failures.
    """

    def __init__(
        self,
        *,
        binding: HttpSysBinding | None,
        capabilities: HttpSysCapabilities | None,
        sid_resolver: SidResolver | None,
        controller_account: str | None,
        emit: Callable[..., None],
        pool_halts: PoolHalts,
        stop_pools: StopPools,
        keep_pools: KeepPools,
    ) -> None:
        """Initialise the HTTP Server API of this process (``HttpInitialize``); hold nothing yet.

        Args:
            binding: the HTTP Server API; ``RealBinding`` on Windows, a ``RecordingBinding`` in tests.
            capabilities: what this host supports; detected on Windows, full Windows elsewhere.
            sid_resolver: turns ACL principals into SIDs (``LookupAccountNameW`` on Windows).
            controller_account: the account the controller (and so every worker) runs as; it is
                granted the queue when a queue names no ACL (``USERDOMAIN\\USERNAME`` on Windows).
            emit: structured event sink, ``emit(event, **fields)``.
            pool_halts: the backend's pools on a queue, halted or not (the queue's state follows).
            stop_pools: stops the backend's pools on a queue (before the queue is closed).
            keep_pools: remembers the pools on a queue, to start them again once it is re-created.

        Raises:
            PermanentBackendError: not on Windows and no binding given, or ``HttpInitialize`` failed.
        """
        self.emit = emit
        if binding is None:
            if sys.platform != "win32":
                raise PermanentBackendError(
                    'backend "httpsys" needs Windows (httpapi.dll)',
                    "Use backend: linux on this host; tests give HttpSysBackend a RecordingBinding.",
                )
            from orchestrator.httpapi.binding import RealBinding

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
        try:
            self.api = ApiInit(self.binding)
        except HttpApiError as exc:
            raise PermanentBackendError(
                f"HttpInitialize failed: {exc.name} ({exc.code})",
                "The HTTP Server API 2.0 is not usable in this process.",
            ) from exc
        self._pool_halts = pool_halts
        self._stop_pools = stop_pools
        self._keep_pools = keep_pools
        self.sessions: dict[str, SessionRecord] = {}
        self.queues: dict[str, QueueRecord] = {}
        self.groups: dict[str, GroupRecord] = {}
        self._noted: set[str] = set()

    # -- notes and helpers -------------------------------------------------------------------------
    def note(self, report: Progress, message: str, *, once: bool = False) -> None:
        """Tell the operator something (a progress note and an event); ``once``: once per backend."""
        if once and message in self._noted:
            return
        self._noted.add(message)
        report("note", {"message": message})
        self.emit("note", message=message)

    def _session_for(self, spec: UrlGroup) -> SessionRecord:
        record = self.sessions.get(spec.session.name)
        if record is None:
            raise TemporaryBackendError(
                f"urlgroup/{spec.key.name}: {spec.session} does not exist yet"
            )
        return record

    def _queue_for(self, spec: UrlGroup) -> QueueRecord | None:
        if spec.queue is None:
            return None
        record = self.queues.get(spec.queue.name)
        if record is None:
            raise TemporaryBackendError(
                f"urlgroup/{spec.key.name}: {spec.queue} does not exist yet"
            )
        return record

    # -- observe -----------------------------------------------------------------------------------
    def observe(self, state: ServiceState | None) -> tuple[dict[Key, Resource], list[Fault]]:
        """The sessions, queues and URL groups held, as the model sees them, and their faults.

        Args:
            state: ``netsh http show servicestate`` as parsed (``None`` where it is not available):
                a queue or URL it does not list is a fault to repair.
        """
        resources: dict[Key, Resource] = {}
        faults: list[Fault] = []
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
        return resources, faults

    def _observe_queue(
        self, name: str, record: QueueRecord, faults: list[Fault]
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

    # -- sessions ----------------------------------------------------------------------------------
    def apply_session(self, step: Step, report: Progress) -> None:
        """Create, update or close a server session (closing takes its URL groups down first)."""
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
            for attr in ("run_dir", "state_dir", "backend"):
                if getattr(record.spec, attr) != getattr(spec, attr):
                    raise PermanentBackendError(
                        f"session {attr.replace('_', ' ')} changed: restart the controller",
                        "The run and state directories and the backend are fixed for a controller's "
                        "lifetime.",
                    )
        previous = record.spec if record is not None else None
        if record is None:
            record = SessionRecord(spec, ServerSession(self.binding))
            self.sessions[name] = record
            self.emit("session_created", session=name, id=f"{record.handle.id:#x}")
        record.spec = spec
        if self.caps.group_properties:
            record.handle.set_property(session_timeout_limits(spec.timeouts))
        else:
            self.note(report, "session timeouts are not supported here (Wine): not set", once=True)
        if spec.tls:
            self.note(
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

    # -- queues ------------------------------------------------------------------------------------
    def apply_queue(self, step: Step, report: Progress) -> None:
        """Create (or attach to), update, re-create or close a request queue; its groups follow."""
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
            self.note(
                report,
                f"queue/{name}: the controller's account could not be resolved ({exc}); the queue "
                "admits SYSTEM and Administrators only",
            )
            return build_queue_sddl(())

    def _create_queue(self, spec: RequestQueue, report: Progress) -> QueueRecord:
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
        record = QueueRecord(spec, handle)
        self.queues[name] = record
        if handle.created:
            self.emit("queue_created", queue=name, handle=f"{handle.handle:#x}", sddl=sddl)
            self._set_queue_properties(record, report, force=True)
        else:
            self.emit("queue_attached", queue=name, handle=f"{handle.handle:#x}")
            self.note(
                report,
                f"queue/{name}: a queue with this name already existed, created by another process; "
                "attached to it (drift: its properties are not ours to set)",
            )
        self._rebind_groups(name, report)
        return record

    def _set_queue_properties(self, record: QueueRecord, report: Progress, *, force: bool) -> None:
        if not self.caps.queue_properties:
            self.note(
                report,
                "queue length, 503 verbosity and state are not supported here (Wine): not set",
                once=True,
            )
            return
        spec = record.spec
        record.handle.set_property(ServerProperty.QUEUE_LENGTH, spec.max_length)
        record.handle.set_property(ServerProperty.VERBOSITY_503, int(_VERBOSITY[spec.verbosity503]))
        self._apply_queue_state(record, force=force)

    def effective_state(self, record: QueueRecord) -> tuple[EnabledState, QueueServing]:
        """The state a queue should be in, and why: disabled by its definition, offline (every
        pool on it halted), stopped (its last pool removed) or enabled."""
        name = record.spec.key.name
        if record.spec.state is State.DISABLED:
            return EnabledState.INACTIVE, QueueServing.DISABLED
        halts = self._pool_halts(name)
        if halts and all(halts):
            return EnabledState.INACTIVE, QueueServing.OFFLINE
        if not halts and record.stopped:
            return EnabledState.INACTIVE, QueueServing.STOPPED
        return EnabledState.ACTIVE, QueueServing.ENABLED

    def _apply_queue_state(self, record: QueueRecord, *, force: bool = False) -> None:
        """Set the queue's state to what its definition and its pools call for (creator only)."""
        want, why = self.effective_state(record)
        if not record.created or not self.caps.queue_properties:
            if want is EnabledState.INACTIVE and why is not QueueServing.DISABLED:
                self.note(
                    _no_progress,
                    f"queue/{record.spec.key.name} cannot be set Inactive here ({why}); requests "
                    "wait in the queue instead of getting 503",
                    once=True,
                )
            return
        if force or record.state_set is not want:
            record.handle.set_property(ServerProperty.STATE, int(want))
            record.state_set = want
            self.emit("queue_state", queue=record.spec.key.name, state=str(why))

    def refresh_queue_state(self, queue: str) -> None:
        """Put a queue's state in line with its pools (after a halt, a reset or a pool stop)."""
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
        self._stop_pools(name, report, f"queue/{name} {reason}")
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
        restart_pools = self._keep_pools(name)
        self.note(
            report,
            f"queue/{name}: the ACL changed and http.sys sets a queue's DACL only at creation: "
            "re-creating the queue and restarting its pools",
        )
        self._retire_queue(name, report, "re-created for its new ACL")
        self._create_queue(spec, report)
        restart_pools(report)

    def _rebind_groups(self, queue: str, report: Progress) -> None:
        record = self.queues[queue]
        for group in list(self.groups.values()):
            spec = group.spec
            if not group.alive or spec.queue is None or spec.queue.name != queue:
                continue
            if group.queue_handle != record.handle.handle:
                self._rebind(group, record, report)

    # -- URL groups --------------------------------------------------------------------------------
    def apply_group(self, step: Step, report: Progress) -> None:
        """Build, update (URLs, options, queue) or tear down a URL group: bind before add."""
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

    def _build_group(self, spec: UrlGroup, report: Progress) -> GroupRecord:
        session = self._session_for(spec)
        queue = self._queue_for(spec)
        record = GroupRecord(spec, queue_handle=queue.handle.handle if queue else None)
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
        record: GroupRecord,
        session: SessionRecord,
        queue: QueueRecord | None,
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
        record: GroupRecord,
        session: SessionRecord,
        queue: QueueRecord | None,
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
            raise url_error(record.spec.key.name, url, exc) from exc

    def _set_group_options(
        self, record: GroupRecord, handle: GroupHandle, report: Progress
    ) -> None:
        if not self.caps.group_properties:
            self.note(
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

    def _update_group(self, record: GroupRecord, spec: UrlGroup, report: Progress) -> None:
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

    def _rebind(self, record: GroupRecord, queue: QueueRecord | None, report: Progress) -> bool:
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

    @staticmethod
    def _release(handle: GroupHandle) -> None:
        """Remove the group's URLs and unbind it from its queue (errors swallowed: the queue may
        have gone first)."""
        for url in list(handle.urls):
            try:
                handle.remove_url(url)
            except HttpApiError:
                handle.urls.pop(url, None)
        if handle.bound_to is not None:
            with contextlib.suppress(HttpApiError):
                handle.unbind()

    def _close_handle(self, handle: GroupHandle) -> None:
        self._release(handle)
        with contextlib.suppress(HttpApiError):
            handle.close()

    def _teardown_group(self, record: GroupRecord) -> None:
        """Remove every URL, unbind, close (errors are expected when the queue went first)."""
        for handle in record.handles:
            self._close_handle(handle)
        record.handles = []
        record.queue_handle = None
        record.alive = False

    # -- status ------------------------------------------------------------------------------------
    def status(self, state: ServiceState | None) -> dict[str, object]:
        """The ``listener`` (http.sys itself: URLs and sessions) and ``queues`` parts of ``status``.

        Args:
            state: ``netsh http show servicestate`` as parsed, for the processes attached to each
                queue (``None`` where it is not available).
        """
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
        queues = []
        for name, record in sorted(self.queues.items()):
            _, why = self.effective_state(record)
            listed = state.queue(name) if state is not None else None
            queues.append(
                {
                    "name": name,
                    "state": str(why),
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
        return {"listener": listener, "queues": queues}

    # -- health probes -----------------------------------------------------------------------------
    def probe_target(self, spec: WorkerPool) -> ProbeTarget | None:
        """Where the pool's health probe goes: a URL of its queue whose prefix routes the probe
        path, reached through http.sys (``None``: no health path, or no URL routes it)."""
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

    # -- teardown ----------------------------------------------------------------------------------
    def release_urls(self) -> None:
        """Remove every URL and unbind every group: http.sys routes nothing more to the queues
        (errors swallowed; ``close`` does it again for what is left)."""
        for group in self.groups.values():
            for handle in group.handles:
                self._release(handle)

    def close(self) -> None:
        """Release everything in ASP.NET's order: remove the URLs and unbind every group, then close
        the queues, the URL groups and the sessions, and ``HttpTerminate``. Errors are swallowed."""
        self.release_urls()
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
