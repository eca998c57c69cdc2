"""A tiny notes app: POST a note, GET them back. Each process keeps its own list in memory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

NOTES: list[str] = []


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """GET lists the notes, POST adds the request body as a note, ``.../healthz`` answers ``ok``."""
    path = str(environ.get("PATH_INFO", "/"))
    if path.endswith("/healthz"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    if environ.get("REQUEST_METHOD") == "POST":
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
        stream = environ["wsgi.input"]
        NOTES.append(stream.read(length).decode("utf-8", "replace"))  # type: ignore[attr-defined]
        status = "201 Created"
    else:
        status = "200 OK"
    body = (
        json.dumps(
            {
                "app": "notes",
                "greeting": os.environ.get("NOTES_GREETING", ""),
                "pid": os.getpid(),
                "notes": NOTES,
            }
        ).encode()
        + b"\n"
    )
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
