"""Wine scenario: a worker process serving an inherited request queue handle.

Started by ``HttpSysBackend`` (``controller.py``), which passes the inherited handle's value in
``ORCHESTRATOR_QUEUE_HANDLE`` (names do not work under Wine). Answers each request with ``201 Created``
and a JSON body naming its own pid and the UrlContext, then exits after REQUESTS requests. It opens
nothing by name: the handle came from the controller.
argv: REQUESTS
"""

from __future__ import annotations

import json
import os
import sys

from orchestrator.httpapi.binding import RealBinding
from orchestrator.httpapi.handles import ApiInit
from orchestrator.httpapi.worker import QueueWorker
from tests.wine.scenarios._common import emit, run


def main() -> None:
    handle, requests = int(os.environ["ORCHESTRATOR_QUEUE_HANDLE"]), int(sys.argv[1])
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
