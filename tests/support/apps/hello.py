"""A minimal WSGI app: says hello and who served it (pid and user)."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Iterable


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """Answer every path with a small JSON document; ``.../healthz`` answers ``ok``."""
    path = str(environ.get("PATH_INFO", "/"))
    if path.endswith("/healthz"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    body = (
        json.dumps(
            {
                "app": "hello",
                "path": path,
                "pid": os.getpid(),
                "user": getpass.getuser(),
            }
        ).encode()
        + b"\n"
    )
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
