"""Wine scenario worker: the runner's composition with the http.sys source, as ``main`` would do it.

``runner_worker.py MODULE:APP --app-dir DIR``: attach the queue the controller passed (inherited
handle), import the app, serve it with ``HttpSysSource`` + ``WsgiBridge`` under ``lifecycle.run``.
The quickstart's hello.py imports ``pwd`` and calls ``os.getuid``, which Windows lacks; when they
are missing a minimal stand-in is installed (and reported as a ``shim`` event) so the unchanged app
can be served; the fix belongs in the example (``getpass.getuser()``).
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
import types

from orchestrator.runner.appspec import load_app, parse_app_spec
from orchestrator.runner.httpsys_source import HttpSysSource, attach_queue
from orchestrator.runner.lifecycle import run as run_lifecycle
from orchestrator.runner.wsgi import WsgiBridge
from tests.wine.scenarios._common import emit, run


def _shim_posix_user() -> list[str]:
    shimmed = []
    try:
        import pwd  # noqa: F401
    except ImportError:
        entry = types.SimpleNamespace(pw_name=getpass.getuser())
        sys.modules["pwd"] = types.SimpleNamespace(getpwuid=lambda uid: entry)  # type: ignore[assignment]
        shimmed.append("pwd")
    if not hasattr(os, "getuid"):
        os.getuid = lambda: 0  # type: ignore[attr-defined]
        shimmed.append("os.getuid")
    return shimmed


def main() -> None:
    spec_text, _, app_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    port = attach_queue()  # before the app is imported, as main does with inherited sockets
    shimmed = _shim_posix_user()
    if shimmed:
        emit("shim", modules=shimmed)
    app = load_app(parse_app_spec(spec_text), app_dir)
    source = HttpSysSource(port, WsgiBridge(app), threads=4)
    emit("runner-ready", app=spec_text, pid=os.getpid(), queue=os.environ.get("ORCHESTRATOR_QUEUE"))
    raise SystemExit(run_lifecycle(source, graceful_timeout_s=5.0))


run(main)
