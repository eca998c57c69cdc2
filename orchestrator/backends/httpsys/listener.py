"""The controller's side of one request queue: session, URL groups, queue, binding, prefixes.

Owns: ``HttpSysListener`` with the ASP.NET Core HttpSysListener order (notes section 2):
start = session -> URL group(s) -> queue -> (if created) options -> bind every group -> add every
prefix with its UrlContext (bind before add); stop = remove the prefixes, then unbind; dispose =
close queue -> URL groups -> session. A failed start undoes what it made, in that same order.
Under Wine (``capabilities.urls_per_group == 1``) each prefix gets its own URL group bound to the same
queue, which leaves routing unchanged because binding is per group; options the host cannot take
are skipped and listed in ``skipped``. A queue that already existed (CreateOrAttach) is attached and
left unconfigured, since only its creator may set its properties: ``drift`` says so.
Initialisation (``handles.ApiInit``) is the caller's: one per process, shared by listeners.
Imports ``binding``, ``handles``, ``queue_open``, ``capabilities`` and ``_ffi`` constants only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.backends.httpsys._ffi import EnabledState, ServerProperty, Verbosity503
from orchestrator.backends.httpsys.binding import ConnectionLimit, HttpSysBinding, TimeoutLimits
from orchestrator.backends.httpsys.capabilities import HttpSysCapabilities
from orchestrator.backends.httpsys.handles import RequestQueue, ServerSession, UrlGroup
from orchestrator.backends.httpsys.queue_open import QueueMode, open_request_queue

__all__ = ["GroupOptions", "HttpSysListener", "QueueOptions", "Route"]


@dataclass(frozen=True, slots=True)
class Route:
    """One URL prefix and the 64-bit UrlContext its requests carry (the route id)."""

    url: str
    context: int


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """Queue properties, applied only by the creator (defaults are http.sys's own)."""

    max_length: int = 1000
    state: EnabledState = EnabledState.ACTIVE
    verbosity503: Verbosity503 = Verbosity503.BASIC


@dataclass(frozen=True, slots=True)
class GroupOptions:
    """URL group properties (ASP.NET sets timeouts and MaxConnections on the group, not the session)."""

    timeouts: TimeoutLimits | None = None
    max_connections: int | None = None
    state: EnabledState | None = None


class HttpSysListener:
    """A request queue with the URL groups that feed it, in one server session."""

    def __init__(
        self,
        binding: HttpSysBinding,
        capabilities: HttpSysCapabilities,
        *,
        queue_name: str | None,
        routes: Sequence[Route],
        mode: QueueMode = QueueMode.CREATE,
        security_descriptor: str | None = None,
        inheritable: bool = False,
        queue_options: QueueOptions | None = None,
        group_options: GroupOptions | None = None,
    ) -> None:
        """Describe the listener; nothing is called until ``start()``."""
        if capabilities.urls_per_group is not None and capabilities.urls_per_group < 1:
            raise ValueError("urls_per_group must be at least 1")
        self.binding = binding
        self.capabilities = capabilities
        self.queue_name = queue_name
        self.routes = tuple(routes)
        self.mode = mode
        self.security_descriptor = security_descriptor
        self.inheritable = inheritable
        self.queue_options = queue_options
        self.group_options = group_options
        self.session: ServerSession | None = None
        self.groups: list[UrlGroup] = []
        self.queue: RequestQueue | None = None
        self.started = False
        #: Why the live objects differ from the description (e.g. an attached queue's properties).
        self.drift: list[str] = []
        #: Options this host cannot apply (Wine).
        self.skipped: list[str] = []

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Create everything and start routing; on failure undo what was made and re-raise."""
        if self.started:
            return
        try:
            self.session = ServerSession(self.binding)
            chunks = self._route_chunks()
            self.groups = [self.session.create_url_group() for _ in chunks]
            self.queue = open_request_queue(
                self.binding,
                self.queue_name,
                self.mode,
                security_descriptor=self.security_descriptor,
                inheritable=self.inheritable,
            )
            if not self.queue.created:
                # ASP.NET: when attaching, "most configuration options do not apply".
                self.drift.append(
                    f"queue {self.queue_name!r} already existed: attached; its properties, URL groups "
                    "and prefixes belong to its creator"
                )
                for group in self.groups:
                    group.close()
                self.groups = []
                self.started = True
                return
            self._apply_queue_options(self.queue)
            for group in self.groups:
                self._apply_group_options(group)
            for group in self.groups:
                group.bind(self.queue)
            for group, chunk in zip(self.groups, chunks, strict=True):
                for route in chunk:
                    group.add_url(route.url, route.context)
            self.started = True
        except BaseException:
            self._undo()
            raise

    def stop(self) -> None:
        """Stop routing: remove every prefix, then detach each group from the queue."""
        for group in self.groups:
            if not group.closed:
                group.remove_all_urls()
        for group in self.groups:
            if not group.closed and group.bound_to is not None:
                group.unbind()
        self.started = False

    def dispose(self) -> None:
        """Stop if needed, then close the queue, the URL groups and the session, in that order."""
        if self.started:
            self.stop()
        if self.queue is not None:
            self.queue.close()
        for group in self.groups:
            group.close()
        if self.session is not None:
            self.session.close()

    def __enter__(self) -> HttpSysListener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    # --- changes while running ----------------------------------------------------------------
    def add_route(self, route: Route) -> None:
        """Register one more prefix (a new bound group when groups hold one URL each)."""
        if self.session is None or self.queue is None:
            raise RuntimeError("start() the listener first")
        limit = self.capabilities.urls_per_group
        group = next(
            (g for g in self.groups if limit is None or len(g.urls) < limit),
            None,
        )
        if group is None:
            group = self.session.create_url_group()
            self.groups.append(group)
            self._apply_group_options(group)
            group.bind(self.queue)
        group.add_url(route.url, route.context)
        self.routes = (*self.routes, route)

    def remove_route(self, url: str) -> None:
        """Unregister one prefix; a group left empty under one-URL-per-group is unbound and closed."""
        for group in self.groups:
            if url in group.urls:
                group.remove_url(url)
                if self.capabilities.urls_per_group is not None and not group.urls:
                    group.unbind()
                    group.close()
                    self.groups.remove(group)
                self.routes = tuple(r for r in self.routes if r.url != url)
                return
        raise KeyError(url)

    # --- helpers ------------------------------------------------------------------------------
    def _route_chunks(self) -> list[tuple[Route, ...]]:
        limit = self.capabilities.urls_per_group
        if limit is None:
            return [self.routes]
        return [self.routes[i : i + limit] for i in range(0, len(self.routes), limit)] or [()]

    def _apply_queue_options(self, queue: RequestQueue) -> None:
        options = self.queue_options
        if options is None:
            return
        if not self.capabilities.queue_properties:
            self.skipped.append("queue length, state and 503 verbosity (not supported here)")
            return
        queue.set_property(ServerProperty.QUEUE_LENGTH, options.max_length)
        queue.set_property(ServerProperty.VERBOSITY_503, int(options.verbosity503))
        queue.set_property(ServerProperty.STATE, int(options.state))

    def _apply_group_options(self, group: UrlGroup) -> None:
        options = self.group_options
        if options is None:
            return
        if not self.capabilities.group_properties:
            note = "URL group timeouts, connection limit and state (not supported here)"
            if note not in self.skipped:
                self.skipped.append(note)
            return
        if options.timeouts is not None:
            group.set_property(options.timeouts)
        if options.max_connections is not None:
            group.set_property(ConnectionLimit(options.max_connections))
        if options.state is not None:
            group.set_property(options.state)

    def _undo(self) -> None:
        """Best-effort teardown after a failed start: the original error is what matters."""
        for group in self.groups:
            with contextlib.suppress(Exception):
                group.remove_all_urls()
            if group.bound_to is not None:
                with contextlib.suppress(Exception):
                    group.unbind()
        for owned in (self.queue, *self.groups, self.session):
            if owned is not None:
                with contextlib.suppress(Exception):
                    owned.close()
        self.started = False
