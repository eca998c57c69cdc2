"""Prometheus metrics: the controller's health, read from its latest snapshot.

Owns: ``Metrics`` (counters and the reconcile-duration histogram the main thread moves, and a
collector over the status snapshot: workers, pools, the listener's per-queue and per-URL-group
counters and latency buckets, queue gauges, build info) and ``serve_metrics``. Exposed with
``prometheus-client``'s text format on ``session.metrics.address``. Every counter and bucket only
grows while the controller and its listener processes run (durations use ``prometheus_client``'s
own ``Histogram``, which never forgets an observation): Prometheus reads a drop as a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from orchestrator import __version__

BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0)


class Metrics(Collector):
    """Counters kept by the controller plus gauges derived from its status snapshot."""

    def __init__(self, snapshot: Callable[[], dict[str, object]]) -> None:
        self.snapshot = snapshot
        self._lock = threading.Lock()
        self.reconciles: dict[str, int] = {"success": 0, "error": 0, "rolled_back": 0}
        # Not registered anywhere: ``collect`` yields it with the rest.
        self.durations = Histogram(
            "orchestrator_reconcile_duration_seconds",
            "Reconcile pass duration.",
            buckets=BUCKETS,
            registry=None,
        )
        self.rapid_fail_trips: dict[str, int] = {}
        self.last_reload_ok = 1
        self.last_reload_success_ts = 0.0

    def reconciled(self, result: str, seconds: float) -> None:
        """Count one reconcile pass by result."""
        with self._lock:
            self.reconciles[result] = self.reconciles.get(result, 0) + 1
        self.durations.observe(seconds)

    def reload(self, ok: bool, ts: float) -> None:
        """Record the outcome of a manifest reload."""
        with self._lock:
            self.last_reload_ok = 1 if ok else 0
            if ok:
                self.last_reload_success_ts = ts

    def tripped(self, pool: str) -> None:
        """Count a rapid-fail trip."""
        with self._lock:
            self.rapid_fail_trips[pool] = self.rapid_fail_trips.get(pool, 0) + 1

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        with self._lock:
            reconciles = dict(self.reconciles)
            trips = dict(self.rapid_fail_trips)
            ok, ts = self.last_reload_ok, self.last_reload_success_ts
        c = CounterMetricFamily(
            "orchestrator_reconcile", "Reconcile passes by result.", labels=["result"]
        )
        for result, n in sorted(reconciles.items()):
            c.add_metric([result], n)
        yield c
        yield from self.durations.collect()
        yield GaugeMetricFamily(
            "orchestrator_config_last_reload_successful",
            "Whether the last manifest reload succeeded.",
            value=ok,
        )
        yield GaugeMetricFamily(
            "orchestrator_config_last_reload_success_timestamp_seconds",
            "When the last manifest reload succeeded.",
            value=ts,
        )
        drift = snap.get("drift")
        yield GaugeMetricFamily(
            "orchestrator_drift_objects",
            "Objects drifted from the last apply.",
            value=len(drift) if isinstance(drift, list) else 0,
        )
        workers = GaugeMetricFamily(
            "orchestrator_workers", "Worker processes by pool and state.", labels=["pool", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        listed = snap.get("workers")
        for w in listed if isinstance(listed, list) else []:
            if isinstance(w, dict):
                key = (str(w.get("pool")), str(w.get("state")))
                counts[key] = counts.get(key, 0) + 1
        for (pool, state), n in sorted(counts.items()):
            workers.add_metric([pool, state], n)
        yield workers
        restarts = CounterMetricFamily(
            "orchestrator_worker_restarts", "Worker restarts by pool.", labels=["pool"]
        )
        halted = GaugeMetricFamily(
            "orchestrator_pool_halted",
            "1 when rapid-fail protection stopped the pool.",
            labels=["pool"],
        )
        pools = snap.get("pools")
        for name, info in sorted(pools.items()) if isinstance(pools, dict) else []:
            if isinstance(info, dict):
                restarts.add_metric([name], int(str(info.get("restarts", 0))))
                halted.add_metric([name], 1 if info.get("halted") else 0)
        yield restarts
        yield halted
        tripc = CounterMetricFamily(
            "orchestrator_rapid_fail_trips", "Rapid-fail trips by pool.", labels=["pool"]
        )
        for pool, n in sorted(trips.items()):
            tripc.add_metric([pool], n)
        yield tripc
        yield from self._listener(snap)
        yield from self._queues(snap)
        listener = snap.get("listener")
        core = listener.get("core") if isinstance(listener, dict) else None
        info = GaugeMetricFamily(
            "orchestrator_build_info",
            "Always 1: the version, and the listener core that runs (compiled, python or none).",
            labels=["version", "listener_core"],
        )
        info.add_metric([__version__, str(core or "none")], 1)
        yield info

    def _queues(self, snap: dict[str, object]) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "orchestrator_queue_backlog",
            "The listen backlog of each queue as applied (maxLength, clamped to somaxconn).",
            labels=["queue"],
        )
        waiting = GaugeMetricFamily(
            "orchestrator_queue_waiting",
            "Requests delivered to each queue that no worker has accepted yet (its depth, read from "
            "the kernel's accept queue).",
            labels=["queue"],
        )
        queues = snap.get("queues")
        for q in queues if isinstance(queues, list) else []:
            if isinstance(q, dict) and q.get("backlog") is not None:
                backlog.add_metric([str(q.get("name"))], int(str(q.get("backlog"))))
            if isinstance(q, dict) and q.get("waiting") is not None:
                waiting.add_metric([str(q.get("name"))], int(str(q.get("waiting"))))
        yield backlog
        yield waiting

    def _listener(self, snap: dict[str, object]) -> Iterator[Metric]:
        listener = snap.get("listener")
        stats = listener.get("stats") if isinstance(listener, dict) else None
        requests = CounterMetricFamily(
            "orchestrator_requests",
            "Requests by queue and status class.",
            labels=["queue", "status"],
        )
        inflight = GaugeMetricFamily(
            "orchestrator_requests_in_flight", "Requests in flight by queue.", labels=["queue"]
        )
        rejected = CounterMetricFamily(
            "orchestrator_queue_503", "503 answers by queue and reason.", labels=["queue", "reason"]
        )
        totals: dict[tuple[str, str], int] = {}
        flights: dict[str, int] = {}
        refusals: dict[tuple[str, str], int] = {}
        for proc in stats if isinstance(stats, list) else []:
            queues = proc.get("queues") if isinstance(proc, dict) else None
            for queue, q in queues.items() if isinstance(queues, dict) else []:
                if not isinstance(q, dict):
                    continue
                flights[queue] = flights.get(queue, 0) + int(str(q.get("inflight", 0)))
                by_status = q.get("status")
                for status, n in by_status.items() if isinstance(by_status, dict) else []:
                    totals[(queue, status)] = totals.get((queue, status), 0) + int(str(n))
                by_reason = q.get("refused")
                for reason, n in by_reason.items() if isinstance(by_reason, dict) else []:
                    refusals[(queue, reason)] = refusals.get((queue, reason), 0) + int(str(n))
        for (queue, status), n in sorted(totals.items()):
            requests.add_metric([queue, status], n)
        for queue, n in sorted(flights.items()):
            inflight.add_metric([queue], n)
        for (queue, reason), n in sorted(refusals.items()):
            rejected.add_metric([queue, reason], n)
        yield requests
        yield inflight
        yield rejected
        yield _latency(stats if isinstance(stats, list) else [])


def _latency(stats: list[object]) -> HistogramMetricFamily:
    """Request latency per URL group, summed over the listener processes.

    Each process reports per-bucket counts (``latency``, with ``latency_ms_buckets`` the upper
    bounds in milliseconds and one last bucket for the rest): incrementing a bucket is all the
    hot path does, so there is no exact sum, and the family has no ``_sum``.
    """
    family = HistogramMetricFamily(
        "orchestrator_request_duration_seconds",
        "Request latency by URL group, from the listener (first byte in to last byte out).",
        labels=["group"],
    )
    totals: dict[str, list[int]] = {}
    bounds: dict[str, list[float]] = {}
    for proc in stats:
        groups = proc.get("groups") if isinstance(proc, dict) else None
        for group, g in sorted(groups.items()) if isinstance(groups, dict) else []:
            counts, edges = g.get("latency"), g.get("latency_ms_buckets")
            if not isinstance(counts, list) or not isinstance(edges, list):
                continue
            if len(counts) != len(edges) + 1:
                continue
            bounds[group] = [float(str(e)) for e in edges]
            total = totals.setdefault(group, [0] * len(counts))
            if len(total) == len(counts):
                for i, n in enumerate(counts):
                    total[i] += int(str(n))
    for group, counts in sorted(totals.items()):
        cumulative, running = [], 0
        for edge, n in zip([*bounds[group], float("inf")], counts, strict=True):
            running += n
            cumulative.append(("+Inf" if edge == float("inf") else repr(edge / 1000), running))
        family.add_metric([group], cumulative, sum_value=None)
    return family


def serve_metrics(metrics: Metrics, address: str) -> str:
    """Serve ``/metrics`` on ``host:port`` from a background thread; returns the address as bound
    (port 0 asks the kernel for a free port, which the caller reports)."""
    host, _, port = address.rpartition(":")
    registry = CollectorRegistry()
    registry.register(metrics)
    server, _ = start_http_server(
        int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry
    )
    bound = int(server.server_address[1])
    return f"{host}:{bound}"
