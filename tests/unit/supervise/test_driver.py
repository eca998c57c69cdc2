"""The shared pool driver in virtual time, with a fake launcher: no process is started.

Each test drives ``PoolDriver`` the way a backend's event pump does (``tick``, ``exited``,
``notified_ready``, probe results, ``recycles``) and checks what it asked the launcher to do and what
it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from orchestrator.clock import FakeClock
from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.model.desired import Health, RapidFail, Recycling, RestartPolicy, WorkerPool
from orchestrator.supervise.driver import (
    READY_GRACE_S,
    ExitStatus,
    Generation,
    Inspection,
    Pool,
    PoolDriver,
    Process,
    StartDeferred,
    wait_ready,
    wait_until,
)
from tests.support.states import pool as pool_spec


@dataclass(frozen=True)
class FakeProcess:
    pid: int


@dataclass
class FakeLauncher:
    """Records what the driver asks; ``fail`` makes the next starts raise."""

    next_pid: int = 100
    fail: int = 0
    defer: int = 0  # the next starts raise StartDeferred
    started: list[tuple[str, int, int]] = field(default_factory=list)  # (pool, generation, slot)
    terminated: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    opened: list[tuple[str, int]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)  # pids inspect reports as stopped

    def open_generation(self, pool: str, number: int, spec: WorkerPool) -> object:
        self.opened.append((pool, number))
        return number

    def close_generation(self, context: object) -> None:
        assert isinstance(context, int)
        self.closed.append(context)

    def start(self, pool: str, context: object, slot: int, spec: WorkerPool) -> Process:
        if self.defer:
            self.defer -= 1
            raise StartDeferred("queue is being re-created")
        if self.fail:
            self.fail -= 1
            raise OSError(2, "No such file or directory")
        assert isinstance(context, int)
        self.next_pid += 1
        self.started.append((pool, context, slot))
        return FakeProcess(self.next_pid)

    def terminate(self, process: Process) -> None:
        self.terminated.append(process.pid)

    def kill(self, process: Process) -> None:
        self.killed.append(process.pid)

    def inspect(self, process: Process) -> Inspection | None:
        return Inspection(stopped=process.pid in self.stopped, rss_bytes=1 << 20)

    def who(self, context: object) -> tuple[int | None, str]:
        return 1001, "orch-app"

    def confinement(self, process: Process) -> dict[str, object] | None:
        return {"seccomp": "filter", "pid": process.pid}


class Rig:
    """A driver, its fake launcher and clock, and what it emitted and reported."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.launcher = FakeLauncher()
        self.events: list[tuple[str, dict[str, object]]] = []
        self.changed: list[str] = []
        self.gone: list[str] = []
        self.driver = PoolDriver(
            self.launcher,
            self.clock,
            lambda event, **fields: self.events.append((event, fields)),
            on_change=lambda pool: self.changed.append(pool.name),
            on_gone=lambda pool: self.gone.append(pool.name),
        )

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def pids(self, name: str = "app") -> list[int]:
        return sorted(
            i.pid for g in self.driver.pools[name].generations for i in g.instances.values()
        )

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.driver.tick()

    def crash(self, pid: int, code: int = 1) -> None:
        assert self.driver.exited(pid, ExitStatus(code=code))

    def ready_all(self) -> None:
        for pid in self.pids():
            self.driver.notified_ready(pid)


def spec(processes: int = 2, **kw: object) -> WorkerPool:
    fields: dict[str, object] = {
        "processes": processes,
        "restart": RestartPolicy(initial_backoff_s=0.5, max_backoff_s=4.0, reset_after_s=30.0),
        "rapid_fail": RapidFail(max_crashes=3, interval_s=60.0),
        "shutdown_time_limit_s": 5.0,
        "startup_time_limit_s": 10.0,
    }
    fields.update(kw)
    command = fields.pop("command", ("app",))
    assert isinstance(command, tuple)
    return pool_spec("app", "q", *command, **fields)


def test_a_generation_starts_one_process_per_slot() -> None:
    """``processes: 2``: two processes, one per slot, in a generation of their own."""
    rig = Rig()
    rig.driver.start_generation("app", spec())
    assert [("app", 1, 0), ("app", 1, 1)] == rig.launcher.started
    assert [("app", 1)] == rig.launcher.opened
    assert ["generation_start", "process_start", "process_start"] == rig.names()


def test_a_crashed_process_restarts_after_its_backoff() -> None:
    """A crash empties the slot until the backoff (0.5 s for the first) has passed."""
    rig = Rig()
    rig.driver.start_generation("app", spec(processes=1))
    (pid,) = rig.pids()
    rig.crash(pid)
    rig.advance(0.4)
    assert [] == rig.pids()
    rig.advance(0.2)
    assert 1 == len(rig.pids())
    assert 1 == rig.driver.pools["app"].health.restarts


def test_rapid_fail_protection_halts_the_pool_and_reset_rearms_it() -> None:
    """Three crashes within the interval halt the pool: nothing restarts, the front end is told;
    a reset re-arms it and its slots fill again."""
    rig = Rig()
    rig.driver.start_generation("app", spec(processes=1))
    for _ in range(3):
        (pid,) = rig.pids()
        rig.crash(pid)
        rig.advance(5.0)
    pool = rig.driver.pools["app"]
    assert pool.health.halted.startswith("rapid-fail protection: 3 crashes")
    assert ["app"] == rig.changed
    rig.advance(60.0)
    assert [] == rig.pids()
    assert rig.driver.reset("app")
    assert ["app", "app"] == rig.changed
    assert 1 == len(rig.pids())
    assert "pool_reset" in rig.names()


def test_a_boot_failure_halts_at_once() -> None:
    """Exit code 3 says the worker cannot boot: the pool halts on the first one."""
    rig = Rig()
    rig.driver.start_generation("app", spec(processes=1))
    rig.crash(rig.pids()[0], code=3)
    assert "cannot boot" in rig.driver.pools["app"].health.halted


def test_a_process_that_cannot_be_started_counts_as_a_crash() -> None:
    """The launcher refuses (no such command): spawn_failed, then backoff and rapid-fail."""
    rig = Rig()
    rig.launcher.fail = 10
    rig.driver.start_generation("app", spec(processes=1))
    for _ in range(3):
        rig.advance(5.0)
    assert "spawn_failed" in rig.names()
    assert rig.driver.pools["app"].health.halted


def test_a_deferred_start_is_retried_and_never_counts_as_a_crash() -> None:
    """The launcher says "not now" (http.sys: the queue is being re-created) five times: no
    crash is counted, nothing halts, and the slot fills once the launcher can start it."""
    rig = Rig()
    rig.launcher.defer = 5
    rig.driver.start_generation("app", spec(processes=1))
    for _ in range(5):
        assert [] == rig.pids()
        rig.advance(1.0)
    assert 1 == len(rig.pids())
    pool = rig.driver.pools["app"]
    assert (0, "") == (pool.health.restarts, pool.health.halted)
    assert "spawn_failed" not in rig.names()


def test_a_skipped_probe_leaves_no_verdict_and_the_next_is_due_on_time() -> None:
    """A probe that could not be sent (nothing routes its path) is neither a pass nor a failure."""
    rig = Rig()
    rig.driver.start_generation("app", spec(processes=1, health=Health(path="/h", interval_s=5.0)))
    rig.ready_all()
    (due,) = rig.driver.due_probes()
    rig.driver.probe_skipped(due.name)
    assert not due.probe_pending
    assert (0, "") == (due.probe.failures, due.probe.last)
    assert [] == rig.driver.due_probes()
    rig.clock.advance(5.0)
    assert [due] == rig.driver.due_probes()


def test_wait_until_pumps_until_done_or_raises_after_its_limit() -> None:
    """``wait_until`` runs the pump until the condition holds; past the limit it names what it
    waited for."""
    clock = FakeClock()
    pumped: list[float] = []

    def pump(timeout_s: float) -> None:
        pumped.append(timeout_s)
        clock.advance(timeout_s)

    wait_until(lambda: len(pumped) >= 3, 10.0, pump, clock, "thing")
    assert 3 == len(pumped)
    with pytest.raises(TemporaryBackendError, match="worker/app stopping: not done within 1s"):
        wait_until(lambda: False, 1.0, pump, clock, "worker/app stopping")


def test_readiness_comes_from_notify_or_after_the_grace() -> None:
    """READY=1 makes a process ready at once; one that says nothing is ready after the grace."""
    rig = Rig()
    gen = rig.driver.start_generation("app", spec())
    first, _ = rig.pids()
    rig.driver.notified_ready(first)
    assert not gen.ready()
    rig.advance(READY_GRACE_S)
    assert gen.ready()
    assert gen.ever_ready


def test_a_stopped_generation_is_terminated_then_killed_then_gone() -> None:
    """Stop: SIGTERM to each process, a kill after shutdownTimeLimit, and when the last one has
    exited the generation's resources are released and the pool is gone."""
    rig = Rig()
    gen = rig.driver.start_generation("app", spec())
    pool = rig.driver.pools["app"]
    rig.driver.remove_pool("app", "removed")
    assert rig.pids() == sorted(rig.launcher.terminated)
    rig.advance(5.0)
    assert rig.pids() == sorted(rig.launcher.killed)
    for pid in rig.pids():
        rig.driver.exited(pid, ExitStatus(signal=9))
    assert [gen.number] == rig.launcher.closed
    assert "app" not in rig.driver.pools
    assert ["app"] == rig.gone
    assert not pool.generations


def _ready_wait(rig: Rig) -> object:
    def wait(pool: Pool, gen: Generation) -> None:
        rig.advance(READY_GRACE_S)
        if not gen.ready() or pool.health.halted:
            raise TemporaryBackendError("not ready")

    return wait


def test_a_roll_over_starts_the_new_generation_first_then_stops_the_old() -> None:
    """Create before destroy: the old processes stop only once the new ones are ready."""
    rig = Rig()
    rig.driver.start_generation("app", spec())
    rig.advance(READY_GRACE_S)
    old = rig.pids()
    gen = rig.driver.roll_over(
        "app", spec(command=("new",)), _ready_wait(rig), keep_lone_failure=True
    )  # type: ignore[arg-type]
    assert gen.ready()
    assert old == sorted(rig.launcher.terminated)
    assert ("replaced by a new definition",) == tuple(
        f["reason"] for e, f in rig.events if e == "generation_stop"
    )


def test_a_failed_roll_over_keeps_the_old_generation_serving() -> None:
    """The new processes cannot boot: they stop, the pool is re-armed, the old ones still run and
    the error says so (permanent: retrying the same definition cannot help)."""
    rig = Rig()
    rig.driver.start_generation("app", spec(processes=1))
    rig.advance(READY_GRACE_S)
    (old,) = rig.pids()

    def wait(pool: Pool, gen: Generation) -> None:
        for pid in [i.pid for i in gen.instances.values()]:
            rig.crash(pid, code=3)
        raise TemporaryBackendError(f"worker/app was stopped: {pool.health.halted}")

    with pytest.raises(PermanentBackendError, match="the old ones keep serving"):
        rig.driver.roll_over(
            "app", spec(processes=1, command=("bad",)), wait, keep_lone_failure=True
        )  # type: ignore[arg-type]
    pool = rig.driver.pools["app"]
    assert not pool.health.halted
    assert old not in rig.launcher.terminated
    assert pool.active is not None
    assert [old] == [i.pid for i in pool.active.instances.values()]


@pytest.mark.parametrize("keep", [True, False])
def test_a_lone_failed_roll_over_keeps_or_stops_the_failing_generation(keep: bool) -> None:
    """With nothing else serving, the failing generation stays (restarting or halted, so its URLs
    answer 503 and status says why) or stops, as the backend asks; the error is re-raised."""
    rig = Rig()

    def wait(pool: Pool, gen: Generation) -> None:
        raise TemporaryBackendError("not ready")

    with pytest.raises(TemporaryBackendError):
        rig.driver.roll_over("app", spec(processes=1), wait, keep_lone_failure=keep)
    generation = rig.driver.pools["app"].generations[0]
    assert keep == (not generation.stopping)


def test_enough_failed_probes_recycle_the_pool_with_overlap() -> None:
    """A probe is due every interval; unhealthyThreshold failures in a row start a new generation
    beside the old one, which stops once the new one is ready."""
    rig = Rig()
    health = Health(path="/healthz", interval_s=10.0, timeout_s=1.0, unhealthy_threshold=2)
    rig.driver.start_generation("app", spec(processes=1, health=health))
    rig.advance(READY_GRACE_S)
    (old,) = rig.pids()
    for _ in range(2):
        (due,) = rig.driver.due_probes()
        assert [] == rig.driver.due_probes()  # one at a time, and not before the interval
        rig.driver.probe_result(due.name, False, "HTTP 500")
        rig.advance(10.0)
    assert "pool_unhealthy" in rig.names()
    assert 2 == len(rig.driver.pools["app"].generations)
    rig.advance(READY_GRACE_S)
    rig.driver.recycles(0)
    assert [old] == rig.launcher.terminated
    assert "recycle_done" in rig.names()


def test_a_periodic_recycle_replaces_the_processes_after_their_time() -> None:
    """recycling.time: after it, a new generation starts, then the old one stops."""
    rig = Rig()
    rig.driver.start_generation("app", spec(processes=1, recycling=Recycling(time_s=100.0)))
    rig.advance(READY_GRACE_S)
    (old,) = rig.pids()
    rig.clock.advance(100.0)
    rig.driver.recycles(0)
    assert ("recycle_start", "time: running for 100s") == next(
        (e, f["reason"]) for e, f in rig.events if e == "recycle_start"
    )
    rig.advance(READY_GRACE_S)
    rig.driver.recycles(0)
    assert [old] == rig.launcher.terminated


def test_a_process_stopped_by_a_signal_is_found_hung_and_replaced() -> None:
    """A process stopped (SIGSTOP) for interval x threshold is terminated: process_hung."""
    rig = Rig()
    health = Health(path="/h", interval_s=2.0, unhealthy_threshold=2)
    rig.driver.start_generation("app", spec(processes=1, health=health))
    (pid,) = rig.pids()
    rig.launcher.stopped.add(pid)
    for _ in range(6):
        rig.advance(1.0)
    assert "process_hung" in rig.names()
    assert [pid] == rig.launcher.terminated


def test_status_and_faults_report_each_pool() -> None:
    """The workers rows and pools map of status; an empty slot is a process_exited fault, a
    halted pool a rapid_fail one."""
    rig = Rig()
    rig.driver.start_generation("app", spec())
    workers, pools = rig.driver.status()
    assert [0, 1] == [w["slot"] for w in workers]
    assert {"orch-app"} == {w["user"] for w in workers}
    assert "q" == pools["app"]["queue"]
    rig.crash(rig.pids()[0])
    assert ["process_exited"] == [f.reason for f in rig.driver.faults("app")]
    rig.driver.pools["app"].health = replace(rig.driver.pools["app"].health, halted="stopped")
    assert ["rapid_fail"] == [f.reason for f in rig.driver.faults("app")]


def test_wait_ready_returns_raises_on_halt_and_on_the_start_up_limit() -> None:
    """wait_ready pumps until ready; a halt or the startupTimeLimit ends it with an error."""
    rig = Rig()
    gen = rig.driver.start_generation("app", spec(processes=1))
    pool = rig.driver.pools["app"]
    reports: list[str] = []
    wait_ready(pool, gen, lambda e, f: reports.append(str(f["message"])), rig.advance, rig.clock)
    assert gen.ever_ready
    assert reports
    assert "0/1 processes ready" in reports[0]
    other = rig.driver.start_generation("app", spec(processes=1))
    for inst in list(other.instances.values()):
        rig.crash(inst.pid)
    with pytest.raises(TemporaryBackendError, match="did not become healthy within 10s"):
        wait_ready(pool, other, lambda e, f: None, lambda dt: rig.clock.advance(dt), rig.clock)
    pool.health = replace(pool.health, halted="rapid-fail")
    with pytest.raises(TemporaryBackendError, match="was stopped"):
        wait_ready(pool, other, lambda e, f: None, rig.advance, rig.clock)
