"""The dashboard's history ring on a fake clock: rates from counter deltas, resets, the window."""

from __future__ import annotations

from orchestrator.clock import FakeClock
from orchestrator.controller.dashboard.history import History, quantile

BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]


def _group(ok: int, errors: int = 0, fast: int | None = None, slow: int = 0) -> dict[str, object]:
    """A stats entry: ``ok`` 2xx and ``errors`` 5xx answers, ``fast`` of them under 1 ms (all by
    default) and ``slow`` in the 50-100 ms bucket."""
    latency = [0] * (len(BOUNDS) + 1)
    latency[0] = ok + errors - slow if fast is None else fast
    latency[6] = slow
    status = {"2xx": ok, **({"5xx": errors} if errors else {})}
    return {
        "requests": ok + errors,
        "inflight": 1,
        "status": status,
        "refused": {"queue_full": errors} if errors else {},
        "latency_ms_buckets": BOUNDS,
        "latency": latency,
    }


def _doc(*procs: tuple[int, dict[str, object]]) -> dict[str, object]:
    return {
        "urlGroups": [{"name": "hello"}, {"name": "idle"}],
        "queues": [{"name": "hello"}],
        "listener": {
            "stats": [
                {"pid": pid, "groups": {"hello": g}, "queues": {"hello": g}} for pid, g in procs
            ]
        },
    }


def test_the_first_sample_only_records_and_the_next_gives_the_rate_of_the_delta() -> None:
    clock = FakeClock()
    history = History(clock)
    assert not history.sample(_doc((10, _group(100))))
    assert history.document()["groups"] == {}
    clock.advance(2)
    assert history.sample(_doc((10, _group(120, errors=4))))
    groups = history.document()["groups"]
    assert isinstance(groups, dict)
    (point,) = groups["hello"]
    assert point["rps"] == 12.0  # 24 answers in 2 s
    assert point["status"] == {"2xx": 20, "3xx": 0, "4xx": 0, "5xx": 4}
    assert point["t"] == clock.wall()
    (idle,) = groups["idle"]
    assert idle["rps"] == 0.0
    assert idle["p50_ms"] is None
    assert idle["p99_ms"] is None
    queues = history.document()["queues"]
    assert isinstance(queues, dict)
    assert queues["hello"][0]["refused"] == 4
    assert queues["hello"][0]["inflight"] == 1


def test_samples_closer_than_the_interval_are_skipped() -> None:
    clock = FakeClock()
    history = History(clock)
    history.sample(_doc((10, _group(0))))
    clock.advance(1.5)
    assert not history.sample(_doc((10, _group(50))))
    clock.advance(0.5)
    assert history.sample(_doc((10, _group(50))))
    groups = history.document()["groups"]
    assert isinstance(groups, dict)
    assert [p["rps"] for p in groups["hello"]] == [25.0]  # 50 answers over the 2 s since


def test_processes_are_summed_and_a_restarted_one_counts_from_zero() -> None:
    clock = FakeClock()
    history = History(clock)
    history.sample(_doc((10, _group(100)), (11, _group(300))))
    clock.advance(2)
    # pid 11 restarted as pid 12 (its counters start again); pid 10 went down under the same pid.
    history.sample(_doc((10, _group(6)), (12, _group(4))))
    groups = history.document()["groups"]
    assert isinstance(groups, dict)
    (point,) = groups["hello"]
    assert point["rps"] == 5.0  # (6 + 4) / 2: never negative, never the old totals again
    assert point["status"]["2xx"] == 10


def test_the_ring_keeps_five_minutes() -> None:
    clock = FakeClock()
    history = History(clock)
    total = 0
    history.sample(_doc((10, _group(total))))
    for _ in range(400):  # 800 s of samples, 2 s apart
        clock.advance(2)
        total += 10
        history.sample(_doc((10, _group(total))))
    groups = history.document()["groups"]
    assert isinstance(groups, dict)
    points = groups["hello"]
    assert len(points) == 151  # 300 s / 2 s, both ends included
    assert points[-1]["t"] - points[0]["t"] == 300
    assert all(p["rps"] == 5.0 for p in points)


def test_a_group_gone_from_the_manifest_drops_out_after_the_window() -> None:
    clock = FakeClock()
    history = History(clock)
    history.sample(_doc((10, _group(0))))
    clock.advance(2)
    history.sample(_doc((10, _group(2))))
    for _ in range(200):
        clock.advance(2)
        history.sample({"urlGroups": [], "queues": [], "listener": {"stats": []}})
    assert history.document()["groups"] == {}
    assert history.document()["queues"] == {}


def test_percentiles_come_from_the_bucket_deltas() -> None:
    clock = FakeClock()
    history = History(clock)
    history.sample(_doc((10, _group(1000, slow=1000))))  # old slow requests must not count
    clock.advance(2)
    history.sample(_doc((10, _group(1100, slow=1001))))
    groups = history.document()["groups"]
    assert isinstance(groups, dict)
    (point,) = groups["hello"]
    assert point["p50_ms"] is not None
    assert point["p50_ms"] <= 1.0
    assert point["p99_ms"] is not None
    assert point["p99_ms"] <= 1.0
    clock.advance(2)
    history.sample(_doc((10, _group(1200, slow=1051))))  # half of the next 100 are slow
    (_, second) = history.document()["groups"]["hello"]  # type: ignore[index]
    assert 50 <= second["p99_ms"] <= 100


def test_quantile_interpolates_inside_a_bucket_like_prometheus() -> None:
    bounds = (10.0, 20.0, 40.0)
    assert quantile(0.5, [0, 10, 0, 0], bounds) == 15.0
    assert quantile(0.5, [10, 10, 0, 0], bounds) == 10.0
    assert quantile(0.99, [0, 0, 0, 5], bounds) == 40.0  # the open bucket gives the last bound
    assert quantile(0.5, [0, 0, 0, 0], bounds) is None
    assert quantile(0.5, [1, 2], bounds) is None  # counts that do not fit the bounds
