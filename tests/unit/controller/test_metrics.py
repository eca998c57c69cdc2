"""The controller's Prometheus metrics: every counter and histogram bucket only grows (the old
reconcile histogram kept a window of 10,000 samples and went down), request latency per URL group
from the listener's buckets, queue gauges and build info; in virtual time."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import __version__
from orchestrator.clock import FakeClock
from orchestrator.controller.metrics import Metrics

BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
SEED = 12


def _proc(latency: list[int], requests: int) -> dict[str, object]:
    group = {"latency_ms_buckets": BOUNDS_MS, "latency": latency, "requests": requests}
    queue = {"inflight": 1, "status": {"2xx": requests}, "refused": {"full": requests // 7}}
    return {"queues": {"api": queue}, "groups": {"api": group, "web": dict(group)}}


class _World:
    """A controller's snapshot whose listener counters grow with the requests it serves."""

    def __init__(self) -> None:
        self.latency = [[0] * (len(BOUNDS_MS) + 1), [0] * (len(BOUNDS_MS) + 1)]
        self.requests = [0, 0]

    def serve(self, rng: random.Random) -> None:
        proc = rng.randrange(2)
        self.latency[proc][rng.randrange(len(BOUNDS_MS) + 1)] += 1
        self.requests[proc] += 1

    def snapshot(self) -> dict[str, object]:
        return {
            "workers": [{"pool": "api", "state": "ready"}],
            "pools": {"api": {"restarts": 2, "halted": ""}},
            "queues": [{"name": "api", "backlog": 1000, "waiting": 7}],
            "listener": {
                "core": "compiled",
                "stats": [
                    _proc(list(lat), n) for lat, n in zip(self.latency, self.requests, strict=True)
                ],
            },
        }


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _growing(name: str) -> bool:
    return name.endswith(("_total", "_bucket", "_count", "_sum"))


def test_every_counter_and_bucket_only_grows_over_20000_observations() -> None:
    """20,000 reconcile passes of random duration on a fake clock, with reloads, rapid-fail trips
    and requests in between, scraped every 500: no counter, bucket, count or sum ever goes down
    (Prometheus would read it as a restart), and the last scrape counts every pass."""
    rng = random.Random(SEED)
    clock = FakeClock()
    world = _World()
    metrics = Metrics(world.snapshot)
    registry = CollectorRegistry()
    registry.register(metrics)
    previous = _samples(registry)
    for n in range(1, 20_001):
        started = clock.monotonic()
        clock.advance(rng.choice([0.001, 0.02, 0.3, 2.0, 200.0]) * rng.random())
        metrics.reconciled(rng.choice(["success", "error"]), clock.monotonic() - started)
        world.serve(rng)
        if n % 97 == 0:
            metrics.reload(n % 2 == 0, clock.wall())
            metrics.tripped("api")
        if n % 500 == 0:
            now = _samples(registry)
            shrunk = {
                key: (previous[key], value)
                for key, value in now.items()
                if _growing(key[0]) and key in previous and value < previous[key]
            }
            assert {} == shrunk, f"seed {SEED}, after {n} observations"
            assert set(previous) <= set(now), f"a series vanished (seed {SEED})"
            previous = now
    assert 20_000 == previous[("orchestrator_reconcile_duration_seconds_count", ())]
    assert 20_000 == previous[("orchestrator_reconcile_duration_seconds_bucket", (("le", "+Inf"),))]


def test_request_latency_per_url_group_sums_the_processes_buckets_cumulatively() -> None:
    """Two listener processes' per-bucket counts become one cumulative histogram per URL group,
    with the bounds in seconds and +Inf holding every request."""
    world = _World()
    world.latency = [[1] + [0] * 12 + [2], [0, 3] + [0] * 12]
    metrics = Metrics(world.snapshot)
    registry = CollectorRegistry()
    registry.register(metrics)
    samples = _samples(registry)
    bucket = "orchestrator_request_duration_seconds_bucket"
    assert 1 == samples[(bucket, (("group", "api"), ("le", "0.001")))]
    assert 4 == samples[(bucket, (("group", "api"), ("le", "0.002")))]
    assert 4 == samples[(bucket, (("group", "api"), ("le", "10.0")))]
    assert 6 == samples[(bucket, (("group", "api"), ("le", "+Inf")))]


def test_build_info_and_queue_gauges() -> None:
    """build_info names the version and the listener core; each queue's backlog is a gauge, and
    its requests in flight are summed over the listener processes."""
    metrics = Metrics(_World().snapshot)
    registry = CollectorRegistry()
    registry.register(metrics)
    samples = _samples(registry)
    info = (("listener_core", "compiled"), ("version", __version__))
    assert 1 == samples[("orchestrator_build_info", info)]
    assert 1000 == samples[("orchestrator_queue_backlog", (("queue", "api"),))]
    assert 7 == samples[("orchestrator_queue_waiting", (("queue", "api"),))]
    assert 2 == samples[("orchestrator_requests_in_flight", (("queue", "api"),))]
