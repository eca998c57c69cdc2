"""The HTTP.sys backend: plan steps applied to http.sys, plus the worker processes that serve its queues.

Owns: ``HttpSysBackend`` (the ``Backend`` protocol: ``observe`` and ``apply`` dispatch, ``poll``,
``status``, ``reset``, ``shutdown``) and the supervision of worker pools with the pure
``supervise.core``: the records (``_Instance``, ``_Generation``, ``_Pool``), their driver (fill, spawn,
exit, tick: restart backoff, rapid-fail, escalation), health probes and recycling. Rapid-fail and pool
stop set the queue Inactive, so http.sys answers 503 per its verbosity. Sessions, queues and URL
groups (and ``HttpInitialize``) are the ``HttpSysResources`` it owns; processes start through
``launcher``; ``servicestate`` reads what http.sys itself lists.
Must not import ``ctypes`` (``httpapi._ffi`` does), another backend, ``reconcile``, ``controller`` or
``cli``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue as queue_module
import select
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from orchestrator.backends.base import Capabilities, Progress
from orchestrator.backends.httpsys.launcher import (
    Launcher,
    LaunchSpec,
    ProbeFn,
    ProbeTarget,
    WorkerProcess,
    http_probe,
    launch_process,
    run_on_thread,
    worker_environment,
)
from orchestrator.backends.httpsys.resources import HttpSysResources
from orchestrator.backends.httpsys.sddl import SidResolver
from orchestrator.backends.httpsys.servicestate import ServiceStateReader, run_netsh
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import BackendError, PermanentBackendError, TemporaryBackendError
from orchestrator.httpapi._ffi import HttpApiError
from orchestrator.httpapi.binding import HttpSysBinding
from orchestrator.httpapi.capabilities import HttpSysCapabilities
from orchestrator.model.desired import WorkerPool
from orchestrator.model.ids import Kind
from orchestrator.model.live import Fault, LiveState
from orchestrator.plan.steps import Op, Step
from orchestrator.supervise import core

__all__ = ["HttpSysBackend"]

Emit = Callable[..., None]

#: A process that has stayed up this long counts as ready (http.sys has no readiness channel).
READY_GRACE_S = 1.0
#: How often process exits are polled where no exit fd exists (Windows).
EXIT_POLL_S = 0.1
#: How often results of probes running on threads are collected.
PROBE_POLL_S = 0.25


def _null_emit(event: str, **fields: object) -> None:
    return None


def _no_progress(event: str, fields: dict[str, object]) -> None:
    return None


# --- supervision records ----------------------------------------------------------------------------
def policy_of(spec: WorkerPool) -> core.Policy:
    """The supervision policy of a pool definition (the same mapping as the Linux backend's)."""
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
class _Instance:
    slot: int
    process: WorkerProcess
    started_at: float
    queue_handle: int
    ready: bool = False
    term_at: float | None = None
    killed: bool = False

    def as_child(self) -> core.Child:
        return core.Child(
            slot=self.slot,
            pid=self.process.pid,
            started_at=self.started_at,
            ready=self.ready,
            term_at=self.term_at,
        )


@dataclass(slots=True)
class _Generation:
    number: int
    spec: WorkerPool
    policy: core.Policy
    started_at: float
    instances: dict[int, _Instance] = field(default_factory=dict)  # by pid
    restart_at: dict[int, float] = field(default_factory=dict)  # by slot
    stopping: bool = False
    stop_reason: str = ""
    ever_ready: bool = False

    def ready(self) -> bool:
        ready_slots = {i.slot for i in self.instances.values() if i.ready and i.term_at is None}
        return all(slot in ready_slots for slot in range(self.policy.processes))


@dataclass(slots=True)
class _Pool:
    name: str
    spec: WorkerPool
    generations: list[_Generation] = field(default_factory=list)
    health: core.PoolHealth = field(default_factory=core.PoolHealth)
    probe: core.ProbeState = field(default_factory=core.ProbeState)
    next_probe_at: float = 0.0
    probe_pending: bool = False
    recycling: bool = False
    last_minute: int | None = None
    removed: bool = False

    @property
    def active(self) -> _Generation | None:
        for gen in reversed(self.generations):
            if not gen.stopping:
                return gen
        return None

    @property
    def serving(self) -> _Generation | None:
        for gen in reversed(self.generations):
            if not gen.stopping and gen.ever_ready:
                return gen
        return self.active


# --- the backend ------------------------------------------------------------------------------------
class HttpSysBackend:
    """Server sessions, URL groups and request queues in http.sys; worker pools as processes."""

    def __init__(
        self,
        *,
        run_dir: str = "",
        emit: Emit | None = None,
        clock: Clock | None = None,
        binding: HttpSysBinding | None = None,
        capabilities: HttpSysCapabilities | None = None,
        sid_resolver: SidResolver | None = None,
        controller_account: str | None = None,
        launcher: Launcher | None = None,
        probe: ProbeFn | None = None,
        run_probe: Callable[[Callable[[], None]], None] | None = None,
        servicestate: Callable[[], str] | None = None,
        sleep: Callable[[float], None] | None = None,
        ready_grace_s: float = READY_GRACE_S,
    ) -> None:
        """Initialise the HTTP Server API of this process.

        Args:
            run_dir: the controller's run directory (created if missing).
            emit: structured event sink, ``emit(event, **fields)``.
            clock: time source (``SystemClock`` by default).
            binding: the HTTP Server API; ``RealBinding`` on Windows, a ``RecordingBinding`` in tests.
            capabilities: what this host supports; detected on Windows, full Windows elsewhere.
            sid_resolver: turns ACL principals into SIDs (``LookupAccountNameW`` on Windows).
            controller_account: the account the controller (and so every worker) runs as; it is
                granted the queue when a queue names no ACL (``USERDOMAIN\\USERNAME`` on Windows).
            launcher: starts worker processes (``launch_process`` by default).
            probe: runs one health probe (``http_probe`` by default).
            run_probe: runs a probe job (on a daemon thread by default; tests run it inline).
            servicestate: returns ``netsh http show servicestate`` text; used on real Windows only.
            sleep: how ``poll`` waits when it has no descriptor to wait on.
            ready_grace_s: how long a process must stay up to count as ready.

        Raises:
            PermanentBackendError: not on Windows and no binding given, or ``HttpInitialize`` failed.
        """
        self.clock: Clock = clock or SystemClock()
        self.emit: Emit = emit or _null_emit
        self.resources = HttpSysResources(
            binding=binding,
            capabilities=capabilities,
            sid_resolver=sid_resolver,
            controller_account=controller_account,
            emit=self.emit,
            pool_halts=self._pool_halts,
            stop_pools=self._stop_pools_on,
            keep_pools=self._pools_to_restart,
        )
        self.caps = self.resources.caps
        self.controller_account = self.resources.controller_account
        # The resources' queue records (the same dict): workers are started on these queues.
        self.queues = self.resources.queues
        self.launcher: Launcher = launcher or launch_process
        self.probe: ProbeFn = probe or http_probe
        self.run_probe = run_probe or run_on_thread
        if servicestate is None and sys.platform == "win32" and not self.caps.is_wine:
            servicestate = run_netsh
        self.service_state = ServiceStateReader(servicestate, self.clock)
        self.sleep = sleep or time.sleep
        self.ready_grace_s = ready_grace_s
        self.run_dir = os.path.abspath(run_dir) if run_dir else ""
        if self.run_dir:
            os.makedirs(self.run_dir, exist_ok=True)
        self.pools: dict[str, _Pool] = {}
        self._numbers = itertools.count(1)
        self._probe_results: queue_module.SimpleQueue[tuple[str, bool, str]] = (
            queue_module.SimpleQueue()
        )
        self._closed = False

    @property
    def name(self) -> str:
        return "httpsys"

    def capabilities(self) -> Capabilities:
        features = set(self.caps.features()) | {"health_probe"}
        notes = (
            *self.caps.notes(),
            "workers run under the controller's account (per-pool identities are not implemented)",
            "no resource limits (Job objects are not used)",
        )
        return Capabilities("httpsys", frozenset(features), notes)

    # -- what the resources ask of the pools ------------------------------------------------------
    def _pool_halts(self, queue: str) -> list[bool]:
        """For each pool serving ``queue`` (not being removed): whether rapid-fail stopped it."""
        return [
            bool(p.health.halted)
            for p in self.pools.values()
            if not p.removed and p.spec.queue.name == queue
        ]

    def _pools_to_restart(self, queue: str) -> Callable[[Progress], None]:
        """The pools serving ``queue`` now, and a function that starts them again (re-created queue)."""
        pools = [p for p in self.pools.values() if not p.removed and p.spec.queue.name == queue]

        def restart(report: Progress) -> None:
            for pool in pools:
                self.pools[pool.name] = pool  # its stopped generations took it out
                gen = self._start_generation(pool, pool.spec)
                self._wait_ready(pool, gen, report)

        return restart

    # -- observe -----------------------------------------------------------------------------------
    def observe(self) -> LiveState:
        resources, faults = self.resources.observe(self.service_state.read())
        for pool in self.pools.values():
            if pool.removed or pool.active is None:
                continue
            resources[pool.spec.key] = pool.spec
            faults.extend(self._pool_faults(pool))
        return LiveState(
            resources=MappingProxyType(resources), faults=tuple(faults), backend=self.name
        )

    def _pool_faults(self, pool: _Pool) -> list[Fault]:
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
        assert gen is not None
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

    # -- apply -------------------------------------------------------------------------------------
    def apply(self, step: Step, progress: Progress | None = None) -> None:
        report: Progress = progress or _no_progress
        handlers = {
            Kind.SESSION: self.resources.apply_session,
            Kind.QUEUE: self.resources.apply_queue,
            Kind.URLGROUP: self.resources.apply_group,
            Kind.WORKER: self._apply_pool,
        }
        try:
            handlers[step.key.kind](step, report)
        except BackendError:
            raise
        except HttpApiError as exc:
            raise TemporaryBackendError(
                f"{step.key}: {exc.function} failed with {exc.name} ({exc.code})",
                "http.sys refused the call; the step is retried with backoff.",
                key=str(step.key),
            ) from exc
        except ValueError as exc:
            raise PermanentBackendError(f"{step.key}: {exc}", key=str(step.key)) from exc
        self.service_state.forget()

    # worker pools
    def _apply_pool(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op is Op.DELETE:
            self._delete_pool(name, report)
            return
        assert isinstance(step.after, WorkerPool)
        spec = step.after
        queue = self.queues.get(spec.queue.name)
        if queue is None:
            raise TemporaryBackendError(f"worker/{name}: {spec.queue} does not exist yet")
        self._check_pool(spec, report)
        pool = self.pools.get(name)
        if step.op is Op.UPDATE and pool is not None and not pool.removed and pool.active:
            pool.spec = spec
            pool.health = core.reset(pool.health)
            gen = pool.active
            gen.spec = spec
            gen.policy = policy_of(spec)
            gen.restart_at.clear()
            self._fill(pool, gen, self.clock.monotonic())
            self._wait_ready(pool, gen, report)
            self.resources.refresh_queue_state(spec.queue.name)
            return
        if pool is None:
            pool = _Pool(name, spec)
            self.pools[name] = pool
        pool.removed = False
        pool.spec = spec
        pool.health = core.reset(pool.health)  # a new definition re-arms a stopped pool (IIS)
        pool.recycling = False
        queue.stopped = False
        old = [g for g in pool.generations if not g.stopping]
        gen = self._start_generation(pool, spec)
        try:
            self._wait_ready(pool, gen, report)
        except BackendError as exc:
            self._stop_generation(pool, gen, "did not become ready")
            if old:
                raise PermanentBackendError(
                    f"worker/{name}: the new processes did not become healthy; the old ones keep "
                    "serving",
                    exc.summary + ". Fix the pool's definition, or run: orchestrator reset " + name,
                ) from exc
            raise
        for previous in old:
            self._stop_generation(pool, previous, "replaced by a new definition")
        self.resources.refresh_queue_state(spec.queue.name)

    def _check_pool(self, spec: WorkerPool, report: Progress) -> None:
        name = spec.key.name
        if spec.user != "auto" or spec.group is not None or spec.groups:
            raise PermanentBackendError(
                f"worker/{name}: running a pool under its own account is not implemented by the "
                "httpsys backend",
                "Workers run under the controller's account: set user: auto (and no group), or "
                "use the linux backend.",
            )
        limits = spec.limits
        if any(
            v is not None for v in (limits.memory_bytes, limits.pids, limits.cpu, limits.open_files)
        ):
            self.resources.note(
                report, f"worker/{name}: resource limits are not applied by the httpsys backend"
            )

    def _delete_pool(self, name: str, report: Progress) -> None:
        pool = self.pools.get(name)
        if pool is None:
            return
        pool.removed = True
        for gen in list(pool.generations):
            self._stop_generation(pool, gen, "removed from the manifest")
        if not pool.generations and self.pools.get(name) is pool:
            del self.pools[name]
        limit = pool.spec.shutdown_time_limit_s + 5.0
        self._wait(lambda: name not in self.pools, limit, report, f"worker/{name} stopping")
        queue = self.queues.get(pool.spec.queue.name)
        if queue is not None and not any(
            p.spec.queue.name == pool.spec.queue.name for p in self.pools.values() if not p.removed
        ):
            queue.stopped = True  # IIS: a stopped pool's queue answers 503
            self.resources.refresh_queue_state(queue.spec.key.name)

    def _stop_pools_on(self, queue: str, report: Progress, reason: str) -> None:
        pools = [p for p in self.pools.values() if p.spec.queue.name == queue and p.generations]
        if not pools:
            return
        for pool in pools:
            for gen in list(pool.generations):
                self._stop_generation(pool, gen, reason)
        limit = max(p.spec.shutdown_time_limit_s for p in pools) + 5.0
        self._wait(
            lambda: not any(p.generations for p in pools),
            limit,
            report,
            f"workers of queue/{queue} stopping",
        )

    def _wait_ready(self, pool: _Pool, gen: _Generation, report: Progress) -> None:
        spec = gen.spec
        name = pool.name
        deadline = self.clock.monotonic() + spec.startup_time_limit_s
        last = ""
        while True:
            if pool.health.halted:
                raise TemporaryBackendError(
                    f"worker/{name} was stopped: {pool.health.halted}",
                    "Fix the pool, then change its definition or run: orchestrator reset " + name,
                    delay_s=spec.rapid_fail.interval_s,
                )
            if gen.ready():
                gen.ever_ready = True
                return
            now = self.clock.monotonic()
            if now >= deadline:
                raise TemporaryBackendError(
                    f"worker/{name} did not become healthy within {spec.startup_time_limit_s:g}s",
                    f"Last exit: {pool.health.last_exit or 'none'}.",
                )
            ready = sum(1 for i in gen.instances.values() if i.ready)
            message = (
                f"worker/{name}: {ready}/{gen.policy.processes} processes ready, "
                f"waiting up to {deadline - now:.0f}s"
            )
            if message != last:
                report(
                    "health_wait",
                    {
                        "message": message,
                        "pool": name,
                        "ready": ready,
                        "wanted": gen.policy.processes,
                    },
                )
                last = message
            self.poll(0.05)

    def _wait(self, done: Callable[[], bool], limit_s: float, report: Progress, what: str) -> None:
        deadline = self.clock.monotonic() + limit_s
        while not done():
            if self.clock.monotonic() >= deadline:
                raise TemporaryBackendError(f"{what}: not done within {limit_s:g}s")
            self.poll(0.05)

    # -- processes ---------------------------------------------------------------------------------
    def _start_generation(self, pool: _Pool, spec: WorkerPool) -> _Generation:
        now = self.clock.monotonic()
        gen = _Generation(next(self._numbers), spec, policy_of(spec), now)
        pool.generations.append(gen)
        self.emit(
            "generation_start", pool=pool.name, generation=gen.number, processes=spec.processes
        )
        self._fill(pool, gen, now)
        return gen

    def _stop_generation(self, pool: _Pool, gen: _Generation, reason: str) -> None:
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

    def _finish(self, pool: _Pool, gen: _Generation) -> None:
        if gen in pool.generations:
            pool.generations.remove(gen)
        self.emit("generation_stopped", pool=pool.name, generation=gen.number)
        if not pool.generations and self.pools.get(pool.name) is pool:
            # Nothing runs: the next plan creates it again if it is still wanted. Its queue has
            # lost a pool (stopped, as IIS calls it) unless another pool serves it.
            del self.pools[pool.name]
            queue = self.queues.get(pool.spec.queue.name)
            if queue is not None and not any(
                p.spec.queue == pool.spec.queue for p in self.pools.values() if not p.removed
            ):
                queue.stopped = True
                self.resources.refresh_queue_state(pool.spec.queue.name)

    def _fill(self, pool: _Pool, gen: _Generation, now: float) -> None:
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

    def _spawn(self, pool: _Pool, gen: _Generation, slot: int, now: float) -> None:
        spec = gen.spec
        gen.restart_at.pop(slot, None)
        queue = self.queues.get(spec.queue.name)
        if queue is None:
            gen.restart_at[slot] = now + 1.0  # its queue is being re-created
            return
        # Names are ignored under Wine: there the worker uses the queue handle it inherits.
        handle = None if self.caps.named_queues else queue.handle.handle
        launch = LaunchSpec(
            argv=spec.command,
            env=worker_environment(spec, queue.spec.key.name, handle),
            cwd=spec.cwd,
            inherit_handle=handle,
        )
        try:
            process = self.launcher(launch)
        except OSError as exc:
            self.emit("spawn_failed", pool=pool.name, slot=slot, error=str(exc))
            # A command that cannot start is a crash like any other: backoff, then rapid-fail.
            info = core.ExitInfo(slot=slot, at=now, started_at=now, code=127)
            self._decide(pool, gen, info)
            return
        inst = _Instance(slot, process, now, queue.handle.handle)
        gen.instances[process.pid] = inst
        self.emit(
            "process_start", pool=pool.name, generation=gen.number, slot=slot, pid=process.pid
        )

    def _terminate(self, inst: _Instance, now: float) -> None:
        if inst.term_at is not None:
            return
        inst.term_at = now
        inst.process.terminate()

    def _exited(self, pool: _Pool, gen: _Generation, inst: _Instance, code: int) -> None:
        pid = inst.process.pid
        gen.instances.pop(pid, None)
        inst.process.release()
        now = self.clock.monotonic()
        expected = inst.term_at is not None or gen.stopping
        info = core.ExitInfo(
            slot=inst.slot,
            at=now,
            started_at=inst.started_at,
            code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            expected=expected,
        )
        self.emit(
            "process_exit",
            pool=pool.name,
            generation=gen.number,
            slot=inst.slot,
            pid=pid,
            exit=info.describe(),
            expected=expected,
        )
        if gen.stopping:
            if not gen.instances:
                self._finish(pool, gen)
            return
        self._decide(pool, gen, info)

    def _decide(self, pool: _Pool, gen: _Generation, info: core.ExitInfo) -> None:
        decision = core.on_exit(pool.health, info, gen.policy)
        pool.health = decision.health
        if decision.halt is not None:
            self.emit("pool_halted", pool=pool.name, reason=decision.halt.reason)
            now = self.clock.monotonic()
            for other in pool.generations:
                for inst in other.instances.values():
                    self._terminate(inst, now)
            self.resources.refresh_queue_state(pool.spec.queue.name)
            return
        if decision.restart_at is not None and info.slot < gen.policy.processes:
            gen.restart_at[info.slot] = decision.restart_at

    def _tick(self) -> None:
        now = self.clock.monotonic()
        for pool in list(self.pools.values()):
            for gen in list(pool.generations):
                for inst in list(gen.instances.values()):
                    code = inst.process.poll()
                    if code is not None:
                        self._exited(pool, gen, inst, code)
                    elif (
                        not inst.ready
                        and inst.term_at is None
                        and now - inst.started_at >= self.ready_grace_s
                    ):
                        inst.ready = True
                        self.emit("process_ready", pool=pool.name, pid=inst.process.pid)
                if not gen.stopping and not gen.ever_ready and gen.ready():
                    gen.ever_ready = True
                for cmd in core.escalate(
                    [i.as_child() for i in gen.instances.values() if not i.killed],
                    gen.policy.shutdown_time_limit_s,
                    now,
                ):
                    inst = gen.instances[cmd.pid]
                    inst.killed = True
                    self.emit(
                        "process_kill",
                        pool=pool.name,
                        pid=cmd.pid,
                        reason=f"still running {gen.policy.shutdown_time_limit_s:g}s after stop",
                    )
                    inst.process.kill()
                self._fill(pool, gen, now)

    def _next_deadline(self) -> float:
        now = self.clock.monotonic()
        times = [now + 3600.0]
        for pool in self.pools.values():
            serving = pool.serving
            if (
                pool.spec.health.path
                and not (pool.removed or pool.health.halted or pool.probe_pending)
                and serving is not None
                and serving.ever_ready
            ):
                times.append(pool.next_probe_at)
            for gen in pool.generations:
                times.extend(gen.restart_at.values())
                for inst in gen.instances.values():
                    if not inst.ready:
                        times.append(inst.started_at + self.ready_grace_s)
                    if inst.term_at is not None and not inst.killed:
                        times.append(inst.term_at + gen.policy.shutdown_time_limit_s)
        return min(times)

    # -- the event pump --------------------------------------------------------------------------
    def poll(self, timeout_s: float, wake_fds: Iterable[int] = ()) -> set[int]:
        """Wait up to ``timeout_s`` for anything to do, do it, and return the ready ``wake_fds``.

        Services process exits (pidfds on Linux, polling elsewhere), restarts what is due, escalates
        stops, collects and schedules health probes, starts periodic recycles and keeps each queue's
        state in line with its pools (rapid-fail sets it Inactive).
        """
        wake = list(wake_fds)
        now = self.clock.monotonic()
        wait = max(0.0, min(timeout_s, self._next_deadline() - now))
        exit_fds: list[int] = []
        polled = False
        for pool in self.pools.values():
            for gen in pool.generations:
                for inst in gen.instances.values():
                    fd = inst.process.exit_fd()
                    if fd is None:
                        polled = True
                    else:
                        exit_fds.append(fd)
        if polled:
            wait = min(wait, EXIT_POLL_S)
        if any(p.probe_pending for p in self.pools.values()):
            wait = min(wait, PROBE_POLL_S)
        woken: set[int] = set()
        fds = [*wake, *exit_fds]
        if fds:
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except (OSError, ValueError):
                ready = []
                self.sleep(wait)
            wanted = set(wake)
            woken = {fd for fd in ready if fd in wanted}
        elif wait > 0:
            self.sleep(wait)
        self._tick()
        self._drain_probes()
        self._schedule_probes()
        self._recycles()
        return woken

    # -- health probes -----------------------------------------------------------------------------
    def _schedule_probes(self) -> None:
        now = self.clock.monotonic()
        for name, pool in self.pools.items():
            spec = pool.spec
            if spec.health.path is None or pool.removed or pool.health.halted or pool.probe_pending:
                continue
            gen = pool.serving
            if gen is None or not gen.ever_ready or now < pool.next_probe_at:
                continue
            pool.next_probe_at = now + spec.health.interval_s
            target = self.resources.probe_target(spec)
            if target is None:
                self.resources.note(
                    _no_progress,
                    f"worker/{name}: no URL of its queue routes {spec.health.path}; "
                    "health is process liveness only",
                    once=True,
                )
                continue
            pool.probe_pending = True
            self.run_probe(self._probe_job(name, target))

    def _probe_job(self, name: str, target: ProbeTarget) -> Callable[[], None]:
        def job() -> None:
            try:
                ok, detail = self.probe(target)
            except Exception as exc:  # a probe must never take the controller down
                ok, detail = False, f"probe error: {exc!r}"
            self._probe_results.put((name, ok, detail))

        return job

    def _drain_probes(self) -> None:
        while True:
            try:
                name, ok, detail = self._probe_results.get_nowait()
            except queue_module.Empty:
                return
            pool = self.pools.get(name)
            if pool is None:
                continue
            pool.probe_pending = False
            gen = pool.active
            if gen is None or pool.removed:
                continue
            pool.probe, replace = core.probe_verdict(
                pool.probe, ok, detail, self.clock.monotonic(), gen.policy
            )
            if not ok:
                self.emit("probe_failed", pool=name, detail=detail, failures=pool.probe.failures)
            if replace and not pool.recycling:
                self.emit("pool_unhealthy", pool=name, detail=detail)
                self._start_recycle(pool, f"unhealthy: {detail}")

    # -- recycling ------------------------------------------------------------------------------
    def _start_recycle(self, pool: _Pool, reason: str) -> None:
        pool.recycling = True
        self.emit("recycle_start", pool=pool.name, reason=reason)
        self._start_generation(pool, pool.spec)

    def _recycles(self) -> None:
        now = self.clock.monotonic()
        wall = time.localtime(self.clock.wall())
        minute = wall.tm_hour * 60 + wall.tm_min
        for pool in list(self.pools.values()):
            if pool.removed:
                continue
            active = pool.active
            if pool.recycling and active is not None:
                older = [g for g in pool.generations if g is not active and not g.stopping]
                if active.ready():
                    active.ever_ready = True
                    for gen in older:
                        self._stop_generation(pool, gen, "recycled")
                    pool.recycling = False
                    self.emit("recycle_done", pool=pool.name, generation=active.number)
                elif now - active.started_at > pool.spec.startup_time_limit_s or pool.health.halted:
                    self._stop_generation(pool, active, "recycle did not become ready")
                    pool.recycling = False
                    self.emit("recycle_failed", pool=pool.name)
                continue
            serving = pool.serving
            if serving is None or pool.health.halted:
                continue
            before = pool.last_minute if pool.last_minute is not None else minute
            pool.last_minute = minute
            reason = core.recycle_reason(
                serving.started_at,
                now,
                [i.as_child() for i in serving.instances.values()],
                serving.policy,
                wall_minutes_before=before,
                wall_minutes_now=minute,
            )
            if reason:
                self._start_recycle(pool, reason)

    # -- operator actions ------------------------------------------------------------------------
    def reset(self, pool: str) -> bool:
        """Re-arm a pool stopped by rapid-fail protection; returns whether it was stopped."""
        record = self.pools.get(pool)
        if record is None:
            return False
        was = bool(record.health.halted)
        record.health = core.reset(record.health)
        gen = record.active
        if gen is not None:
            gen.restart_at.clear()
            self._fill(record, gen, self.clock.monotonic())
        if was:
            self.emit("pool_reset", pool=pool)
            self.resources.refresh_queue_state(record.spec.queue.name)
        return was

    def status(self) -> dict[str, object]:
        """What ``orchestrator status`` shows about this backend (the Linux backend's keys)."""
        now = self.clock.monotonic()
        user = self.controller_account or os.environ.get("USERNAME") or os.environ.get("USER")
        workers = []
        for name, pool in sorted(self.pools.items()):
            for gen in pool.generations:
                for inst in sorted(gen.instances.values(), key=lambda i: i.slot):
                    workers.append(
                        {
                            "pool": name,
                            "generation": gen.number,
                            "slot": inst.slot,
                            "pid": inst.process.pid,
                            "uid": None,
                            "user": user,
                            "state": "stopping"
                            if inst.term_at is not None or gen.stopping
                            else ("ready" if inst.ready else "starting"),
                            "uptime_s": round(now - inst.started_at, 1),
                            "restarts": pool.health.restarts,
                            "health": pool.probe.last or ("ok" if inst.ready else ""),
                            "last_exit": pool.health.last_exit,
                        }
                    )
        pools = {
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
        return {
            "workers": workers,
            "pools": pools,
            **self.resources.status(self.service_state.read()),
            "cgroups": False,
            "root": None,
            "wine": self.caps.wine_version,
            "notes": list(self.capabilities().notes),
        }

    def shutdown(self, report: Progress | None = None) -> None:
        """Graceful stop: pools stop (CTRL_BREAK/SIGTERM, ``shutdownTimeLimit``, kill), then the
        URLs, queues, groups and sessions are released."""
        progress: Progress = report or _no_progress
        grace = max((p.spec.shutdown_time_limit_s for p in self.pools.values()), default=5.0)
        for pool in list(self.pools.values()):
            pool.removed = True
            for gen in list(pool.generations):
                self._stop_generation(pool, gen, "controller stopping")
        with contextlib.suppress(TemporaryBackendError):
            self._wait(lambda: not self.pools, grace + 2.0, progress, "pools stopping")
        self.close()

    def close(self) -> None:
        """Kill every process, then (ASP.NET's order) remove URLs and unbind, close the queues, the
        URL groups and the sessions, and ``HttpTerminate``."""
        if self._closed:
            return
        self._closed = True
        instances = [
            i for p in self.pools.values() for g in p.generations for i in g.instances.values()
        ]
        for inst in instances:
            inst.process.kill()
        deadline = time.monotonic() + 5.0
        for inst in instances:
            while inst.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            inst.process.release()
        self.pools.clear()
        self.resources.close()
