"""Wine scenario: ``HttpSysBackend`` runs the worker runner (http.sys source) for two WSGI apps.

Queue "hello" serves ``http://+:PORT/hello/`` with examples/quickstart/apps/hello.py (health probe on
``/hello/healthz`` through http.sys); queue "echo" serves ``http://+:PORT/echo/`` with
tests/wine/scenarios/apps/echo.py. Commands on stdin: ``status`` emits the backend's status;
``stop`` closes the backend: ``done`` once it is closed, or ``teardown_hung`` with the closing
thread's stack when it has not returned within 30 s (then the process exits at once, code 3).
argv: PORT
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

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
    # A teardown that hangs under Wine says where: the closing thread's stack, after 30 s.
    closing = threading.Thread(target=controller.backend.close, daemon=True)
    closing.start()
    closing.join(30)
    if closing.is_alive():
        frame = sys._current_frames().get(closing.ident or 0)
        stack = traceback.format_stack(frame) if frame is not None else []
        emit("teardown_hung", stack=stack)
        os._exit(3)  # the stuck call never returns: nothing else would end this process
    emit("done")


run(main)
