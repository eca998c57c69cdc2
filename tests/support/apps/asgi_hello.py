"""A minimal ASGI app for uvicorn workers in tests."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable

Scope = dict[str, object]
Message = dict[str, object]


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Answer every request with the path and the pid, from uvicorn."""
    if scope["type"] != "http":
        return
    body = json.dumps({"app": "asgi", "path": scope["path"], "pid": os.getpid()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
