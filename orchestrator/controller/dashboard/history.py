"""The dashboard's charts: the last five minutes of each URL group and queue, in the controller.

Owns: ``History`` (a ring of points per URL group and per queue, sampled from the status document
every ``interval_s``), ``quantile`` (a percentile from histogram bucket counts, the way Prometheus's
``histogram_quantile`` interpolates) and ``Counters`` (one listener process's counters of one group
or queue). A point is made from counter *deltas* since the previous sample: each listener process
reports counters that only grow while it runs, so the rate is the growth over the time between
samples, summed over the processes. A process that is new since the last sample (a restart, one
more process) counts from zero; a counter that went down (the process was replaced under the same
pid) counts as a restart too. Reads only the document it is given and its injected clock; must not
import the server, the daemon or a backend.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.clock import Clock

INTERVAL_S = 2.0
WINDOW_S = 300.0
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True, slots=True)
class Counters:
    """One listener process's counters of one URL group or queue."""

    completed: int  # requests answered (the sum of the status classes)
    status: Mapping[str, int]
    latency: tuple[int, ...]  # per bucket; the last one is everything above the last bound
    bounds_ms: tuple[float, ...]
    refused: int  # 503s by every reason
    inflight: int

    @staticmethod
    def read(raw: Mapping[str, object]) -> Counters:
        """From a stats message's group or queue entry (missing or odd values count as 0)."""
        status = raw.get("status")
        by_class = {str(k): _int(v) for k, v in status.items()} if isinstance(status, dict) else {}
        latency, bounds = raw.get("latency"), raw.get("latency_ms_buckets")
        counts = tuple(_int(n) for n in latency) if isinstance(latency, list) else ()
        edges = tuple(_float(e) for e in bounds) if isinstance(bounds, list) else ()
        if len(counts) != len(edges) + 1:
            counts, edges = (), ()
        refused = raw.get("refused")
        return Counters(
            completed=sum(by_class.values()),
            status=by_class,
            latency=counts,
            bounds_ms=edges,
            refused=sum(_int(n) for n in refused.values()) if isinstance(refused, dict) else 0,
            inflight=_int(raw.get("inflight")),
        )

    def since(self, before: Counters | None) -> Counters:
        """The growth since ``before`` (``None``, or any counter that went down: all of it)."""
        if before is None or self._went_down(before):
            return self
        return Counters(
            completed=self.completed - before.completed,
            status={k: n - before.status.get(k, 0) for k, n in self.status.items()},
            latency=tuple(n - b for n, b in zip(self.latency, before.latency, strict=True)),
            bounds_ms=self.bounds_ms,
            refused=self.refused - before.refused,
            inflight=self.inflight,
        )

    def _went_down(self, before: Counters) -> bool:
        if self.completed < before.completed or self.refused < before.refused:
            return True
        if any(n < before.status.get(k, 0) for k, n in self.status.items()):
            return True
        if set(before.status) - set(self.status):
            return True
        if self.bounds_ms != before.bounds_ms or len(self.latency) != len(before.latency):
            return True
        return any(n < b for n, b in zip(self.latency, before.latency, strict=True))


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def quantile(q: float, counts: Iterable[int], bounds_ms: tuple[float, ...]) -> float | None:
    """The ``q`` quantile (0..1) of the observations counted per bucket, in milliseconds.

    Interpolates linearly inside the bucket the rank falls in (its lower bound is the previous
    bucket's upper bound, 0 for the first); a rank in the last, open bucket gives the last bound,
    as Prometheus's ``histogram_quantile`` does. ``None`` when nothing was observed.
    """
    buckets = list(counts)
    total = sum(buckets)
    if total <= 0 or len(buckets) != len(bounds_ms) + 1:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n > 0 and seen + n >= rank:
            if i == len(bounds_ms):
                return float(bounds_ms[-1]) if bounds_ms else None
            lower = float(bounds_ms[i - 1]) if i > 0 else 0.0
            upper = float(bounds_ms[i])
            return round(lower + (upper - lower) * (rank - seen) / n, 3)
        seen += n
    return float(bounds_ms[-1]) if bounds_ms else None


def _listener_stats(doc: Mapping[str, object]) -> list[Mapping[str, object]]:
    listener = doc.get("listener")
    stats = listener.get("stats") if isinstance(listener, dict) else None
    return [s for s in stats if isinstance(s, dict)] if isinstance(stats, list) else []


def _names(doc: Mapping[str, object], member: str) -> list[str]:
    listed = doc.get(member)
    items = listed if isinstance(listed, list) else []
    return [str(i["name"]) for i in items if isinstance(i, dict) and i.get("name")]


class History:
    """Points per URL group and per queue over the last ``window_s`` seconds.

    ``sample`` is called by the controller's main loop as often as it likes; it takes a point at
    most every ``interval_s``. ``document`` is read by the dashboard's threads.
    """

    def __init__(
        self, clock: Clock, *, interval_s: float = INTERVAL_S, window_s: float = WINDOW_S
    ) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self.window_s = window_s
        self._lock = threading.Lock()
        self._groups: dict[str, deque[tuple[float, dict[str, object]]]] = {}
        self._queues: dict[str, deque[tuple[float, dict[str, object]]]] = {}
        self._last: dict[tuple[str, object, str], Counters] = {}
        self._last_at: float | None = None

    def sample(self, doc: Mapping[str, object]) -> bool:
        """Take a point from the status document ``doc`` if ``interval_s`` has passed since the
        last one; returns whether it did. The first call only records the counters."""
        now = self.clock.monotonic()
        if self._last_at is not None and now - self._last_at < self.interval_s:
            return False
        current: dict[tuple[str, object, str], Counters] = {}
        for proc in _listener_stats(doc):
            pid = proc.get("pid")
            for kind in ("groups", "queues"):
                entries = proc.get(kind)
                for name, raw in entries.items() if isinstance(entries, dict) else []:
                    if isinstance(raw, dict):
                        current[(kind, pid, str(name))] = Counters.read(raw)
        first, elapsed = self._last_at is None, now - (self._last_at or now)
        previous, self._last, self._last_at = self._last, current, now
        if first or elapsed <= 0:
            return False
        deltas: dict[tuple[str, str], list[Counters]] = {}
        for (kind, pid, name), counters in current.items():
            deltas.setdefault((kind, name), []).append(
                counters.since(previous.get((kind, pid, name)))
            )
        wall = round(self.clock.wall(), 3)
        with self._lock:
            for name in {*_names(doc, "urlGroups"), *(n for k, n in deltas if k == "groups")}:
                point = _group_point(wall, elapsed, deltas.get(("groups", name), []))
                self._groups.setdefault(name, deque()).append((now, point))
            for name in {*_names(doc, "queues"), *(n for k, n in deltas if k == "queues")}:
                point = _queue_point(wall, elapsed, deltas.get(("queues", name), []))
                self._queues.setdefault(name, deque()).append((now, point))
            for rings in (self._groups, self._queues):
                for name in list(rings):
                    ring = rings[name]
                    while ring and now - ring[0][0] > self.window_s:
                        ring.popleft()
                    if not ring:
                        del rings[name]  # a group or queue gone for longer than the window
        return True

    def document(self) -> dict[str, object]:
        """``/api/history``: the interval, the window, and the points of each group and queue."""
        with self._lock:
            return {
                "interval_s": self.interval_s,
                "window_s": self.window_s,
                "groups": {k: [p for _, p in ring] for k, ring in sorted(self._groups.items())},
                "queues": {k: [p for _, p in ring] for k, ring in sorted(self._queues.items())},
            }


def _group_point(wall: float, elapsed: float, deltas: list[Counters]) -> dict[str, object]:
    completed = sum(d.completed for d in deltas)
    with_buckets = [d for d in deltas if d.latency]
    bounds = with_buckets[0].bounds_ms if with_buckets else ()
    merged = [0] * (len(bounds) + 1)
    for d in with_buckets:
        if d.bounds_ms == bounds:
            merged = [a + b for a, b in zip(merged, d.latency, strict=True)]
    return {
        "t": wall,
        "rps": round(completed / elapsed, 3),
        "p50_ms": quantile(0.5, merged, bounds),
        "p99_ms": quantile(0.99, merged, bounds),
        "status": {c: sum(d.status.get(c, 0) for d in deltas) for c in STATUS_CLASSES},
    }


def _queue_point(wall: float, elapsed: float, deltas: list[Counters]) -> dict[str, object]:
    return {
        "t": wall,
        "rps": round(sum(d.completed for d in deltas) / elapsed, 3),
        "inflight": sum(d.inflight for d in deltas),
        "refused": sum(d.refused for d in deltas),
    }
