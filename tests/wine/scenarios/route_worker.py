"""Wine scenario worker: answers on the queue the backend gave it, naming queue and route id.

Started by ``HttpSysBackend`` (``backend_routing.py``): the queue comes from the environment,
``ORCHESTRATOR_QUEUE`` (its name) and ``ORCHESTRATOR_QUEUE_HANDLE`` (the inherited handle; names do
not work under Wine). Each response is JSON with the queue name, the request's UrlContext (the route
id the backend registered) and the path.
"""

from __future__ import annotations

import json
import os

from orchestrator.httpapi import _ffi
from orchestrator.httpapi.binding import RealBinding
from orchestrator.httpapi.handles import ApiInit
from orchestrator.httpapi.worker import QueueWorker
from tests.wine.scenarios._common import emit, run


def main() -> None:
    name = os.environ["ORCHESTRATOR_QUEUE"]
    handle = int(os.environ["ORCHESTRATOR_QUEUE_HANDLE"])
    with ApiInit(RealBinding()):
        worker = QueueWorker(handle)
        emit("route-worker-ready", queue=name, pid=os.getpid())
        while True:
            try:
                request = worker.receive()
            except _ffi.HttpApiError as exc:
                emit("route-worker-ended", queue=name, code=exc.code)
                return
            body = {"queue": name, "context": request.url_context, "path": request.path}
            worker.respond(
                request.request_id,
                200,
                "OK",
                {"Content-Type": "application/json"},
                json.dumps(body).encode(),
            )


run(main)
