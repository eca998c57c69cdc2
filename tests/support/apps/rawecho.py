"""A raw echo worker for the listener's differential tests (tests/integration/listener/test_twins.py).

Serves the queue socket inherited as fd 3 (``LISTEN_FDS=1``, the systemd convention) with plain
asyncio, keep-alive. Each request's bytes exactly as they arrived (the head up to CRLFCRLF, then the
body framed by ``content-length`` or chunked; the listener forwards lower-case field names) come back
as the response body. ``r=`` in the query picks the response's shape, so that the listener's fast
path and each of its fallbacks relay something: ``chunked``, ``close`` (no length: the body ends at
the close), ``http10``, ``conn-close``, ``split`` (head and body 20 ms apart), ``big`` (200 KB),
``204``, ``304``, ``100`` (an interim 100 Continue first), ``upper`` (mixed-case names, spaces and
tabs around values, two Set-Cookie), ``te-and-cl`` (broken framing: a 502 for the client) and
``extra`` (bytes after the response, then the close) and ``extra-open`` (bytes after the response,
the connection kept open). Nothing depends on the time: no Date field.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket

SHAPE = re.compile(rb"[?&]r=([A-Za-z0-9-]+)")
BIG = 200_000
# Shapes after which the worker closes the connection (the listener may not reuse it).
CLOSING = {b"close", b"http10", b"conn-close", b"te-and-cl", b"extra"}


async def read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    """The body after ``head``, as the listener framed it (raw, chunk lines included)."""
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        parts = []
        while True:
            line = await reader.readuntil(b"\r\n")
            parts.append(line)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailer fields, then the empty line
                    parts.append(await reader.readuntil(b"\r\n"))
                    if parts[-1] == b"\r\n":
                        return b"".join(parts)
            parts.append(await reader.readexactly(size + 2))
    return await reader.readexactly(int(fields.get(b"content-length") or b"0"))


def chunked(body: bytes) -> bytes:
    """``body`` in two chunks (when it has two bytes) and the last chunk."""
    pieces = [p for p in (body[:10], body[10:]) if p]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def response(shape: bytes, echo: bytes, head_request: bool) -> list[bytes]:
    """The writes answering one request (an empty item: pause 20 ms there)."""
    body = b"" if head_request else echo
    n = len(echo)
    plain = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % n
    if shape == b"chunked":
        last = b"" if head_request else chunked(echo)
        return [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + last]
    if shape == b"close":
        return [b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n" + body]
    if shape == b"http10":
        return [b"HTTP/1.0 200 OK\r\ncontent-length: %d\r\n\r\n" % n + body]
    if shape == b"conn-close":
        return [b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % n + body]
    if shape == b"split":
        return [plain, b"", body] if body else [plain]
    if shape == b"big":
        filled = echo + b"." * max(0, BIG - n)
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(filled)
        return [head if head_request else head + filled]
    if shape == b"204":
        return [b"HTTP/1.1 204 No Content\r\nx-echo-length: %d\r\n\r\n" % n]
    if shape == b"304":
        return [b'HTTP/1.1 304 Not Modified\r\netag: "e"\r\nx-echo-length: %d\r\n\r\n' % n]
    if shape == b"100":
        return [b"HTTP/1.1 100 Continue\r\n\r\n", plain + body]
    if shape == b"upper":
        return [
            b"HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nSet-Cookie: a=1\r\n"
            b"SET-COOKIE:\tb=2\t\r\nX-Mixed-Case: v\r\nCONTENT-LENGTH: %d\r\n\r\n" % n + body
        ]
    if shape == b"te-and-cl":
        last = b"" if head_request else chunked(echo)
        return [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: %d\r\n\r\n" % n
            + last
        ]
    if shape in (b"extra", b"extra-open"):
        return [plain + body + b"EXTRA"]
    return [plain + body]


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the requests of one connection from the listener, in order."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the listener closed the connection
            echo = head + await read_body(reader, head)
            line = head.split(b"\r\n", 1)[0]
            found = SHAPE.search(line)
            shape = found.group(1) if found else b""
            for part in response(shape, echo, line.startswith(b"HEAD ")):
                if part:
                    writer.write(part)
                    await writer.drain()
                else:
                    await asyncio.sleep(0.02)
            if shape in CLOSING:
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass  # a connection the listener dropped, or bytes this echo cannot frame: close it
    finally:
        writer.close()


async def main() -> None:
    """Serve the inherited queue socket forever."""
    assert os.environ.get("LISTEN_PID") == str(os.getpid()), "no inherited socket"
    server = await asyncio.start_unix_server(serve, sock=socket.socket(fileno=3), limit=1 << 21)
    if os.environ.get("NOTIFY_SOCKET"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as note:
            note.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
