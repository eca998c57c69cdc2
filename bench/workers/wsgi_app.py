"""The benchmark's WSGI app for gunicorn (sync): a tiny fixed answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable

BODY = b"hello, world\n"


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """Answer every request with BODY."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]
