"""The benchmark's ASGI app for uvicorn: a tiny fixed answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

BODY = b"hello, world\n"


async def app(
    scope: dict[str, object],
    receive: Callable[[], Awaitable[dict[str, object]]],
    send: Callable[[dict[str, object]], Awaitable[None]],
) -> None:
    """Answer every HTTP request with BODY."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
