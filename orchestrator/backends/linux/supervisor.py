"""The supervisor's driver: acts on the pure decisions of ``supervise.core`` for every pool.

Owns: ``Instance``, ``Generation``, ``PoolRunner`` and ``Supervisor``. A pool runs one or more
*generations* (a definition and its processes, in a cgroup of their own); an overlapped recycle starts
a new generation on the same queue socket, waits until it is ready, then stops the old one
(SIGTERM, ``shutdownTimeLimit``, then kill of its cgroup). Exits are seen at once through pidfds;
unknown children (we are the subreaper) are reaped but never counted. Everything here runs on the
controller's main thread: ``PR_SET_PDEATHSIG`` follows the thread that forked.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.backends.linux.cgroups import Cgroup, CgroupManager
from orchestrator.backends.linux.identity import Identity
from orchestrator.backends.linux.spawn import ProcessSpec, spawn
from orchestrator.clock import Clock
from orchestrator.model.desired import WorkerPool
from orchestrator.supervise import core

#: A process that did not report READY=1 counts as ready once it has stayed up this long.
READY_GRACE_S = 1.0
#: How often /proc is read for stopped (SIGSTOP'ed, hung) processes and memory use.
PROC_CHECK_S = 1.0

Emit = Callable[..., None]


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


@dataclass(slots=True)
class Instance:
    """One running process of a generation."""

    slot: int
    pid: int
    popen: subprocess.Popen[bytes]
    pidfd: int
    started_at: float
    started_wall: float
    cgroup: Cgroup | None
    ready: bool = False
    notified: bool = False
    term_at: float | None = None
    killed: bool = False
    stopped_since: float | None = None  # first seen in state T (stopped), for hang detection
    rss_bytes: int = 0

    def as_child(self) -> core.Child:
        """The pure core's view."""
        return core.Child(
            slot=self.slot,
            pid=self.pid,
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
    identity: Identity
    cgroup: Cgroup | None
    started_at: float
    instances: dict[int, Instance] = field(default_factory=dict)  # by pid
    restart_at: dict[int, float] = field(default_factory=dict)  # by slot
    stopping: bool = False
    stop_reason: str = ""
    ever_ready: bool = False
    oom_kills: int = 0  # OOM kills already accounted for

    def ready(self) -> bool:
        """Every wanted slot has a ready process."""
        ready_slots = {i.slot for i in self.instances.values() if i.ready and i.term_at is None}
        return all(slot in ready_slots for slot in range(self.policy.processes))


@dataclass(slots=True)
class PoolRunner:
    """One pool: its generations, crash history and probe record."""

    name: str
    queue_fd: Callable[[], int]
    queue_name: str
    generations: list[Generation] = field(default_factory=list)
    health: core.PoolHealth = field(default_factory=core.PoolHealth)
    probe: core.ProbeState = field(default_factory=core.ProbeState)
    next_probe_at: float = 0.0
    recycling: bool = False  # an overlapped recycle is in progress
    last_minute: int | None = None  # minute of the day at the last recycle check (schedule)

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


class Supervisor:
    """Starts, watches, restarts and stops the processes of every pool."""

    def __init__(
        self,
        clock: Clock,
        cgroups: CgroupManager,
        emit: Emit,
        environment: Callable[[WorkerPool, Identity], dict[str, str]],
        drop_privileges: bool,
        on_change: Callable[[str], None],
    ) -> None:
        self.clock = clock
        self.cgroups = cgroups
        self.emit = emit
        self.environment = environment
        self.drop = drop_privileges
        self.on_change = on_change  # a pool's serving state changed (halted, re-armed)
        self.pools: dict[str, PoolRunner] = {}
        self.by_pid: dict[int, tuple[PoolRunner, Generation, Instance]] = {}
        self.by_pidfd: dict[int, int] = {}
        self._numbers = itertools.count(1)
        self._instances = itertools.count(1)
        self._next_proc_check = 0.0

    # -- generations ------------------------------------------------------------------------
    def start_generation(
        self, name: str, spec: WorkerPool, identity: Identity, queue_fd: Callable[[], int]
    ) -> Generation:
        """Start a new generation of pool ``name`` (the pool is created on first use)."""
        pool = self.pools.get(name)
        if pool is None:
            pool = PoolRunner(name, queue_fd, spec.queue.name)
            self.pools[name] = pool
        pool.queue_fd = queue_fd
        pool.queue_name = spec.queue.name
        number = next(self._numbers)
        cgroup = self.cgroups.create(
            f"{name}/g{number}",
            memory_bytes=spec.limits.memory_bytes,
            pids=spec.limits.pids,
            cpu=spec.limits.cpu,
        )
        now = self.clock.monotonic()
        gen = Generation(number, spec, policy_of(spec), identity, cgroup, now)
        pool.generations.append(gen)
        self.emit("generation_start", pool=name, generation=number, processes=spec.processes)
        self._fill(pool, gen, now)
        return gen

    def update_in_place(self, name: str, spec: WorkerPool) -> None:
        """Apply a definition change that needs no restart (size, health, restart, recycling)."""
        pool = self.pools[name]
        gen = pool.active
        if gen is None:
            return
        gen.spec = spec
        gen.policy = policy_of(spec)
        self._fill(pool, gen, self.clock.monotonic())

    def stop_generation(self, pool: PoolRunner, gen: Generation, reason: str) -> None:
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
            # The listener hears of it before anyone else (the event refreshes `status`).
            self.on_change(name)
            self.emit("pool_reset", pool=name)
        return was

    # -- processes ---------------------------------------------------------------------------
    def _fill(self, pool: PoolRunner, gen: Generation, now: float) -> None:
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

    def _spawn(self, pool: PoolRunner, gen: Generation, slot: int, now: float) -> None:
        spec = gen.spec
        leaf = None
        if gen.cgroup is not None:
            leaf = self.cgroups.create(f"{pool.name}/g{gen.number}/i{next(self._instances)}")
        rlimits: dict[str, tuple[int, int]] = {"CORE": (0, 0)}
        if spec.limits.open_files is not None:
            rlimits["NOFILE"] = (spec.limits.open_files, spec.limits.open_files)
        process = ProcessSpec(
            argv=spec.command,
            env=self.environment(spec, gen.identity),
            cwd=spec.cwd,
            identity=gen.identity,
            drop=self.drop,
            fds=(pool.queue_fd(),),
            listen_names=(spec.queue.name,),
            cgroup=leaf,
            rlimits=rlimits,
        )
        gen.restart_at.pop(slot, None)
        try:
            popen = spawn(process)
        except OSError as exc:
            self.emit("spawn_failed", pool=pool.name, slot=slot, error=str(exc))
            gen.restart_at[slot] = now + core.restart_delay(1, gen.policy)
            return
        pidfd = os.pidfd_open(popen.pid)
        inst = Instance(slot, popen.pid, popen, pidfd, now, self.clock.wall(), leaf)
        gen.instances[popen.pid] = inst
        self.by_pid[popen.pid] = (pool, gen, inst)
        self.by_pidfd[pidfd] = popen.pid
        self.emit(
            "process_start",
            pool=pool.name,
            generation=gen.number,
            slot=slot,
            pid=popen.pid,
            user=gen.identity.user,
        )

    def _terminate(self, inst: Instance, now: float) -> None:
        if inst.term_at is not None:
            return
        inst.term_at = now
        with contextlib.suppress(ProcessLookupError):
            os.kill(inst.pid, signal.SIGTERM)
            os.kill(inst.pid, signal.SIGCONT)  # a stopped (hung) process must run to see TERM

    def _kill(self, inst: Instance) -> None:
        inst.killed = True
        if inst.cgroup is not None:
            self.cgroups.kill(inst.cgroup)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(inst.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(inst.pid, signal.SIGKILL)

    # -- events -----------------------------------------------------------------------------
    def pidfds(self) -> list[int]:
        """Fds that become readable when a process exits (the backend then reaps)."""
        return list(self.by_pidfd)

    def handle_status(self, pid: int, status: int) -> None:
        """A supervised process exited (reaped by the backend's waitpid loop): decide."""
        if pid in self.by_pid:
            self._exited(pid, status)

    def _exited(self, pid: int, status: int) -> None:
        pool, gen, inst = self.by_pid.pop(pid)
        self.by_pidfd.pop(inst.pidfd, None)
        os.close(inst.pidfd)
        inst.popen.returncode = os.waitstatus_to_exitcode(status)
        gen.instances.pop(pid, None)
        now = self.clock.monotonic()
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        oom = False
        if inst.cgroup is not None:
            # The limit sits on the generation's group, so that is where the kernel counts an OOM
            # kill (v1 memory.oom_control); the process's own leaf may count it too (v2).
            kills = inst.cgroup.oom_kills() + (gen.cgroup.oom_kills() if gen.cgroup else 0)
            oom = sig == signal.SIGKILL and kills > gen.oom_kills
            gen.oom_kills = kills
            # Leftovers of this process (a double-forked daemon) go with it.
            self.cgroups.kill(inst.cgroup)
            self.cgroups.remove(inst.cgroup, timeout_s=0.5)
        expected = inst.term_at is not None or gen.stopping
        info = core.ExitInfo(
            slot=inst.slot,
            at=now,
            started_at=inst.started_at,
            code=code,
            signal=sig,
            expected=expected,
            oom=oom,
        )
        self.emit(
            "process_exit",
            pool=pool.name,
            generation=gen.number,
            slot=inst.slot,
            pid=pid,
            exit=info.describe(),
            expected=expected,
            oom=oom,
        )
        if gen.stopping:
            if not gen.instances:
                self._finish(pool, gen)
            return
        decision = core.on_exit(pool.health, info, gen.policy)
        pool.health = decision.health
        if decision.halt is not None:
            for other in gen.instances.values():
                self._terminate(other, now)
            # The listener answers 503 before `status` (refreshed by the event) says halted.
            self.on_change(pool.name)
            self.emit("pool_halted", pool=pool.name, reason=decision.halt.reason)
            return
        if decision.restart_at is not None and inst.slot < gen.policy.processes:
            gen.restart_at[inst.slot] = decision.restart_at

    def _finish(self, pool: PoolRunner, gen: Generation) -> None:
        if gen.cgroup is not None:
            self.cgroups.kill(gen.cgroup)
            self.cgroups.remove(gen.cgroup)
        if gen in pool.generations:
            pool.generations.remove(gen)
        self.emit("generation_stopped", pool=pool.name, generation=gen.number)
        if not pool.generations and self.pools.get(pool.name) is pool:
            del self.pools[pool.name]

    def on_notify(self, pid: int, fields: dict[str, str]) -> None:
        """A process reported readiness (``READY=1``) on the notify socket."""
        entry = self.by_pid.get(pid)
        if entry is None or fields.get("READY") != "1":
            return
        pool, gen, inst = entry
        if not inst.ready:
            inst.ready = inst.notified = True
            gen.ever_ready = gen.ever_ready or gen.ready()
            self.emit("process_ready", pool=pool.name, pid=pid, via="notify")

    # -- time --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Restarts that are due, readiness by grace, escalation of stops, hang detection."""
        now = self.clock.monotonic()
        check_proc = now >= self._next_proc_check
        if check_proc:
            self._next_proc_check = now + PROC_CHECK_S
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                for inst in list(gen.instances.values()):
                    if (
                        not inst.ready
                        and inst.term_at is None
                        and now - inst.started_at >= READY_GRACE_S
                    ):
                        inst.ready = True
                        self.emit("process_ready", pool=pool.name, pid=inst.pid, via="grace")
                    if check_proc:
                        self._check_proc(pool, gen, inst, now)
                if not gen.stopping and not gen.ever_ready and gen.ready():
                    gen.ever_ready = True
                for cmd in core.escalate(
                    [i.as_child() for i in gen.instances.values() if not i.killed],
                    gen.policy.shutdown_time_limit_s,
                    now,
                ):
                    inst = gen.instances[cmd.pid]
                    self.emit(
                        "process_kill",
                        pool=pool.name,
                        pid=cmd.pid,
                        reason=f"still running {gen.policy.shutdown_time_limit_s:g}s after SIGTERM",
                    )
                    self._kill(inst)
                self._fill(pool, gen, now)

    def _check_proc(self, pool: PoolRunner, gen: Generation, inst: Instance, now: float) -> None:
        try:
            with open(f"/proc/{inst.pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return
        state, rss_pages = fields[0], int(fields[21])
        inst.rss_bytes = rss_pages * os.sysconf("SC_PAGE_SIZE")
        if state == "T" and inst.term_at is None:
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
        """The earliest time ``tick`` has something to do (restart, grace, escalation, checks)."""
        now = self.clock.monotonic()
        times = [self._next_proc_check] if self.by_pid else []
        for pool in self.pools.values():
            for gen in pool.generations:
                times.extend(gen.restart_at.values())
                for inst in gen.instances.values():
                    if not inst.ready:
                        times.append(inst.started_at + READY_GRACE_S)
                    if inst.term_at is not None and not inst.killed:
                        times.append(inst.term_at + gen.policy.shutdown_time_limit_s)
        return min(times, default=now + 3600.0)

    def close(self) -> None:
        """Kill everything at once (the graceful path is ``stop_generation``)."""
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                gen.stopping = True
                for inst in list(gen.instances.values()):
                    self._kill(inst)
        for pid in list(self.by_pid):
            pool, gen, inst = self.by_pid.pop(pid)
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(pid, 0)
                inst.popen.returncode = os.waitstatus_to_exitcode(status)
            if inst.popen.returncode is None:
                inst.popen.returncode = -9  # reaped elsewhere: tell Popen it is gone
            os.close(inst.pidfd)
            gen.instances.pop(pid, None)
        self.by_pidfd.clear()
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                self._finish(pool, gen)
