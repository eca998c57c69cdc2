"""WSGI apps the runner integration tests serve (imported by the runner via --app-dir)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]


def _reply(start_response: StartResponse, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _stream(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(3):
        yield f"part {i}\n".encode()


def _boom_late(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    raise RuntimeError("failed while streaming")


def _hash(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    digest = hashlib.sha256()
    total = 0
    stream = environ["wsgi.input"]
    while block := stream.read(64 * 1024):
        digest.update(block)
        total += len(block)
    info = {"sha256": digest.hexdigest(), "bytes": total, "maxrss_kib": _peak_rss_kib()}
    return _reply(start_response, json.dumps(info).encode())


def _peak_rss_kib() -> int:
    """This process's peak RSS since it started running the runner (``VmHWM``). Not
    ``getrusage``'s ``ru_maxrss``: Linux carries the spawning process's peak across exec into it,
    so a runner started by a test process grown to 100 MB reported 100 MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Routes by PATH_INFO; see each branch."""
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/hello":
        return _reply(start_response, b"hello\n")
    if path == "/pid":
        return _reply(start_response, str(os.getpid()).encode())
    if path == "/echo":
        return _reply(start_response, environ["wsgi.input"].read())
    if path == "/hash":
        return _hash(environ, start_response)
    if path == "/stream":
        return _stream(start_response)
    if path == "/boom":
        raise RuntimeError("the app failed")
    if path == "/boom-late":
        return _boom_late(start_response)
    if path == "/slow":
        if "mark" in query:
            with open(query["mark"], "w") as f:
                f.write("started")
        time.sleep(float(query.get("seconds", "1")))
        return _reply(start_response, f"slept {os.getpid()}".encode())
    if path == "/environ":
        keys = ("REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "PATH_INFO")
        return _reply(start_response, json.dumps({k: environ.get(k) for k in keys}).encode())
    return _reply(start_response, b"not found\n", "404 Not Found")


def create_app(greeting: str) -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    """A factory, for ``runnerapp:create_app("...")`` specs."""

    def greet(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return _reply(start_response, greeting.encode())

    return greet
