"""Wine scenario: a worker process serving an inherited request queue handle.

Answers each request with ``201 Created`` and a JSON body naming its own pid and the UrlContext,
then exits after REQUESTS requests. It opens nothing by name: the handle came from the controller.
argv: HANDLE REQUESTS
"""

from __future__ import annotations

import json
import os
import sys

from orchestrator.backends.httpsys.binding import RealBinding
from orchestrator.backends.httpsys.handles import ApiInit
from orchestrator.backends.httpsys.worker import QueueWorker
from tests.wine.scenarios._common import emit, run


def main() -> None:
    handle, requests = int(sys.argv[1]), int(sys.argv[2])
    with ApiInit(RealBinding()):
        worker = QueueWorker(handle)
        emit("worker-ready", pid=os.getpid(), handle=handle)
        for _ in range(requests):
            request = worker.receive()
            body = json.dumps(
                {
                    "pid": os.getpid(),
                    "context": request.url_context,
                    "path": request.path,
                    "method": request.method,
                    "body": request.body.decode("latin-1"),
                }
            ).encode()
            worker.respond(
                request.request_id, 201, "Created", {"Content-Type": "application/json"}, body
            )
            emit("worker-served", path=request.path)
    emit("worker-done")


run(main)
