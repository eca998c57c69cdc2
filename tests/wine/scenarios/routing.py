"""Wine scenario: longest-prefix routing across three queues ``HttpSysBackend`` made from plan steps.

The backend applies, through the real ``Reconciler``, a site of three queues with one URL group each
and no pools: "a" serves ``http://+:PORT/app/``, "b" ``http://+:PORT/app/deep/`` and "c" the explicit
host ``http://localhost:PORT2/``. Every URL carries its route id as UrlContext. One thread of this
process per queue receives on the backend's queue handle and answers with JSON naming the queue, the
UrlContext, the path and the host. Under Wine each URL sits in its own URL group. Commands on stdin:
``remove-deep`` applies the site without URL group "b" (its URL removed, its group unbound and
closed; queue "b" stays); ``stop`` closes the backend (URLs removed and unbound, then queue -> group
-> session, then HttpTerminate), which ends the receives with 995.
argv: PORT PORT2
"""

from __future__ import annotations

import json
import sys
import threading

from orchestrator.httpapi import _ffi
from orchestrator.httpapi.worker import QueueWorker
from orchestrator.model import Key, Kind, RequestQueue, Resource, UrlGroup
from tests.wine.scenarios._common import emit, run
from tests.wine.scenarios._site import Controller, S, build


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


def endpoint(name: str, url: str | None) -> list[Resource]:
    """A queue called ``name`` and, when ``url`` is given, a URL group of the same name routing it."""
    q = Key(Kind.QUEUE, name)
    parts: list[Resource] = [RequestQueue(key=q, session=S)]
    if url is not None:
        parts.append(UrlGroup(key=Key(Kind.URLGROUP, name), session=S, queue=q, urls=(url,)))
    return parts


def main() -> None:
    port, port2 = int(sys.argv[1]), int(sys.argv[2])
    urls = {
        "a": f"http://+:{port}/app/",
        "b": f"http://+:{port}/app/deep/",
        "c": f"http://localhost:{port2}/",
    }
    controller = Controller()
    backend = controller.backend
    controller.apply(build(*(endpoint(name, url) for name, url in urls.items())), "site")
    threads = []
    for label in urls:
        handle = backend.queues[label].handle.handle
        thread = threading.Thread(target=serve, args=(label, handle))
        thread.start()
        threads.append(thread)
    groups = backend.resources.groups
    emit("ready", groups={k: len(groups[k].handles) for k in urls})
    while (command := controller.next_command()) is not None:
        if command == "remove-deep":
            site = build(endpoint("a", urls["a"]), endpoint("b", None), endpoint("c", urls["c"]))
            controller.apply(site, "remove-deep")
            emit("removed", groups=len(groups["b"].handles) if "b" in groups else 0)
        elif command == "stop":
            break
    backend.close()
    for thread in threads:
        thread.join(10)
    emit("disposed", alive=[t.is_alive() for t in threads])
    emit("done")


run(main)
