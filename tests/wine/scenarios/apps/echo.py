"""A WSGI app for the Wine tier's runner scenario: echoes request bodies and fails on purpose.

``POST /echo/...`` answers the body it read from ``wsgi.input`` in 7-byte reads (so the body is
streamed, not handed over whole), ``/echo/boom`` raises, ``/echo/cookies`` sets two cookies (one
with a comma in its Expires date, so it cannot be folded), anything else answers the method and path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """Echo, fail, or describe the request."""
    path = str(environ.get("PATH_INFO", "/"))
    if path.endswith("/boom"):
        raise RuntimeError("boom, on purpose")
    if path.endswith("/cookies"):
        start_response(
            "200 OK",
            [
                ("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "b=2; Path=/"),
            ],
        )
        return [b"two cookies"]
    stream = environ["wsgi.input"]
    reads = []
    while chunk := stream.read(7):  # type: ignore[attr-defined]
        reads.append(chunk)
    body = json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "body": b"".join(reads).decode("latin-1"),
            "reads": len(reads),
            "remote": environ.get("REMOTE_ADDR"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Echo", "1")])
    return [body]
