"""Wine scenario: ``HttpSysBackend`` runs the worker runner (http.sys source) for two WSGI apps.

Queue "hello" serves ``http://+:PORT/hello/`` with examples/quickstart/apps/hello.py (health probe on
``/hello/healthz`` through http.sys); queue "echo" serves ``http://+:PORT/echo/`` with
tests/wine/scenarios/apps/echo.py. Commands on stdin: ``status`` emits the backend's status;
``stop`` closes the backend.
argv: PORT
"""

from __future__ import annotations

import faulthandler
import sys

from tests.wine.scenarios._common import emit, run
from tests.wine.scenarios._site import Controller, app, boot_command, build


def main() -> None:
    port = int(sys.argv[1])
    repo = sys.path[0]
    controller = Controller()
    hello = app(
        "hello",
        [f"http://+:{port}/hello/"],
        boot_command(
            repo,
            "runner_worker.py",
            "hello:app",
            "--app-dir",
            repo + "\\examples\\quickstart\\apps",
        ),
        health_path="/hello/healthz",
    )
    echo = app(
        "echo",
        [f"http://+:{port}/echo/"],
        boot_command(
            repo,
            "runner_worker.py",
            "echo:app",
            "--app-dir",
            repo + "\\tests\\wine\\scenarios\\apps",
        ),
    )
    controller.apply(build(hello, echo), "site")
    emit("ready")
    while (command := controller.next_command()) is not None:
        if command == "status":
            status = controller.backend.status()
            emit("status", pools=status["pools"], workers=status["workers"])
        elif command == "stop":
            break
    # A teardown that hangs under Wine says where: every thread's stack, after 20 s.
    faulthandler.dump_traceback_later(20, file=sys.stdout)
    controller.backend.close()
    faulthandler.cancel_dump_traceback_later()
    emit("done")


run(main)
