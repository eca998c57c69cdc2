"""A test worker that echoes what it received and remembers every request path it saw.

``GET /echo/__seen`` returns the paths seen so far (one process per pool in these tests), so a test
can assert that a smuggled request never reached a worker. A slow or freezing request prints
``ECHO slow PATH`` or ``ECHO frozen PATH`` to stdout (the controller's log) when it starts, so a test
can wait for the request to be in the worker's hands instead of sleeping.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable

SEEN: list[str] = []
LOCK = threading.Lock()
FROZEN = threading.Event()


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """Echo the request; /__seen lists what came before; /slow/N sleeps N seconds first;
    /big/N answers N bytes; after /freeze the process answers nothing more (a hang that is not a
    stopped process: it runs, it accepts, it never replies)."""
    path = str(environ.get("PATH_INFO", ""))
    if path.endswith("/freeze"):
        FROZEN.set()
        print(f"ECHO frozen {path}", flush=True)
    if FROZEN.is_set():
        while True:
            time.sleep(3600)
    query = str(environ.get("QUERY_STRING", ""))
    if path.endswith("/__seen"):
        with LOCK:
            body = json.dumps(SEEN).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    with LOCK:
        SEEN.append(path + (f"?{query}" if query else ""))
    if "/slow/" in path:
        print(f"ECHO slow {path}", flush=True)
        time.sleep(float(path.rsplit("/", 1)[1] or 1))
    if "/big/" in path:
        size = int(path.rsplit("/", 1)[1] or 0)
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
        )
        block = b"x" * 65536
        return (block[: min(65536, size - i)] for i in range(0, size, 65536))
    length = int(str(environ.get("CONTENT_LENGTH") or 0) or 0)
    stream = environ["wsgi.input"]
    data = stream.read(length) if length else stream.read()  # type: ignore[attr-defined]
    headers = {
        k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")
    }
    body = json.dumps(
        {
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "query": query,
            "headers": headers,
            "body_length": len(data),
            "pid": os.getpid(),
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
