"""The one pool driver every backend uses: the records of running pools and the loop around ``core``.

Owns: ``Launcher`` and ``Process`` (what a backend supplies: start a process, signal it, look at it),
``ExitStatus``, the records ``Instance``, ``Generation`` and ``Pool``, ``PoolDriver`` (generations,
fill and spawn, exits, readiness, stops and escalation, restarts, rapid-fail, probe scheduling and
verdicts, periodic and unhealthy recycling with overlap, the create-first roll-over of a changed
definition, faults and the per-pool status), ``wait_ready`` and ``policy_of``.

The decisions are ``core``'s pure functions; this module keeps their state and carries them out
through the launcher, and reads time only from the injected clock, so its behaviour is unit-tested
with a fake launcher and a fake clock (tests/unit/supervise/test_driver.py). Process exits come in
through ``exited`` (the backend watches for them: pidfds on Linux, polling on Windows).

Must not import: ``os``, ``signal``, ``subprocess``, ``socket``, ``threading``, ``asyncio`` or
``logging`` (the launcher does the I/O, ``emit`` the logging); nor ``backends``, ``plan``,
``manifest``, ``reconcile`` or ``controller``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.model.desired import WorkerPool
from orchestrator.model.live import Fault
from orchestrator.supervise import core

if TYPE_CHECKING:
    from orchestrator.clock import Clock  # a protocol: the clock module itself reads time

Emit = Callable[..., None]
#: Progress reports while a pool starts: an event name and its fields (``backends.base.Progress``).
Report = Callable[[str, dict[str, object]], None]

#: A process that did not report READY=1 counts as ready once it has stayed up this long.
READY_GRACE_S = 1.0
#: How often running processes are inspected (stopped by a signal? memory for recycling).
INSPECT_S = 1.0


def policy_of(spec: WorkerPool) -> core.Policy:
    """The supervision policy of a pool definition."""
    return core.Policy(
        processes=spec.processes,
        initial_backoff_s=spec.restart.initial_backoff_s,
        max_backoff_s=spec.restart.max_backoff_s,
        reset_after_s=spec.restart.reset_after_s,
        rapid_fail_enabled=spec.rapid_fail.enabled,
        max_crashes=spec.rapid_fail.max_crashes,
        rapid_fail_interval_s=spec.rapid_fail.interval_s,
        startup_time_limit_s=spec.startup_time_limit_s,
        shutdown_time_limit_s=spec.shutdown_time_limit_s,
        unhealthy_threshold=spec.health.unhealthy_threshold,
        recycle_time_s=spec.recycling.time_s,
        recycle_requests=spec.recycling.requests,
        recycle_memory_bytes=spec.recycling.memory_bytes,
        recycle_schedule=spec.recycling.schedule,
    )


class Process(Protocol):
    """A process a launcher started: the driver knows it by its pid only."""

    @property
    def pid(self) -> int:
        """The process id."""
        ...


class StartDeferred(Exception):
    """Raised by ``Launcher.start`` when a process cannot start yet for a reason that is not the
    pool's fault (on http.sys: its queue is being re-created); the slot is tried again shortly and
    nothing counts as a crash."""


#: How soon a deferred start is tried again.
DEFER_S = 1.0


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended, as its launcher decoded it."""

    code: int | None = None  # the exit code, when it exited
    signal: int | None = None  # the signal that ended it
    oom: bool = False  # the kernel killed it for memory


@dataclass(frozen=True, slots=True)
class Inspection:
    """What a launcher sees of a running process."""

    stopped: bool = False  # stopped by a signal (SIGSTOP): it cannot answer
    rss_bytes: int = 0


class Launcher(Protocol):
    """What a backend supplies: processes started, signalled and looked at on its platform.

    A generation's ``context`` is the launcher's own (on Linux: the identity and the cgroup);
    the driver only passes it back.
    """

    def open_generation(self, pool: str, number: int, spec: WorkerPool) -> object:
        """Prepare what every process of a new generation shares; returns its context."""
        ...

    def close_generation(self, context: object) -> None:
        """A generation has no process left: release what ``open_generation`` prepared."""
        ...

    def start(self, pool: str, context: object, slot: int, spec: WorkerPool) -> Process:
        """Start one process of the generation.

        Raises:
            OSError: it could not be started (counted as a crash).
            StartDeferred: not now (tried again after ``DEFER_S``, not counted).
        """
        ...

    def terminate(self, process: Process) -> None:
        """Ask the process to stop (SIGTERM, CTRL_BREAK)."""
        ...

    def kill(self, process: Process) -> None:
        """Kill the process and everything it started."""
        ...

    def inspect(self, process: Process) -> Inspection | None:
        """Look at a running process; ``None`` when the platform cannot."""
        ...

    def who(self, context: object) -> tuple[int | None, str]:
        """The uid (where there is one) and user name a generation's processes run as."""
        ...

    def confinement(self, process: Process) -> Mapping[str, object] | None:
        """The process's sandbox as the platform reports it (``None``: it has none)."""
        ...


@dataclass(slots=True)
class Instance:
    """One running process of a generation."""

    slot: int
    process: Process
    started_at: float
    ready: bool = False
    term_at: float | None = None
    killed: bool = False
    stopped_since: float | None = None  # first seen stopped (SIGSTOP), for hang detection
    rss_bytes: int = 0

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def as_child(self) -> core.Child:
        """The pure core's view."""
        return core.Child(
            slot=self.slot,
            pid=self.process.pid,
            started_at=self.started_at,
            ready=self.ready,
            term_at=self.term_at,
            rss_bytes=self.rss_bytes,
        )


@dataclass(slots=True)
class Generation:
    """A pool definition and the processes running it."""

    number: int
    spec: WorkerPool
    policy: core.Policy
    context: object
    started_at: float
    instances: dict[int, Instance] = field(default_factory=dict)  # by pid
    restart_at: dict[int, float] = field(default_factory=dict)  # by slot
    stopping: bool = False
    stop_reason: str = ""
    ever_ready: bool = False

    def ready(self) -> bool:
        """Every wanted slot has a ready process."""
        ready_slots = {i.slot for i in self.instances.values() if i.ready and i.term_at is None}
        return all(slot in ready_slots for slot in range(self.policy.processes))

    def ready_count(self) -> int:
        """How many processes are ready."""
        return sum(1 for i in self.instances.values() if i.ready)


@dataclass(slots=True)
class Pool:
    """One pool: its definition, generations, crash history and probe record."""

    name: str
    spec: WorkerPool
    generations: list[Generation] = field(default_factory=list)
    health: core.PoolHealth = field(default_factory=core.PoolHealth)
    probe: core.ProbeState = field(default_factory=core.ProbeState)
    next_probe_at: float = 0.0
    probe_pending: bool = False
    recycling: bool = False  # an overlapped recycle is in progress
    last_minute: int | None = None  # minute of the day at the last recycle check (schedule)
    removed: bool = False  # removed from the manifest: its generations are stopping

    @property
    def active(self) -> Generation | None:
        """The newest generation that is not stopping."""
        for gen in reversed(self.generations):
            if not gen.stopping:
                return gen
        return None

    @property
    def serving(self) -> Generation | None:
        """The generation that serves now: the newest ready one, else the active one."""
        for gen in reversed(self.generations):
            if not gen.stopping and gen.ever_ready:
                return gen
        return self.active


class PoolDriver:
    """Starts, watches, restarts, recycles and stops the processes of every pool.

    Args:
        launcher: the platform's process launcher.
        clock: time source.
        emit: structured events (``process_start``, ``process_exit``, ``pool_halted``, ...).
        on_change: a pool's serving state changed (halted or re-armed): the front end must answer
            503 (or serve again) at once.
        on_gone: a pool's last generation ended (it serves no more).
        ready_grace_s: how long a process that reports nothing must stay up to count as ready.
    """

    def __init__(
        self,
        launcher: Launcher,
        clock: Clock,
        emit: Emit,
        *,
        on_change: Callable[[Pool], None] | None = None,
        on_gone: Callable[[Pool], None] | None = None,
        ready_grace_s: float = READY_GRACE_S,
    ) -> None:
        self.launcher = launcher
        self.clock = clock
        self.emit = emit
        self.on_change = on_change or (lambda pool: None)
        self.on_gone = on_gone or (lambda pool: None)
        self.ready_grace_s = ready_grace_s
        self.pools: dict[str, Pool] = {}
        self.by_pid: dict[int, tuple[Pool, Generation, Instance]] = {}
        self._numbers = itertools.count(1)
        self._next_inspection = 0.0

    # -- generations -------------------------------------------------------------------------
    def pool(self, name: str, spec: WorkerPool) -> Pool:
        """The pool called ``name`` (created on first use) with ``spec`` as its definition."""
        pool = self.pools.get(name)
        if pool is None:
            pool = self.pools[name] = Pool(name, spec)
        pool.spec = spec
        pool.removed = False
        return pool

    def start_generation(self, name: str, spec: WorkerPool) -> Generation:
        """Start a new generation of pool ``name`` running ``spec``."""
        pool = self.pool(name, spec)
        number = next(self._numbers)
        context = self.launcher.open_generation(name, number, spec)
        now = self.clock.monotonic()
        gen = Generation(number, spec, policy_of(spec), context, now)
        pool.generations.append(gen)
        self.emit("generation_start", pool=name, generation=number, processes=spec.processes)
        self._fill(pool, gen, now)
        return gen

    def update_in_place(self, name: str, spec: WorkerPool) -> Generation | None:
        """Apply a definition change that needs no restart (size, health, restart, recycling);
        re-arms the pool if rapid-fail protection had stopped it. Returns the active generation."""
        pool = self.pool(name, spec)
        self.reset(name)
        gen = pool.active
        if gen is None:
            return None
        gen.spec = spec
        gen.policy = policy_of(spec)
        gen.restart_at.clear()
        self._fill(pool, gen, self.clock.monotonic())
        return gen

    def stop_generation(self, pool: Pool, gen: Generation, reason: str) -> None:
        """Ask every process of a generation to stop; kills follow after ``shutdownTimeLimit``."""
        if gen.stopping:
            return
        gen.stopping = True
        gen.stop_reason = reason
        now = self.clock.monotonic()
        self.emit("generation_stop", pool=pool.name, generation=gen.number, reason=reason)
        for inst in gen.instances.values():
            self._terminate(inst, now)
        if not gen.instances:
            self._finish(pool, gen)

    def remove_pool(self, name: str, reason: str) -> None:
        """Stop every generation of a pool; it disappears once they are gone."""
        pool = self.pools.get(name)
        if pool is None:
            return
        pool.removed = True
        for gen in list(pool.generations):
            self.stop_generation(pool, gen, reason)

    def stopped(self, name: str) -> bool:
        """Whether pool ``name`` has no generation left."""
        pool = self.pools.get(name)
        return pool is None or not pool.generations

    def reset(self, name: str) -> bool:
        """Re-arm a pool stopped by rapid-fail protection; returns whether it was halted."""
        pool = self.pools.get(name)
        if pool is None:
            return False
        was = bool(pool.health.halted)
        pool.health = core.reset(pool.health)
        gen = pool.active
        if gen is not None:
            gen.restart_at.clear()
            self._fill(pool, gen, self.clock.monotonic())
        if was:
            # The front end hears of it before anyone else (the event refreshes `status`).
            self.on_change(pool)
            self.emit("pool_reset", pool=name)
        return was

    def roll_over(
        self,
        name: str,
        spec: WorkerPool,
        wait: Callable[[Pool, Generation], None],
        *,
        keep_lone_failure: bool,
    ) -> Generation:
        """Run a new definition of pool ``name``, create-first: a new generation starts, ``wait``
        (which raises when it does not become ready) waits for it, and only then do the older ones
        stop. A pool stopped by rapid-fail protection is re-armed; its failing generations stop
        first, or the re-arm would start them again beside the new one.

        If the new generation fails while older ones serve, it is stopped and the pool re-armed
        (its crashes must not leave the pool halted), and ``PermanentBackendError`` says the old
        ones keep serving. If nothing else serves, ``keep_lone_failure`` keeps the failing
        generation running (restarting, or halted so that its URLs answer 503 and status says
        why) instead of stopping it; the error is re-raised either way.
        """
        pool = self.pools.get(name)
        if pool is not None and pool.health.halted:
            for previous in [g for g in pool.generations if not g.stopping]:
                self.stop_generation(pool, previous, "replaced while stopped")
        if pool is not None:
            pool.recycling = False
        self.reset(name)
        old = [g for g in pool.generations if not g.stopping] if pool is not None else []
        gen = self.start_generation(name, spec)
        pool = self.pools[name]
        try:
            wait(pool, gen)
        except (TemporaryBackendError, PermanentBackendError) as exc:
            if old:
                self.stop_generation(pool, gen, "did not become ready")
                self.reset(name)
                raise PermanentBackendError(
                    f"worker/{name}: the new processes did not become healthy; the old ones keep "
                    "serving",
                    exc.summary + ". Fix the pool's definition, or run: orchestrator reset " + name,
                ) from exc
            if not keep_lone_failure:
                self.stop_generation(pool, gen, "did not become ready")
            raise
        for previous in old:
            self.stop_generation(pool, previous, "replaced by a new definition")
        return gen

    def restart(
        self,
        name: str,
        wait: Callable[[Pool, Generation], None],
        *,
        keep_lone_failure: bool,
    ) -> tuple[tuple[int, ...], Generation]:
        """An overlapped recycle on demand (``orchestrator restart POOL``): the pool's own
        definition rolls over create-first, exactly as a changed one does (``roll_over``), so the
        old processes serve until the new ones are ready.

        Returns:
            The pids that served before, and the new generation.

        Raises:
            KeyError: no such pool (or it is being removed).
            TemporaryBackendError, PermanentBackendError: as ``roll_over``.
        """
        pool = self.pools.get(name)
        if pool is None or pool.removed:
            raise KeyError(name)
        old = tuple(sorted(pid for g in pool.generations if not g.stopping for pid in g.instances))
        self.emit("restart_start", pool=name, pids=list(old))
        gen = self.roll_over(name, pool.spec, wait, keep_lone_failure=keep_lone_failure)
        return old, gen

    # -- processes ---------------------------------------------------------------------------
    def _fill(self, pool: Pool, gen: Generation, now: float) -> None:
        if gen.stopping:
            return
        children = [i.as_child() for i in gen.instances.values()]
        for cmd in core.reconcile_slots(
            children, gen.policy, gen.restart_at, now, halted=bool(pool.health.halted)
        ):
            if isinstance(cmd, core.Spawn):
                self._spawn(pool, gen, cmd.slot, now)
            elif isinstance(cmd, core.Terminate):
                self._terminate(gen.instances[cmd.pid], now)

    def _spawn(self, pool: Pool, gen: Generation, slot: int, now: float) -> None:
        gen.restart_at.pop(slot, None)
        try:
            process = self.launcher.start(pool.name, gen.context, slot, gen.spec)
        except StartDeferred:
            gen.restart_at[slot] = now + DEFER_S
            return
        except OSError as exc:
            self.emit("spawn_failed", pool=pool.name, slot=slot, error=str(exc))
            # A command that cannot start is a crash like any other: backoff, then rapid-fail.
            self._decide(pool, gen, core.ExitInfo(slot=slot, at=now, started_at=now, code=127))
            return
        inst = Instance(slot, process, now)
        gen.instances[process.pid] = inst
        self.by_pid[process.pid] = (pool, gen, inst)
        _, user = self.launcher.who(gen.context)
        self.emit(
            "process_start",
            pool=pool.name,
            generation=gen.number,
            slot=slot,
            pid=process.pid,
            user=user,
        )

    def _terminate(self, inst: Instance, now: float) -> None:
        if inst.term_at is not None:
            return
        inst.term_at = now
        self.launcher.terminate(inst.process)

    def _kill(self, inst: Instance) -> None:
        inst.killed = True
        self.launcher.kill(inst.process)

    def exited(self, pid: int, status: ExitStatus) -> bool:
        """A supervised process ended (the backend reaped it); returns whether it was ours."""
        entry = self.by_pid.pop(pid, None)
        if entry is None:
            return False
        pool, gen, inst = entry
        gen.instances.pop(pid, None)
        now = self.clock.monotonic()
        expected = inst.term_at is not None or gen.stopping
        info = core.ExitInfo(
            slot=inst.slot,
            at=now,
            started_at=inst.started_at,
            code=status.code,
            signal=status.signal,
            expected=expected,
            oom=status.oom,
        )
        self.emit(
            "process_exit",
            pool=pool.name,
            generation=gen.number,
            slot=inst.slot,
            pid=pid,
            exit=info.describe(),
            expected=expected,
            oom=status.oom,
        )
        if gen.stopping:
            if not gen.instances:
                self._finish(pool, gen)
            return True
        self._decide(pool, gen, info)
        return True

    def _decide(self, pool: Pool, gen: Generation, info: core.ExitInfo) -> None:
        decision = core.on_exit(pool.health, info, gen.policy)
        pool.health = decision.health
        if decision.halt is not None:
            # The failing generation stops; an older one that still serves (a roll-over or a
            # recycle in progress) is left to the caller, which keeps it.
            now = self.clock.monotonic()
            for inst in gen.instances.values():
                self._terminate(inst, now)
            # The front end answers 503 before `status` (refreshed by the event) says halted.
            self.on_change(pool)
            self.emit("pool_halted", pool=pool.name, reason=decision.halt.reason)
            return
        if decision.restart_at is not None and info.slot < gen.policy.processes:
            gen.restart_at[info.slot] = decision.restart_at

    def _finish(self, pool: Pool, gen: Generation) -> None:
        self.launcher.close_generation(gen.context)
        if gen in pool.generations:
            pool.generations.remove(gen)
        self.emit("generation_stopped", pool=pool.name, generation=gen.number)
        if not pool.generations and self.pools.get(pool.name) is pool:
            del self.pools[pool.name]
            self.on_gone(pool)

    def notified_ready(self, pid: int) -> None:
        """A process reported readiness (``READY=1``)."""
        entry = self.by_pid.get(pid)
        if entry is None:
            return
        pool, gen, inst = entry
        if not inst.ready:
            inst.ready = True
            gen.ever_ready = gen.ever_ready or gen.ready()
            self.emit("process_ready", pool=pool.name, pid=pid, via="notify")

    # -- time --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Readiness by grace, inspections (hangs, memory), escalation of stops, due restarts."""
        now = self.clock.monotonic()
        inspect = now >= self._next_inspection
        if inspect:
            self._next_inspection = now + INSPECT_S
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                for inst in list(gen.instances.values()):
                    if (
                        not inst.ready
                        and inst.term_at is None
                        and now - inst.started_at >= self.ready_grace_s
                    ):
                        inst.ready = True
                        self.emit("process_ready", pool=pool.name, pid=inst.pid, via="grace")
                    if inspect:
                        self._inspect(pool, gen, inst, now)
                if not gen.stopping and not gen.ever_ready and gen.ready():
                    gen.ever_ready = True
                for cmd in core.escalate(
                    [i.as_child() for i in gen.instances.values() if not i.killed],
                    gen.policy.shutdown_time_limit_s,
                    now,
                ):
                    self.emit(
                        "process_kill",
                        pool=pool.name,
                        pid=cmd.pid,
                        reason=f"still running {gen.policy.shutdown_time_limit_s:g}s after stop",
                    )
                    self._kill(gen.instances[cmd.pid])
                self._fill(pool, gen, now)

    def _inspect(self, pool: Pool, gen: Generation, inst: Instance, now: float) -> None:
        seen = self.launcher.inspect(inst.process)
        if seen is None:
            return
        inst.rss_bytes = seen.rss_bytes
        if seen.stopped and inst.term_at is None:
            if inst.stopped_since is None:
                inst.stopped_since = now
            limit = gen.spec.health.interval_s * gen.spec.health.unhealthy_threshold
            if now - inst.stopped_since >= limit:
                self.emit(
                    "process_hung",
                    pool=pool.name,
                    pid=inst.pid,
                    detail=f"stopped for {now - inst.stopped_since:.0f}s",
                )
                self._terminate(inst, now)
        else:
            inst.stopped_since = None

    def next_deadline(self) -> float:
        """The earliest time ``tick`` (or a probe) has something to do."""
        now = self.clock.monotonic()
        times = [self._next_inspection] if self.by_pid else []
        for pool in self.pools.values():
            if self._probe_wanted(pool):
                times.append(pool.next_probe_at)
            for gen in pool.generations:
                times.extend(gen.restart_at.values())
                for inst in gen.instances.values():
                    if not inst.ready:
                        times.append(inst.started_at + self.ready_grace_s)
                    if inst.term_at is not None and not inst.killed:
                        times.append(inst.term_at + gen.policy.shutdown_time_limit_s)
        return min(times, default=now + 3600.0)

    # -- health probes -----------------------------------------------------------------------
    def _probe_wanted(self, pool: Pool) -> bool:
        serving = pool.serving
        return (
            pool.spec.health.path is not None
            and not (pool.removed or pool.health.halted or pool.probe_pending)
            and serving is not None
            and serving.ever_ready
        )

    def due_probes(self) -> list[Pool]:
        """The pools whose health probe is due now; each is marked pending until its result."""
        now = self.clock.monotonic()
        due = []
        for pool in self.pools.values():
            if self._probe_wanted(pool) and now >= pool.next_probe_at:
                pool.next_probe_at = now + pool.spec.health.interval_s
                pool.probe_pending = True
                due.append(pool)
        return due

    def probe_skipped(self, name: str) -> None:
        """A due probe was not sent (nothing to send it to): no verdict, the next one is due as
        usual."""
        pool = self.pools.get(name)
        if pool is not None:
            pool.probe_pending = False

    def probe_result(self, name: str, ok: bool, detail: str) -> None:
        """A probe finished: record its verdict; enough failures in a row replace the pool."""
        pool = self.pools.get(name)
        if pool is None:
            return
        pool.probe_pending = False
        gen = pool.active
        if gen is None or pool.removed:
            return
        pool.probe, replace = core.probe_verdict(
            pool.probe, ok, detail, self.clock.monotonic(), gen.policy
        )
        if not ok:
            self.emit("probe_failed", pool=name, detail=detail, failures=pool.probe.failures)
        if replace and not pool.recycling:
            self.emit("pool_unhealthy", pool=name, detail=detail)
            self._start_recycle(pool, f"unhealthy: {detail}")

    # -- recycling ---------------------------------------------------------------------------
    def _start_recycle(self, pool: Pool, reason: str) -> None:
        pool.recycling = True
        self.emit("recycle_start", pool=pool.name, reason=reason)
        self.start_generation(pool.name, pool.spec)

    def recycles(self, minute_of_day: int) -> None:
        """Finish overlapped recycles in progress, and start those that are due (time, requests,
        memory, schedule: ``core.recycle_reason``)."""
        now = self.clock.monotonic()
        for pool in list(self.pools.values()):
            if pool.removed:
                continue
            active = pool.active
            if pool.recycling and active is not None:
                older = [g for g in pool.generations if g is not active and not g.stopping]
                if active.ready():
                    active.ever_ready = True
                    for gen in older:
                        self.stop_generation(pool, gen, "recycled")
                    pool.recycling = False
                    self.emit("recycle_done", pool=pool.name, generation=active.number)
                elif now - active.started_at > pool.spec.startup_time_limit_s or pool.health.halted:
                    self.stop_generation(pool, active, "recycle did not become ready")
                    pool.recycling = False
                    self.emit("recycle_failed", pool=pool.name)
                continue
            serving = pool.serving
            if serving is None or pool.health.halted:
                continue
            before = pool.last_minute if pool.last_minute is not None else minute_of_day
            pool.last_minute = minute_of_day
            reason = core.recycle_reason(
                serving.started_at,
                now,
                [i.as_child() for i in serving.instances.values()],
                serving.policy,
                wall_minutes_before=before,
                wall_minutes_now=minute_of_day,
            )
            if reason:
                self._start_recycle(pool, reason)

    # -- what is reported --------------------------------------------------------------------
    def faults(self, name: str) -> list[Fault]:
        """Drift of pool ``name``: stopped by rapid-fail protection, or slots without a process."""
        pool = self.pools.get(name)
        if pool is None or pool.active is None:
            return []
        spec = pool.spec
        if pool.health.halted:
            return [
                Fault(
                    key=spec.key,
                    reason="rapid_fail",
                    detail=pool.health.halted + f"; run: orchestrator reset {spec.key.name}",
                )
            ]
        gen = pool.active
        running = {i.slot for i in gen.instances.values() if i.term_at is None}
        return [
            Fault(
                key=spec.key,
                instance=f"worker/{spec.key.name}[{slot}]",
                reason="process_exited",
                detail=f"{pool.health.last_exit or 'not running'}; restarting",
            )
            for slot in range(gen.policy.processes)
            if slot not in running
        ]

    def status(self) -> tuple[list[dict[str, object]], dict[str, dict[str, object]]]:
        """The ``workers`` rows and the ``pools`` map of ``orchestrator status``."""
        now = self.clock.monotonic()
        workers: list[dict[str, object]] = []
        for name, pool in sorted(self.pools.items()):
            for gen in pool.generations:
                uid, user = self.launcher.who(gen.context)
                for inst in sorted(gen.instances.values(), key=lambda i: i.slot):
                    workers.append(
                        {
                            "pool": name,
                            "generation": gen.number,
                            "slot": inst.slot,
                            "pid": inst.pid,
                            "uid": uid,
                            "user": user,
                            "state": "stopping"
                            if inst.term_at is not None or gen.stopping
                            else ("ready" if inst.ready else "starting"),
                            "uptime_s": round(now - inst.started_at, 1),
                            "restarts": pool.health.restarts,
                            "health": pool.probe.last or ("ok" if inst.ready else ""),
                            "last_exit": pool.health.last_exit,
                            "sandbox": self.launcher.confinement(inst.process),
                        }
                    )
        pools: dict[str, dict[str, object]] = {
            name: {
                "halted": pool.health.halted,
                "halted_since": (self.clock.wall() - (now - pool.health.halted_at))
                if pool.health.halted
                else None,
                "restarts": pool.health.restarts,
                "last_exit": pool.health.last_exit,
                "probe": {"failures": pool.probe.failures, "last": pool.probe.last},
                "generations": [g.number for g in pool.generations],
                "queue": pool.spec.queue.name,
            }
            for name, pool in sorted(self.pools.items())
        }
        return workers, pools

    def instances(self) -> list[Instance]:
        """Every process of every pool."""
        return [i for p in self.pools.values() for g in p.generations for i in g.instances.values()]

    def forget(self) -> None:
        """Drop every record (the backend killed and reaped every process itself)."""
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                gen.stopping = True
                gen.instances.clear()
                self._finish(pool, gen)
        self.by_pid.clear()


def wait_ready(
    pool: Pool,
    gen: Generation,
    report: Report,
    pump: Callable[[float], object],
    clock: Clock,
    *,
    also: Callable[[], bool] | None = None,
) -> None:
    """Wait until every process of a new generation is ready (and ``also``, a start-up health
    check, holds), running the backend's event pump meanwhile, with progress reports.

    Raises:
        TemporaryBackendError: the pool was stopped by rapid-fail protection (retried after its
            interval), or it did not become ready within ``startupTimeLimit``.
    """
    spec = gen.spec
    name = pool.name
    deadline = clock.monotonic() + spec.startup_time_limit_s
    last = ""
    while True:
        if pool.health.halted:
            raise TemporaryBackendError(
                f"worker/{name} was stopped: {pool.health.halted}",
                "Fix the pool, then change its definition or run: orchestrator reset " + name,
                delay_s=spec.rapid_fail.interval_s,
            )
        if gen.ready() and (also is None or also()):
            gen.ever_ready = True
            return
        now = clock.monotonic()
        if now >= deadline:
            raise TemporaryBackendError(
                f"worker/{name} did not become healthy within {spec.startup_time_limit_s:g}s",
                f"Last exit: {pool.health.last_exit or 'none'}.",
            )
        ready = gen.ready_count()
        message = (
            f"worker/{name}: {ready}/{gen.policy.processes} processes ready, "
            f"waiting up to {deadline - now:.0f}s"
        )
        if message != last:
            report(
                "health_wait",
                {"message": message, "pool": name, "ready": ready, "wanted": gen.policy.processes},
            )
            last = message
        pump(0.05)


def wait_until(
    done: Callable[[], bool],
    limit_s: float,
    pump: Callable[[float], object],
    clock: Clock,
    what: str,
) -> None:
    """Run the backend's event pump until ``done()`` holds.

    Raises:
        TemporaryBackendError: it did not within ``limit_s`` (``what`` names what was awaited).
    """
    deadline = clock.monotonic() + limit_s
    while not done():
        if clock.monotonic() >= deadline:
            raise TemporaryBackendError(f"{what}: not done within {limit_s:g}s")
        pump(0.05)
