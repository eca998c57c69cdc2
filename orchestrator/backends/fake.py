"""An in-memory backend for unit tests of the pure reconciler, with fault injection.

Owns: ``FakeBackend`` and ``FakePool``. It keeps a ``dict[Key, Resource]``, records the steps it
applied, refuses a step whose references do not exist (as a real backend would), and can be told to
fail steps or to drift (an object changed or removed "by hand", a fault). It simulates supervision
too, without processes: each pool it holds runs its ``processes`` workers in memory; a pool told that
its workers cannot boot is halted at the next ``poll`` (as rapid-fail protection halts a pool whose
workers exit with the boot-failure code), ``reset`` or a new definition re-arms it, and ``poll`` waits
on the caller's descriptors with ``select``. It declares the baseline ``ChangeRules`` and behaves
by them: a create or replacement gives the object a new ``incarnations`` number, a restart a new
pool generation, and an in-place update keeps both. The same contract suite that it passes must pass against
the real backends. Must not import another backend, ``reconcile``, ``controller`` or ``cli``.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import MappingProxyType

from orchestrator.backends.base import Capabilities, Emit, Progress, Restarted
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import BackendError, TemporaryBackendError
from orchestrator.model.desired import RequestQueue, Resource, UrlGroup, WorkerPool
from orchestrator.model.ids import Key, Kind
from orchestrator.model.live import Fault, LiveState
from orchestrator.plan.guarantees import FULL, HostGuarantees
from orchestrator.plan.rules import BASELINE, ChangeRules
from orchestrator.plan.steps import Op, Step

#: The fake changes in place whatever the baseline does not force.
CHANGE_RULES: ChangeRules = BASELINE.extended("fake")

Failure = BackendError | Callable[[Step], BackendError | None]

#: Why the fake halts a pool whose workers cannot boot (the real backends' wording).
CANNOT_BOOT = "exited with code 3 (cannot boot)"


def _null_emit(event: str, **fields: object) -> None:
    return None


@dataclass
class FakePool:
    """A pool as the fake runs it: its definition, and whether it was halted and why."""

    spec: WorkerPool
    generation: int
    started_at: float
    halted: str = ""  # why it is stopped ("" when it runs)
    halted_at: float = 0.0
    restarts: int = 0
    last_exit: str = ""


class FakeBackend:
    """A dictionary that pretends to be a host."""

    def __init__(
        self,
        fail_on: dict[str, Failure] | None = None,
        *,
        clock: Clock | None = None,
        emit: Emit | None = None,
    ) -> None:
        self.store: dict[Key, Resource] = {}
        self.faults: list[Fault] = []
        self.applied_steps: list[str] = []
        self.fail_on: dict[str, Failure] = dict(fail_on or {})
        self.clock = clock or SystemClock()
        self.emit: Emit = emit or _null_emit
        self.pools: dict[str, FakePool] = {}
        #: Test hook: pools whose workers exit with the boot-failure code (halted at the next poll).
        self.cannot_boot: set[str] = set()
        self.generations = 0
        #: Each object's identity: a new number whenever it is created or replaced.
        self.incarnations: dict[Key, int] = {}
        self._made = 0
        self.closed = False
        #: Test hook: what ``guarantees`` reports (everything, unless a test says otherwise).
        self.host_guarantees: HostGuarantees = FULL

    @property
    def name(self) -> str:
        return "fake"

    def capabilities(self) -> Capabilities:
        return Capabilities(
            "fake", frozenset({"queue_state", "verbosity503", "acl"}), changes=CHANGE_RULES
        )

    def guarantees(self) -> HostGuarantees:
        return self.host_guarantees

    def observe(self) -> LiveState:
        return LiveState(
            resources=MappingProxyType(dict(self.store)),
            faults=tuple(self.faults),
            backend=self.name,
        )

    def apply(self, step: Step, progress: Progress | None = None) -> None:
        failure = self.fail_on.get(step.id)
        if failure is not None:
            error = failure(step) if callable(failure) else failure
            if error is not None:
                raise error
        if step.op is not Op.DELETE:
            assert step.after is not None
            missing = [r for r in step.after.refs() if r not in self.store]
            if missing:
                raise TemporaryBackendError(
                    f"{step.key}: {missing[0]} does not exist yet", key=str(step.key)
                )
            self.store[step.key] = step.after
            current = self.pools.get(step.key.name)
            if step.op is not Op.UPDATE or step.key not in self.incarnations:
                self._made += 1
                self.incarnations[step.key] = self._made
            if isinstance(step.after, WorkerPool):
                if step.op is Op.UPDATE and current is not None:
                    # In place: the same processes take the new definition, re-armed.
                    current.spec = step.after
                    current.halted, current.halted_at = "", 0.0
                else:
                    self._start(step.after)  # a new definition re-arms a halted pool
        else:
            self.store.pop(step.key, None)
            self.incarnations.pop(step.key, None)
            if step.key.kind is Kind.WORKER:
                self.pools.pop(step.key.name, None)
        self.faults = [f for f in self.faults if f.key != step.key]
        if progress is not None:
            progress("fake_applied", {"op": step.op.value})
        self.applied_steps.append(step.id)

    def _start(self, spec: WorkerPool) -> None:
        self.generations += 1
        self.pools[spec.key.name] = FakePool(spec, self.generations, self.clock.monotonic())

    def close(self) -> None:
        self.store.clear()
        self.pools.clear()
        self.closed = True

    # -- supervision (``orchestrator.backends.base.Supervision``) ------------------------------
    def poll(self, timeout_s: float, wake_fds: Iterable[int] = ()) -> set[int]:
        """Wait up to ``timeout_s`` for one of ``wake_fds``, then halt the pools that cannot boot."""
        wake = list(wake_fds)
        ready, _, _ = select.select(wake, [], [], max(0.0, timeout_s))
        now = self.clock.monotonic()
        for name, pool in sorted(self.pools.items()):
            if name in self.cannot_boot and not pool.halted:
                pool.restarts += 1
                pool.last_exit = CANNOT_BOOT
                pool.halted, pool.halted_at = CANNOT_BOOT, now
                self.emit("pool_halted", pool=name, reason=CANNOT_BOOT)
        return set(ready)

    def status(self) -> dict[str, object]:
        """The pools, their simulated workers (no pids), the queues and the URLs."""
        now = self.clock.monotonic()
        workers = [
            {
                "pool": name,
                "generation": pool.generation,
                "slot": slot,
                "pid": None,
                "uid": None,
                "user": pool.spec.user,
                "state": "ready",
                "uptime_s": round(now - pool.started_at, 1),
                "restarts": pool.restarts,
                "health": "ok",
                "last_exit": pool.last_exit,
            }
            for name, pool in sorted(self.pools.items())
            if not pool.halted
            for slot in range(pool.spec.processes)
        ]
        pools = {
            name: {
                "halted": pool.halted,
                "halted_since": self.clock.wall() - (now - pool.halted_at) if pool.halted else None,
                "restarts": pool.restarts,
                "last_exit": pool.last_exit,
                "generations": [pool.generation],
                "queue": pool.spec.queue.name,
            }
            for name, pool in sorted(self.pools.items())
        }
        resources = sorted(self.store.values(), key=lambda r: r.key)
        queues = [
            {
                "name": q.key.name,
                "state": str(q.state),
                "path": f"fake:{q.key.name}",
                "backlog": q.max_length,
                "clamped_from": None,
            }
            for q in resources
            if isinstance(q, RequestQueue)
        ]
        urls = sorted({u for g in resources if isinstance(g, UrlGroup) for u in g.urls})
        listener = {"pid": None, "pids": [], "user": None, "addresses": urls, "restarts": 0}
        return {
            "workers": workers,
            "pools": pools,
            "listener": {**listener, "stats": []},
            "queues": queues,
            "cgroups": False,
            "root": None,
        }

    def reset(self, pool: str) -> bool:
        """Re-arm a halted pool; returns whether it was halted."""
        record = self.pools.get(pool)
        if record is None or not record.halted:
            return False
        record.halted, record.halted_at = "", 0.0
        record.started_at = self.clock.monotonic()
        self.emit("pool_reset", pool=pool)
        return True

    def restart(self, pool: str, report: Progress | None = None) -> Restarted:
        """A new generation of the same definition (re-armed); no pids to report."""
        record = self.pools.get(pool)
        if record is None:
            raise KeyError(pool)
        self._start(record.spec)
        return Restarted(pool, self.generations, (), ())

    def shutdown(self, report: Progress | None = None) -> None:
        """Stop every pool and release everything; nothing to wait for, so nothing to report."""
        for name, pool in sorted(self.pools.items()):
            self.emit(
                "generation_stop",
                pool=name,
                generation=pool.generation,
                reason="controller stopping",
            )
        self.close()

    # -- test hooks: changes made "by hand" ---------------------------------------------------
    def mutate(self, resource: Resource) -> None:
        """Change an object behind the controller's back."""
        self.store[resource.key] = resource

    def remove(self, key: Key) -> None:
        """Delete an object behind the controller's back."""
        self.store.pop(key, None)
        if key.kind is Kind.WORKER:
            self.pools.pop(key.name, None)

    def inject_fault(self, fault: Fault) -> None:
        """Report a fault at the next observation."""
        self.faults.append(fault)
