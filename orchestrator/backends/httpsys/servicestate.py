"""Reading ``netsh http show servicestate``: what http.sys itself lists (sessions, URL groups, queues).

Owns: ``parse_servicestate`` (pure: text in, ``ServiceState`` out, tolerant of the layouts of different
Windows builds), the ``ServiceState*`` records it returns, ``run_netsh`` (runs the command on Windows;
``""`` when it cannot) and ``ServiceStateReader`` (runs it at most once per ``SERVICESTATE_TTL_S``).
The backend compares the snapshot with what it holds to find queues and URLs that vanished behind its
back, and reports the processes attached to each queue.
Imports the standard library and ``orchestrator.clock`` only; no ctypes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.clock import Clock

__all__ = [
    "SERVICESTATE_TTL_S",
    "ServiceState",
    "ServiceStateGroup",
    "ServiceStateQueue",
    "ServiceStateReader",
    "ServiceStateSession",
    "parse_servicestate",
    "run_netsh",
]

#: How long ``servicestate`` output is reused (observe runs twice per reconcile pass).
SERVICESTATE_TTL_S = 2.0


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


def run_netsh() -> str:
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


class ServiceStateReader:
    """``netsh http show servicestate`` (or a stand-in), parsed, and reused for ``SERVICESTATE_TTL_S``."""

    def __init__(self, run: Callable[[], str] | None, clock: Clock) -> None:
        """``run`` returns the command's text (``None``: not available here, as under Wine)."""
        self.run = run
        self.clock = clock
        self._cache: tuple[float, ServiceState | None] | None = None

    def read(self) -> ServiceState | None:
        """The snapshot (``None``: no reader, or no output), at most ``SERVICESTATE_TTL_S`` old."""
        if self.run is None:
            return None
        now = self.clock.monotonic()
        cached = self._cache
        if cached is not None and now - cached[0] < SERVICESTATE_TTL_S:
            return cached[1]
        text = self.run()
        state = parse_servicestate(text) if text.strip() else None
        self._cache = (now, state)
        return state

    def forget(self) -> None:
        """Read afresh next time (a step changed http.sys)."""
        self._cache = None
