"""Wine scenario: ``HttpSysBackend`` starts a worker python.exe that serves the queue handle it inherits.

Under Wine queue names are ignored, so the worker gets the queue the way the notes prescribe: the
backend creates it with ``bInheritHandle=TRUE``, starts the worker with ``close_fds=False`` and passes
the handle value in ``ORCHESTRATOR_QUEUE_HANDLE``. The backend owns the session, the URL group, the
binding and the prefix, applied from plan steps through the real ``Reconciler``; ``worker.py`` answers
REQUESTS requests and exits, then the backend is closed (processes killed, URLs removed, queue, group
and session closed).
argv: PORT REQUESTS
"""

from __future__ import annotations

import os
import sys
import time

from orchestrator.backends.httpsys.backend import HttpSysBackend
from orchestrator.backends.httpsys.launcher import LaunchSpec, WorkerProcess, launch_process
from orchestrator.clock import SystemClock
from orchestrator.reconcile.reconciler import Reconciler
from tests.wine.scenarios._common import emit, run
from tests.wine.scenarios._site import app, boot_command, build


def main() -> None:
    port, requests = int(sys.argv[1]), sys.argv[2]
    repo = sys.path[0]  # boot.py put the repository there
    started: list[WorkerProcess] = []

    def launcher(spec: LaunchSpec) -> WorkerProcess:
        process = launch_process(spec)
        started.append(process)
        return process

    backend = HttpSysBackend(launcher=launcher)
    result = Reconciler(backend, SystemClock()).reconcile_once(
        build(app("svc", [f"http://+:{port}/svc/"], boot_command(repo, "worker.py", requests)))
    )
    worker = started[0]
    emit(
        "controller-ready",
        pid=os.getpid(),
        worker_pid=worker.pid,
        handle=backend.queues["svc"].handle.handle,
        failed=[f"{o.step_id}: {o.error}" for o in result.failed],
        converged=result.converged,
    )
    deadline = time.monotonic() + 60
    while worker.poll() is None and time.monotonic() < deadline:
        backend.poll(0.1)
    emit("worker-exited", code=worker.poll())
    backend.close()
    emit("done")


run(main)
