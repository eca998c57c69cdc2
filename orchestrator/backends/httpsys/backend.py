"""The HTTP.sys backend: plan steps applied to http.sys, plus the worker processes that serve its queues.

Owns: ``HttpSysBackend`` (the ``Backend`` protocol: ``observe`` and ``apply`` dispatch, ``poll``,
``status``, ``reset``, ``shutdown``) and what its worker pools need of http.sys: the queue a process
starts on, the queue state that follows its pools (rapid-fail and pool stop set it Inactive, so
http.sys answers 503 per its verbosity) and the URL its health probe goes through. Supervision itself
(restarts, rapid-fail, escalation, probes' schedule and verdicts, recycling) is the shared
``supervise.driver.PoolDriver``, with ``launcher.PoolLauncher``. Sessions, queues and URL groups (and
``HttpInitialize``) are the ``HttpSysResources`` it owns; ``servicestate`` reads what http.sys itself
lists.
Must not import ``ctypes`` (``httpapi._ffi`` does), another backend, ``reconcile``, ``controller`` or
``cli``.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_module
import select
import sys
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType

from orchestrator.backends.base import Capabilities, Progress, Restarted
from orchestrator.backends.httpsys.launcher import (
    Launcher,
    LaunchSpec,
    PoolLauncher,
    ProbeFn,
    ProbeTarget,
    http_probe,
    launch_process,
    run_on_thread,
    worker_environment,
)
from orchestrator.backends.httpsys.resources import HttpSysResources
from orchestrator.backends.httpsys.rules import CHANGE_RULES
from orchestrator.backends.httpsys.sddl import SidResolver
from orchestrator.backends.httpsys.servicestate import ServiceStateReader, run_netsh
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import BackendError, PermanentBackendError, TemporaryBackendError
from orchestrator.httpapi._ffi import HttpApiError
from orchestrator.httpapi.binding import HttpSysBinding
from orchestrator.httpapi.capabilities import HttpSysCapabilities
from orchestrator.model.desired import WorkerPool
from orchestrator.model.ids import Kind
from orchestrator.model.live import LiveState
from orchestrator.plan.guarantees import HostGuarantees
from orchestrator.plan.steps import Op, Step
from orchestrator.supervise.driver import Generation, Pool, PoolDriver, wait_ready, wait_until

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
        user = self.controller_account or os.environ.get("USERNAME") or os.environ.get("USER")
        self.launcher = PoolLauncher(launcher or launch_process, self._launch_spec, user or "")
        self.driver = PoolDriver(
            self.launcher,
            self.clock,
            self.emit,
            on_change=self._pool_state_changed,
            on_gone=self._pool_gone,
            ready_grace_s=ready_grace_s,
        )
        self.probe: ProbeFn = probe or http_probe
        self.run_probe = run_probe or run_on_thread
        if servicestate is None and sys.platform == "win32" and not self.caps.is_wine:
            servicestate = run_netsh
        self.service_state = ServiceStateReader(servicestate, self.clock)
        self.sleep = sleep or time.sleep
        self.run_dir = os.path.abspath(run_dir) if run_dir else ""
        if self.run_dir:
            os.makedirs(self.run_dir, exist_ok=True)
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
        return Capabilities("httpsys", frozenset(features), notes, CHANGE_RULES)

    def guarantees(self) -> HostGuarantees:
        # http.sys enforces a queue ACL for any account; the processes all run as the controller's.
        user = self.launcher.user
        return HostGuarantees(
            user=user,
            no_identities=f"the httpsys backend runs every process as {user or 'the controller'}"
            " (per-pool identities are not implemented)",
            cgroup_limits=frozenset(),
            no_cgroups="the httpsys backend sets no resource limits (Job objects are not used)",
            sandboxes=False,
            listener=False,
        )

    @property
    def pools(self) -> dict[str, Pool]:
        """The supervised pools by name (the driver's records)."""
        return self.driver.pools

    # -- what the pools need of http.sys ------------------------------------------------------------
    def _launch_spec(self, spec: WorkerPool) -> LaunchSpec | None:
        """What a process of ``spec`` starts as: on its queue (``None``: being re-created)."""
        queue = self.queues.get(spec.queue.name)
        if queue is None:
            return None
        # Names are ignored under Wine: there the worker uses the queue handle it inherits.
        handle = None if self.caps.named_queues else queue.handle.handle
        return LaunchSpec(
            argv=spec.command,
            env=worker_environment(spec, queue.spec.key.name, handle),
            cwd=spec.cwd,
            inherit_handle=handle,
        )

    def _pool_state_changed(self, pool: Pool) -> None:
        """Halted or re-armed: the queue goes Inactive (503) or Active at once."""
        self.resources.refresh_queue_state(pool.spec.queue.name)

    def _pool_gone(self, pool: Pool) -> None:
        """A pool's last generation ended: its queue has lost a pool (stopped, as IIS calls it)
        unless another pool serves it. The next plan creates the pool again if it is wanted."""
        if self._closed:
            return
        queue = self.queues.get(pool.spec.queue.name)
        if queue is not None and not any(
            p.spec.queue == pool.spec.queue for p in self.pools.values() if not p.removed
        ):
            queue.stopped = True
            self.resources.refresh_queue_state(pool.spec.queue.name)

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
                # Its stopped generations took it out of the driver; it keeps its history.
                self.pools[pool.name] = pool
                gen = self.driver.start_generation(pool.name, pool.spec)
                self._wait_ready(pool, gen, report)

        return restart

    def _stop_pools_on(self, queue: str, report: Progress, reason: str) -> None:
        """Stop every pool on ``queue`` and wait for them (the queue is about to close)."""
        pools = [p for p in self.pools.values() if p.spec.queue.name == queue and p.generations]
        if not pools:
            return
        for pool in pools:
            for gen in list(pool.generations):
                self.driver.stop_generation(pool, gen, reason)
        limit = max(p.spec.shutdown_time_limit_s for p in pools) + 5.0
        self._wait(
            lambda: not any(p.generations for p in pools),
            limit,
            f"workers of queue/{queue} stopping",
        )

    # -- observe -----------------------------------------------------------------------------------
    def observe(self) -> LiveState:
        resources, faults = self.resources.observe(self.service_state.read())
        for name, pool in self.pools.items():
            if pool.removed or pool.active is None:
                continue
            resources[pool.spec.key] = pool.spec
            faults.extend(self.driver.faults(name))
        return LiveState(
            resources=MappingProxyType(resources), faults=tuple(faults), backend=self.name
        )

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
            gen = self.driver.update_in_place(name, spec)
            if gen is not None:
                self._wait_ready(pool, gen, report)
            self.resources.refresh_queue_state(spec.queue.name)
            return
        queue.stopped = False
        # A new definition re-arms a stopped pool (IIS); a failing new generation is stopped: with
        # nothing else serving, the queue answers 503 (stopped) until the next plan retries.
        self.driver.roll_over(
            name,
            spec,
            lambda pool, gen: self._wait_ready(pool, gen, report),
            keep_lone_failure=False,
        )
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
        self.driver.remove_pool(name, "removed from the manifest")
        limit = pool.spec.shutdown_time_limit_s + 5.0
        self._wait(lambda: self.driver.stopped(name), limit, f"worker/{name} stopping")

    def _wait_ready(self, pool: Pool, gen: Generation, report: Progress) -> None:
        wait_ready(pool, gen, report, self.poll, self.clock)

    def _wait(self, done: Callable[[], bool], limit_s: float, what: str) -> None:
        wait_until(done, limit_s, self.poll, self.clock, what)

    # -- the event pump --------------------------------------------------------------------------
    def poll(self, timeout_s: float, wake_fds: Iterable[int] = ()) -> set[int]:
        """Wait up to ``timeout_s`` for anything to do, do it, and return the ready ``wake_fds``.

        Services process exits (pidfds on Linux, polling elsewhere), restarts what is due, escalates
        stops, collects and schedules health probes, starts periodic recycles and keeps each queue's
        state in line with its pools (rapid-fail sets it Inactive).
        """
        wake = list(wake_fds)
        now = self.clock.monotonic()
        wait = max(0.0, min(timeout_s, self.driver.next_deadline() - now))
        exit_fds, polled = self.launcher.exit_fds()
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
        for pid, status in self.launcher.exits():
            self.driver.exited(pid, status)
        self.driver.tick()
        self._drain_probes()
        self._schedule_probes()
        wall = time.localtime(self.clock.wall())
        self.driver.recycles(wall.tm_hour * 60 + wall.tm_min)
        return woken

    # -- health probes -----------------------------------------------------------------------------
    def _schedule_probes(self) -> None:
        for pool in self.driver.due_probes():
            target = self.resources.probe_target(pool.spec)
            if target is None:
                self.driver.probe_skipped(pool.name)
                self.resources.note(
                    _no_progress,
                    f"worker/{pool.name}: no URL of its queue routes {pool.spec.health.path}; "
                    "health is process liveness only",
                    once=True,
                )
                continue
            self.run_probe(self._probe_job(pool.name, target))

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
            self.driver.probe_result(name, ok, detail)

    # -- operator actions ------------------------------------------------------------------------
    def reset(self, pool: str) -> bool:
        """Re-arm a pool stopped by rapid-fail protection; returns whether it was stopped."""
        return self.driver.reset(pool)

    def restart(self, pool: str, report: Progress | None = None) -> Restarted:
        """Recycle ``pool`` on demand, create-first: the path a changed definition takes."""
        record = self.pools.get(pool)
        if record is None or record.removed:
            raise KeyError(pool)
        progress: Progress = report or _no_progress
        old, gen = self.driver.restart(
            pool, lambda p, g: self._wait_ready(p, g, progress), keep_lone_failure=False
        )
        self.resources.refresh_queue_state(record.spec.queue.name)
        return Restarted(pool, gen.number, old, tuple(sorted(gen.instances)))

    def status(self) -> dict[str, object]:
        """What ``orchestrator status`` shows about this backend (the Linux backend's keys)."""
        workers, pools = self.driver.status()
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
        grace = max((p.spec.shutdown_time_limit_s for p in self.pools.values()), default=5.0)
        for name in list(self.pools):
            self.driver.remove_pool(name, "controller stopping")
        with contextlib.suppress(TemporaryBackendError):
            self._wait(lambda: not self.pools, grace + 2.0, "pools stopping")
        self.close()

    def close(self) -> None:
        """ASP.NET's order: remove the URLs and unbind (http.sys routes nothing more, so no
        request is handed to a process being killed), kill every process, then close the queues,
        the URL groups and the sessions, and ``HttpTerminate``."""
        if self._closed:
            return
        self._closed = True
        # Under Wine's http.sys, a teardown that killed the workers first (requests still routed
        # to their queues) hung in the next IOCTL, HttpRemoveUrlFromUrlGroup, in about one loaded
        # test run in ten; this order routes nothing to a dying process.
        self.resources.release_urls()
        self.launcher.kill_all(5.0, time.monotonic)
        self.driver.forget()
        self.resources.close()
