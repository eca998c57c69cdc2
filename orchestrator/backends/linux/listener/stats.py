"""The listener's counters: per queue and per URL group, sent to the controller every second.

Owns: ``Stats`` (every counter of one listener process: per queue and per URL group, connections,
errors by http.sys reason). The per-queue counters (``QueueStats``: requests by status class, 503s by
reason, in flight, a latency histogram) belong to the hot path (``core``). No locks: one event loop
per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.backends.linux.listener.core import IMPLEMENTATION, QueueStats


@dataclass(slots=True)
class Stats:
    """Every counter of one listener process."""

    queues: dict[str, QueueStats] = field(default_factory=dict)
    groups: dict[str, QueueStats] = field(default_factory=dict)
    connections: int = 0
    accepted: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # http.sys-style reason → count

    def queue(self, name: str) -> QueueStats:
        """The counters of queue ``name``."""
        stats = self.queues.get(name)
        if stats is None:
            stats = self.queues[name] = QueueStats()
        return stats

    def group(self, name: str) -> QueueStats:
        """The counters of URL group ``name``."""
        stats = self.groups.get(name)
        if stats is None:
            stats = self.groups[name] = QueueStats()
        return stats

    def error(self, reason: str) -> None:
        """Count an error by its http.sys reason name."""
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def as_message(self) -> dict[str, object]:
        """The ``stats`` message."""
        return {
            "type": "stats",
            "core": IMPLEMENTATION,
            "connections": self.connections,
            "accepted": self.accepted,
            "errors": dict(self.errors),
            "queues": {k: v.as_dict() for k, v in self.queues.items()},
            "groups": {k: v.as_dict() for k, v in self.groups.items()},
        }
