"""Helpers for the Wine scenarios that drive ``HttpSysBackend`` through the real reconciler.

``build`` makes desired states from plain tuples (``tests.support.states`` needs hypothesis, which the
embeddable CPython does not have); ``Controller`` runs the backend's event pump on the main thread
while a reader thread collects stdin commands, like the daemon's loop would.
Runs under Windows CPython 3.13 inside Wine; standard library and the orchestrator package only.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable
from types import MappingProxyType

from orchestrator.backends.httpsys.backend import HttpSysBackend
from orchestrator.clock import SystemClock
from orchestrator.model import (
    DesiredState,
    Health,
    Key,
    Kind,
    RequestQueue,
    Resource,
    Session,
    UrlGroup,
    WorkerPool,
)
from orchestrator.model.desired import RapidFail
from orchestrator.reconcile.reconciler import Reconciler
from tests.wine.scenarios._common import emit

S = Key(Kind.SESSION, "main")


def boot_command(repo: str, script: str, *args: str) -> tuple[str, ...]:
    """A worker command: this python.exe running ``script`` through boot.py (sys.path fix-up)."""
    here = repo + "\\tests\\wine"
    return (sys.executable, here + "\\boot.py", repo, here + "\\scenarios\\" + script, *args)


def app(
    name: str,
    urls: Iterable[str],
    command: tuple[str, ...],
    *,
    health_path: str | None = None,
) -> list[Resource]:
    """A queue, a URL group and a one-process pool, all called ``name``."""
    q = Key(Kind.QUEUE, name)
    return [
        RequestQueue(key=q, session=S),
        UrlGroup(key=Key(Kind.URLGROUP, name), session=S, queue=q, urls=tuple(sorted(urls))),
        WorkerPool(
            key=Key(Kind.WORKER, name),
            session=S,
            queue=q,
            command=command,
            startup_time_limit_s=60.0,
            shutdown_time_limit_s=2.0,
            health=Health(path=health_path, interval_s=1.0, timeout_s=3.0),
            rapid_fail=RapidFail(max_crashes=3, interval_s=60.0),
        ),
    ]


def build(*apps: list[Resource]) -> DesiredState:
    """The session plus the given apps."""
    resources: dict[Key, Resource] = {S: Session(key=S)}
    for parts in apps:
        resources.update({r.key: r for r in parts})
    return DesiredState.of(MappingProxyType(resources), "0" * 64)


class Controller:
    """The backend, the reconciler, and stdin commands read on a thread."""

    def __init__(self) -> None:
        self.backend = HttpSysBackend(emit=self._event)
        self.reconciler = Reconciler(self.backend, SystemClock())
        self.commands: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def _event(event: str, **fields: object) -> None:
        if event in ("process_start", "process_exit", "queue_created", "pool_halted", "note"):
            emit("backend", name=event, **fields)

    def _read(self) -> None:
        for line in sys.stdin:
            if line.strip():
                self.commands.put(line.strip())
        self.commands.put(None)

    def apply(self, desired: DesiredState, label: str) -> None:
        """One reconcile pass, reported with whether a fresh plan is empty."""
        result = self.reconciler.reconcile_once(desired)
        emit(
            "applied",
            label=label,
            converged=result.converged,
            failed=[f"{o.step_id}: {o.error}" for o in result.failed],
            steps=[s.id for s in result.plan.steps],
            empty=self.reconciler.plan(desired).is_empty,
        )

    def next_command(self) -> str | None:
        """Pump the backend until a command (or end of input) arrives."""
        while True:
            try:
                return self.commands.get_nowait()
            except queue.Empty:
                self.backend.poll(0.1)
