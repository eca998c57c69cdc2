"""The contract-suite harness for the HTTP.sys backend on Linux: the real ``HttpSysBackend`` over the
recording fake of http.sys (``FakeHttpSys``, Windows flavour), with real worker processes.

Everything the backend does is real except the DLL: step handling, the Create-or-Attach queue opening,
DACLs from ACLs, URL group binding and route ids, observation (queue properties are queried back from
the fake, so a queue closed behind the controller's back shows as missing), and process supervision
(workers are ``python -c 'sleep'`` children, spawned, watched and stopped like any pool). What it cannot
show is anything only the real http.sys does (routing, 503s): that is the Wine and Windows tiers' job.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from orchestrator.backends.httpsys.backend import HttpSysBackend
from orchestrator.backends.httpsys.sddl import mapping_resolver
from orchestrator.clock import SystemClock
from orchestrator.httpapi.capabilities import capabilities_for
from orchestrator.model import DesiredState
from tests.support.httpsys_fake import FakeHttpSys, Flavor, RecordingBinding
from tests.support.states import desired, group, pool, queue, session

#: The account the fake controller runs as, and its SID (granted every queue without an ACL).
CONTROLLER = "HOST\\orchestrator"
CONTROLLER_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
#: Workers: a real process that lives long enough and dies on SIGTERM. ``version`` rides along as an
#: argument so that a new version is a new command (a create-before-destroy replacement).
WORKER = (sys.executable, "-c", "import sys, time; time.sleep(120)")
#: A worker that is ready (it outlives the ready grace), then says it cannot boot (exit code 3):
#: its pool is halted at once.
HALTING = (sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(3)")


@dataclass
class HttpSysHarness:
    """``HttpSysBackend`` on a ``FakeHttpSys`` machine (Windows flavour)."""

    backend: HttpSysBackend
    system: FakeHttpSys

    def site(
        self,
        version: str = "v1",
        apps: tuple[str, ...] = ("api", "web"),
        *,
        halting: tuple[str, ...] = (),
    ) -> DesiredState:
        resources = [session()]
        for i, app in enumerate(apps):
            command = HALTING if app in halting else WORKER
            resources += [
                queue(app),
                group(app, app, f"http://127.0.0.1:8080/{app}/" if i else "http://127.0.0.1:8080/"),
                pool(app, app, *command, app, version, shutdown_time_limit_s=5.0),
            ]
        return desired(*resources)

    def break_queue(self, name: str) -> None:
        """Close every handle on the queue inside the fake http.sys, as if it vanished."""
        found = self.system.queue_named(name)
        assert found is not None, f"no live queue named {name!r}"
        for handle in list(found.handles):
            del self.system.handles[handle]
            found.handles.discard(handle)

    def settle(self, check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Poll the backend (it supervises the workers) until ``check()`` holds, bounded."""
        clock = SystemClock()
        deadline = clock.monotonic() + timeout_s
        while not check():
            if clock.monotonic() >= deadline:
                return False
            self.backend.poll(0.05)
        return True


def httpsys_harness() -> Iterator[HttpSysHarness]:
    """A fresh fake machine and backend per test; the run directory is removed afterwards."""
    run_dir = tempfile.mkdtemp(prefix="orch-httpsys-")
    system = FakeHttpSys(Flavor.WINDOWS)
    backend = HttpSysBackend(
        run_dir=run_dir,
        clock=SystemClock(),
        binding=RecordingBinding(system, pid=os.getpid()),
        capabilities=capabilities_for(None),
        sid_resolver=mapping_resolver({CONTROLLER: CONTROLLER_SID}),
        controller_account=CONTROLLER,
        ready_grace_s=0.2,
    )
    try:
        yield HttpSysHarness(backend, system)
    finally:
        backend.close()
        shutil.rmtree(run_dir, ignore_errors=True)
