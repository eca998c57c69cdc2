"""A WSGI app that tries what a sandbox forbids and says what happened, for the sandbox tests.

``GET /POOL/probe/WHAT?ARGS`` answers ``{"result": "ok"}`` or the errno's name (``EPERM``,
``EACCES``, ...). The calls that would change the worker itself (``ptrace(PTRACE_TRACEME)``,
``unshare``, ``mount``) run in a forked child, which inherits the sandbox and then exits.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PTRACE_TRACEME = 0


def _name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def _call(result: int) -> str:
    return "ok" if result == 0 else _name(ctypes.get_errno())


def _os(action: Callable[[], object]) -> str:
    try:
        action()
    except OSError as exc:
        return _name(exc.errno or 0)
    return "ok"


def _in_child(action: Callable[[], str]) -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            outcome = action()
        except BaseException as exc:  # report anything, never return into the server
            outcome = f"error {exc!r}"
        os.write(write, outcome.encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1024):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return data.decode()


def _mount(target: str) -> str:
    # In a user namespace of its own (when unshare is allowed) an ordinary user may mount a
    # tmpfs: without the sandbox this succeeds, so the probe can fail.
    _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)
    return _call(_libc.mount(b"none", target.encode(), b"tmpfs", 0, None))


def _write(directory: str) -> None:
    with open(os.path.join(directory, f"probe-{os.getpid()}"), "w", encoding="ascii") as fh:
        fh.write("written\n")


def _read(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        fh.read()


PROBES: dict[str, Callable[[dict[str, str]], str]] = {
    "ptrace": lambda q: _in_child(lambda: _call(_libc.ptrace(PTRACE_TRACEME, 0, None, None))),
    "unshare": lambda q: _in_child(lambda: _call(_libc.unshare(CLONE_NEWUSER))),
    "mount": lambda q: _in_child(lambda: _mount(q["dir"])),
    "write": lambda q: _os(lambda: _write(q["dir"])),
    "read": lambda q: _os(lambda: _read(q["file"])),
    "connect": lambda q: _os(
        lambda: socket.create_connection(("127.0.0.1", int(q["port"])), timeout=5).close()
    ),
}


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """Run the probe the path names; ``.../healthz`` answers ``ok``."""
    path = str(environ.get("PATH_INFO", "/"))
    if path.endswith("/healthz"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    what = path.rstrip("/").rsplit("/", 1)[-1]
    query = {k: v[0] for k, v in parse_qs(str(environ.get("QUERY_STRING", ""))).items()}
    probe = PROBES.get(what)
    result = probe(query) if probe else "unknown probe"
    body = json.dumps({"probe": what, "result": result, "pid": os.getpid()}).encode() + b"\n"
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
