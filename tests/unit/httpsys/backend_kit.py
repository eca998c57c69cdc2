"""Test kit for ``HttpSysBackend`` on Linux: scripted worker processes, a fake machine, virtual time.

``Kit`` builds a backend over ``FakeHttpSys`` (Windows or Wine 8 flavour) with a ``FakeClock`` that
``poll`` advances instead of sleeping, a launcher whose processes the test kills at will, and a SID
table for ACLs. ``apply`` runs the real ``Reconciler``.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from orchestrator.backends.httpsys.backend import HttpSysBackend
from orchestrator.backends.httpsys.launcher import LaunchSpec, ProbeTarget
from orchestrator.backends.httpsys.sddl import mapping_resolver
from orchestrator.clock import FakeClock
from orchestrator.httpapi import _ffi
from orchestrator.httpapi.capabilities import capabilities_for
from orchestrator.model import DesiredState
from orchestrator.reconcile.reconciler import Reconciler, Result
from tests.support.httpsys_fake import FakeHttpSys, FakeQueue, Flavor, RecordingBinding

CONTROLLER = "HOST\\orchestrator"
SIDS = {
    CONTROLLER: "S-1-5-21-1-2-3-1001",
    "alice": "S-1-5-21-1-2-3-1002",
    "staff": "S-1-5-21-1-2-3-513",
}
PID = 4242


@dataclass
class FakeProcess:
    """A worker process the test controls: ``exit(code)``; stop requests are recorded."""

    pid: int
    spec: LaunchSpec
    code: int | None = None
    terminated: int = 0
    killed: int = 0
    #: Exit at once when asked to stop (a well-behaved worker); False ignores the request.
    obeys: bool = True

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.terminated += 1
        if self.obeys and self.code is None:
            self.code = -15

    def kill(self) -> None:
        self.killed += 1
        if self.code is None:
            self.code = -9

    def exit_fd(self) -> int | None:
        return None

    def release(self) -> None:
        return None

    def exit(self, code: int = 1) -> None:
        self.code = code


@dataclass
class FakeLauncher:
    """Starts ``FakeProcess``es; ``fail`` makes launches raise (a command that cannot start)."""

    started: list[FakeProcess] = field(default_factory=list)
    fail: bool = False
    _pids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))

    def __call__(self, spec: LaunchSpec) -> FakeProcess:
        if self.fail:
            raise FileNotFoundError(2, "No such file or directory", spec.argv[0])
        process = FakeProcess(next(self._pids), spec)
        self.started.append(process)
        return process

    def running(self, argv0: str | None = None) -> list[FakeProcess]:
        return [
            p for p in self.started if p.code is None and (argv0 is None or p.spec.argv[0] == argv0)
        ]


class Kit:
    """A backend on a fake machine, in virtual time."""

    def __init__(
        self,
        flavor: Flavor = Flavor.WINDOWS,
        *,
        servicestate: str | None = None,
        probe_results: list[tuple[bool, str]] | None = None,
    ) -> None:
        self.system = FakeHttpSys(flavor)
        self.binding = RecordingBinding(self.system, pid=PID)
        self.clock = FakeClock()
        self.launcher = FakeLauncher()
        self.events: list[tuple[str, dict[str, object]]] = []
        self.probes: list[ProbeTarget] = []
        self.probe_results = probe_results if probe_results is not None else []
        self.servicestate_text = servicestate
        wine = flavor is Flavor.WINE8
        self.backend = HttpSysBackend(
            emit=lambda event, **fields: self.events.append((event, fields)),
            clock=self.clock,
            binding=self.binding,
            capabilities=capabilities_for("8.0" if wine else None),
            sid_resolver=mapping_resolver(SIDS),
            controller_account=CONTROLLER,
            launcher=self.launcher,
            probe=self._probe,
            run_probe=lambda job: job(),
            servicestate=(lambda: self.servicestate_text or "")
            if servicestate is not None
            else None,
            sleep=self.clock.advance,
            ready_grace_s=0.0,
        )
        self.reconciler = Reconciler(self.backend, self.clock, rng=random.Random(7))

    def _probe(self, target: ProbeTarget) -> tuple[bool, str]:
        self.probes.append(target)
        return self.probe_results.pop(0) if self.probe_results else (True, "HTTP 200")

    def apply(self, desired: DesiredState) -> Result:
        return self.reconciler.reconcile_once(desired)

    def converge(self, desired: DesiredState) -> Result:
        result = self.apply(desired)
        assert not result.failed, result.failed
        assert self.reconciler.plan(desired).is_empty, self.reconciler.plan(desired).steps
        return result

    def mark(self) -> int:
        """The current position in the call log (for ``calls_since``)."""
        return len(self.system.calls)

    def calls_since(self, mark: int) -> list[str]:
        return [c.function for c in self.system.calls[mark:]]

    def queue(self, name: str) -> FakeQueue:
        found = self.system.queue_named(name)
        assert found is not None, name
        return found

    def state_of(self, name: str) -> _ffi.EnabledState:
        return _ffi.EnabledState(self.queue(name).properties[_ffi.ServerProperty.STATE])

    def event_names(self) -> list[str]:
        return [e for e, _ in self.events]

    def tick(self, seconds: float = 0.0) -> None:
        """Let time pass, then let the backend service its processes."""
        if seconds:
            self.clock.advance(seconds)
        self.backend.poll(0)
