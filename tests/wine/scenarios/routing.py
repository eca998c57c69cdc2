"""Wine scenario: longest-prefix routing across two queues, with UrlContext values.

Queue "a" serves ``http://+:PORT/app/`` (context 11); queue "b" serves ``http://+:PORT/app/deep/``
(context 21); queue "c" serves the explicit host ``http://localhost:PORT2/`` (context 31). One thread
per queue receives and answers with JSON naming the queue, the UrlContext and the path. Under Wine
each prefix sits in its own URL group (one URL per group). Commands on stdin:
``remove-deep`` removes b's prefix (its group is unbound and closed); ``stop`` tears everything down
(queue -> group -> session, then HttpTerminate), which ends the receives with 995.
argv: PORT PORT2
"""

from __future__ import annotations

import json
import sys
import threading

from orchestrator.backends.httpsys import _ffi
from orchestrator.backends.httpsys.binding import RealBinding
from orchestrator.backends.httpsys.capabilities import detect_capabilities
from orchestrator.backends.httpsys.handles import ApiInit
from orchestrator.backends.httpsys.listener import HttpSysListener, Route
from orchestrator.backends.httpsys.worker import QueueWorker
from tests.wine.scenarios._common import commands, emit, run


def serve(label: str, handle: int) -> None:
    """Answer every request on one queue until the handle is closed (995)."""
    worker = QueueWorker(handle)
    while True:
        try:
            request = worker.receive()
        except _ffi.HttpApiError as exc:
            emit("receiver-ended", queue=label, code=exc.code)
            return
        body = {
            "queue": label,
            "context": request.url_context,
            "path": request.path,
            "host": request.host,
        }
        worker.respond(
            request.request_id,
            200,
            "OK",
            {"Content-Type": "application/json", "X-Queue": label},
            json.dumps(body).encode(),
        )
        emit("served", **body)


def main() -> None:
    port, port2 = int(sys.argv[1]), int(sys.argv[2])
    caps = detect_capabilities()
    binding = RealBinding()
    with ApiInit(binding):
        listeners = {
            "a": HttpSysListener(
                binding, caps, queue_name=None, routes=[Route(f"http://+:{port}/app/", 11)]
            ),
            "b": HttpSysListener(
                binding, caps, queue_name=None, routes=[Route(f"http://+:{port}/app/deep/", 21)]
            ),
            "c": HttpSysListener(
                binding, caps, queue_name=None, routes=[Route(f"http://localhost:{port2}/", 31)]
            ),
        }
        threads = []
        for label, listener in listeners.items():
            listener.start()
            assert listener.queue is not None
            thread = threading.Thread(target=serve, args=(label, listener.queue.handle))
            thread.start()
            threads.append(thread)
        emit("ready", groups={k: len(v.groups) for k, v in listeners.items()})
        for command in commands():
            if command == "remove-deep":
                listeners["b"].remove_route(f"http://+:{port}/app/deep/")
                emit("removed", groups=len(listeners["b"].groups))
            elif command == "stop":
                break
        for listener in listeners.values():
            listener.dispose()
        for thread in threads:
            thread.join(10)
        emit("disposed", alive=[t.is_alive() for t in threads])
    emit("done")


run(main)
