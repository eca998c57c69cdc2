"""Wine scenario: a controller that creates an inheritable queue and spawns a worker python.exe.

Under Wine queue names are ignored, so the worker gets the queue the way the notes prescribe: the
controller creates it with ``bInheritHandle=TRUE``, spawns the worker with ``close_fds=False`` and
passes the handle value on its command line. The controller owns the session, the URL group, the
binding and the prefix, and tears them down after the worker exits.
argv: PORT REQUESTS
"""

from __future__ import annotations

import os
import subprocess
import sys

from orchestrator.backends.httpsys.binding import RealBinding
from orchestrator.backends.httpsys.capabilities import detect_capabilities
from orchestrator.backends.httpsys.handles import ApiInit
from orchestrator.backends.httpsys.listener import HttpSysListener, Route
from tests.wine.scenarios._common import emit, run

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    port, requests = int(sys.argv[1]), sys.argv[2]
    repo = sys.path[0]  # boot.py put the repository there
    binding = RealBinding()
    with ApiInit(binding):
        listener = HttpSysListener(
            binding,
            detect_capabilities(),
            queue_name="pool",
            routes=[Route(f"http://+:{port}/svc/", 77)],
            inheritable=True,
        )
        listener.start()
        assert listener.queue is not None
        worker = subprocess.Popen(
            [
                sys.executable,
                os.path.join(os.path.dirname(HERE), "boot.py"),
                repo,
                os.path.join(HERE, "worker.py"),
                str(listener.queue.handle),
                requests,
            ],
            close_fds=False,  # the worker inherits the queue handle
        )
        emit(
            "controller-ready", pid=os.getpid(), worker_pid=worker.pid, handle=listener.queue.handle
        )
        code = worker.wait(60)
        emit("worker-exited", code=code)
        listener.dispose()
    emit("done")


run(main)
