"""The listener's counters: per queue and per URL group, sent to the controller every second.

Owns: ``QueueStats`` and ``Stats`` (requests by status class, 503s by reason, in flight, a latency
histogram). Plain integers on the hot path; no locks (one event loop per process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


@dataclass(slots=True)
class QueueStats:
    """Counters of one queue (or URL group)."""

    requests: int = 0
    inflight: int = 0
    status: dict[str, int] = field(default_factory=dict)  # "2xx" → count
    refused: dict[str, int] = field(default_factory=dict)  # 503 reason → count
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    upstream_ms_total: float = 0.0

    def finished(self, status: int, duration_ms: float, upstream_ms: float) -> None:
        """Count a completed request."""
        key = f"{status // 100}xx"
        self.status[key] = self.status.get(key, 0) + 1
        for i, bound in enumerate(LATENCY_BUCKETS_MS):
            if duration_ms <= bound:
                self.latency[i] += 1
                break
        else:
            self.latency[-1] += 1
        self.upstream_ms_total += upstream_ms

    def as_dict(self) -> dict[str, object]:
        """For the stats message."""
        return {
            "requests": self.requests,
            "inflight": self.inflight,
            "status": dict(self.status),
            "refused": dict(self.refused),
            "latency_ms_buckets": list(LATENCY_BUCKETS_MS),
            "latency": list(self.latency),
            "upstream_ms_total": round(self.upstream_ms_total, 3),
        }


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
            "connections": self.connections,
            "accepted": self.accepted,
            "errors": dict(self.errors),
            "queues": {k: v.as_dict() for k, v in self.queues.items()},
            "groups": {k: v.as_dict() for k, v in self.groups.items()},
        }
