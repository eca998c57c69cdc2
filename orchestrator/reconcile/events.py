"""Structured events: every step and outcome, one record each, tagged with the reconcile id.

Owns: ``EventSink`` (the protocol the reconciler writes to) and ``EventLog`` (a bounded in-memory
ring with subscribers, which the admin API's ``events`` and the log writer read from).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from orchestrator.clock import Clock, SystemClock

Record = dict[str, object]


class EventSink(Protocol):
    """Where events go."""

    def emit(self, event: str, **fields: object) -> None:
        """Record one event."""
        ...


class EventLog:
    """A bounded ring of recent events, with subscribers called for each new one."""

    def __init__(self, clock: Clock | None = None, size: int = 2000) -> None:
        self._clock = clock or SystemClock()
        self._ring: deque[Record] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._subscribers: list[Callable[[Record], None]] = []

    def emit(self, event: str, **fields: object) -> None:
        record: Record = {
            "seq": next(self._seq),
            "ts": round(self._clock.wall(), 3),
            "event": event,
        }
        record.update(fields)
        with self._lock:
            self._ring.append(record)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(record)

    def subscribe(self, callback: Callable[[Record], None]) -> Callable[[], None]:
        """Call ``callback`` for every new event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def cancel() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return cancel

    def since(self, seq: int = 0) -> list[Record]:
        """Events after sequence number ``seq``, oldest first."""
        with self._lock:
            return [r for r in self._ring if int(str(r["seq"])) > seq]
