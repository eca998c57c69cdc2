"""Wine scenario: ``HttpSysBackend`` applies a two-queue site through the real ``Reconciler``.

Queue "app" serves ``http://+:PORT/app/`` and queue "deep" serves ``http://+:PORT/app/deep/``; each has
a one-process pool of ``route_worker.py`` started by the backend with the queue handle inherited.
Commands on stdin: ``shrink`` applies the site without "deep" (pool, group and queue deleted);
``stop`` closes the backend (processes killed, URLs removed, queues, groups, session closed).
argv: PORT
"""

from __future__ import annotations

import sys

from tests.wine.scenarios._common import emit, run
from tests.wine.scenarios._site import Controller, app, boot_command, build


def main() -> None:
    port = int(sys.argv[1])
    repo = sys.path[0]
    controller = Controller()
    caps = controller.backend.capabilities()
    emit("capabilities", features=sorted(caps.features), notes=list(caps.notes))
    worker = boot_command(repo, "route_worker.py")
    shallow = app("app", [f"http://+:{port}/app/"], worker)
    deep = app("deep", [f"http://+:{port}/app/deep/"], worker)
    controller.apply(build(shallow, deep), "site")
    emit("ready", status=controller.backend.status()["queues"])
    while (command := controller.next_command()) is not None:
        if command == "shrink":
            controller.apply(build(shallow), "shrink")
        elif command == "stop":
            break
    controller.backend.close()
    emit("done")


run(main)
