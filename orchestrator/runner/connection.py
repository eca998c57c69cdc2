"""One HTTP/1.1 connection: requests in order, keep-alive, pipelining, and response framing.

Owns: the request loop a pool thread runs on one accepted connection; ``WireResponder``, which frames
responses (Content-Length when known, chunked for HTTP/1.1, close-delimited for HTTP/1.0, no body for
HEAD/1xx/204/304); ``100 Continue`` sent only when the app reads the body; draining or abandoning unread
bodies; closing politely. Uses ``socket`` only on the connection it is handed — accepting, threads and
the selector belong to ``socket_source``. Must not import ``threading`` or ``selectors``.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

from orchestrator.runner.errors import ClientDisconnected, HttpError
from orchestrator.runner.http11 import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    BufferedReader,
    EmptyBody,
    encode_response_head,
    error_response,
    make_body,
    no_body_status,
    parse_request_head,
)
from orchestrator.runner.wsgi import Peer, Request, WsgiBridge

log = logging.getLogger("orchestrator.runner")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
LINGER_S = 1.0
LINGER_MAX_BYTES = 256 * 1024
#: After SIGTERM, how long an accepted connection may take to send its first request.
STOPPING_GRACE_S = 0.5
FIRST_REQUEST_POLL_S = 0.1  # how quickly a connected-but-silent client notices a stop


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection bounds. Unread body beyond ``max_drain_bytes`` closes the connection instead."""

    max_head_bytes: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS
    max_drain_bytes: int = 1024 * 1024


class Connection:
    """An accepted connection, its read buffer, and what the environ needs to know about both ends."""

    __slots__ = ("fresh", "peer", "reader", "server_name", "server_port", "sock")

    def __init__(self, sock: socket.socket, peer: Peer, server_name: str, server_port: str) -> None:
        self.sock = sock
        self.peer = peer
        self.server_name = server_name
        self.server_port = server_port
        self.reader = BufferedReader(sock.recv)
        self.fresh = True  # accepted, and no request read yet

    def wait_for_first_request(self, stopping: Callable[[], bool]) -> bool:
        """Wait until a just-accepted connection is readable; false if stopping or timed out first.

        A new connection goes straight to a pool thread (that is what backpressure counts), but a
        client that connects and stays silent is idle, and idle connections must close at once on
        SIGTERM — so this wait polls ``stopping`` instead of blocking in ``recv``.
        """
        timeout = self.sock.gettimeout()
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        stop_deadline: float | None = None
        while True:
            readable, _, _ = select.select([self.sock], [], [], FIRST_REQUEST_POLL_S)
            if readable:
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            if stopping():
                # The front end writes its request right after connecting: give a connection we
                # already accepted a moment to deliver it rather than drop a request on the floor.
                if stop_deadline is None:
                    stop_deadline = now + STOPPING_GRACE_S
                elif now >= stop_deadline:
                    return False

    def has_pending_input(self) -> bool:
        """Bytes (a next request) are already waiting in the socket or our buffer."""
        if self.reader.buffered:
            return True
        # select, not recv(MSG_DONTWAIT): the socket has a timeout, which recv would wait out.
        # Readable may also mean EOF; whoever serves it then sees the close and stops.
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close()

    def close_lingering(self) -> None:
        """Close after the client may still be sending (an error answer, an abandoned body).

        Closing with unread input makes TCP send a reset, which can destroy the response before the
        client reads it. So: half-close our side, read and drop briefly, then close (Apache's
        lingering close).
        """
        try:
            self.sock.shutdown(socket.SHUT_WR)  # a connection, never a listener
            self.sock.settimeout(LINGER_S)
            deadline = time.monotonic() + LINGER_S
            dropped = 0
            while dropped < LINGER_MAX_BYTES and time.monotonic() < deadline:
                data = self.sock.recv(64 * 1024)
                if not data:
                    break
                dropped += len(data)
        except OSError:
            pass
        finally:
            self.sock.close()


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The ``Date`` header value, recomputed at most once a second."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = formatdate(now, usegmt=True)
        _date_cache = (now, text)  # one tuple store: safe to race between threads
    return text


class WireResponder:
    """Frames one response on an HTTP/1.1 connection; the head goes out with the first body bytes."""

    __slots__ = (
        "_chunked",
        "_discard",
        "_head",
        "_method",
        "_remaining",
        "_sock",
        "_version",
        "_wants_keep_alive",
        "continue_sent",
        "headers_sent",
        "keep_alive",
    )

    def __init__(self, sock: socket.socket, method: str, version: str, keep_alive: bool) -> None:
        self._sock = sock
        self._method = method
        self._version = version
        self._wants_keep_alive = keep_alive
        self.keep_alive = keep_alive  # whether the connection may carry another request afterwards
        self.headers_sent = False
        self.continue_sent = False
        self._head = b""
        self._chunked = False
        self._discard = False
        self._remaining: int | None = None

    def send_continue(self) -> None:
        """``100 Continue``, when the app starts reading a body the client is waiting to send."""
        if not self.headers_sent and self._version == "HTTP/1.1":
            self._send(_CONTINUE, interim=True)
            self.continue_sent = True

    def start(
        self, status: str, headers: list[tuple[str, str]], content_length: int | None, close: bool
    ) -> None:
        """Prepare the head and choose the framing (see ``wsgi.Responder``)."""
        if self.headers_sent:
            raise RuntimeError("response head already sent")
        code = int(status[:3])
        keep = self._wants_keep_alive and not close
        out = list(headers)
        if not any(name.lower() == "date" for name, _ in out):
            out.append(("Date", http_date()))
        self._chunked = False
        self._remaining = None
        self._discard = no_body_status(code, self._method)
        if self._discard:
            # HEAD may state the length GET would have; 1xx and 204 must not carry one.
            if content_length is not None and code >= 200 and code != 204:
                out.append(("Content-Length", str(content_length)))
        elif content_length is not None:
            out.append(("Content-Length", str(content_length)))
            self._remaining = content_length
        elif self._version == "HTTP/1.1":
            out.append(("Transfer-Encoding", "chunked"))
            self._chunked = True
        else:
            keep = False  # HTTP/1.0 has no chunked coding: the close marks the end of the body
        if not keep:
            out.append(("Connection", "close"))
        elif self._version == "HTTP/1.0":
            out.append(("Connection", "keep-alive"))
        self.keep_alive = keep
        self._head = encode_response_head(status, out)

    def write(self, data: bytes) -> None:
        """Send body bytes in the chosen framing."""
        if self._discard:
            return
        if self._remaining is not None:
            if len(data) > self._remaining:
                log.warning("app sent more than its Content-Length; response truncated")
                data = data[: self._remaining]
                self.keep_alive = False
            self._remaining -= len(data)
            if not data:
                return
        elif self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if self._head:
            data = (
                self._head + data
            )  # one send for head and first chunk: fewer syscalls and packets
            self._head = b""
        self._send(data)

    def finish(self) -> None:
        """Send what is left: the head if no body was written, and the last chunk."""
        tail = _LAST_CHUNK if self._chunked else b""
        if self._remaining:
            log.warning("app sent less than its Content-Length; closing the connection")
            self.keep_alive = False
        if self._head or tail:
            self._send(self._head + tail)
            self._head = b""

    def _send(self, data: bytes, *, interim: bool = False) -> None:
        # An interim 100 response does not commit us: the final head can still change after it.
        self.headers_sent = self.headers_sent or not interim
        try:
            self._sock.sendall(data)
        except OSError as exc:  # includes the socket timeout: a client that stopped reading
            self.keep_alive = False
            raise ClientDisconnected(f"sending the response failed: {exc}") from exc


def serve_connection(
    conn: Connection, bridge: WsgiBridge, limits: Limits, stopping: Callable[[], bool]
) -> bool:
    """Serve requests on ``conn`` until it must close or has nothing more to read right now.

    Pipelined requests already in the buffer are served in order before returning.

    Args:
        conn: the connection; its socket has a read/write timeout set.
        bridge: runs the app.
        limits: head and drain bounds.
        stopping: true once the process is shutting down (finish this response, then close).

    Returns:
        True when the connection is idle and reusable (the caller parks it until readable); False when
        it has been closed.
    """
    reader = conn.reader
    if conn.fresh:
        conn.fresh = False
        if not conn.wait_for_first_request(stopping):
            conn.close()
            return False
    while True:
        try:
            raw = reader.read_head(limits.max_head_bytes)
            if raw is None:
                conn.close()
                return False
            head = parse_request_head(raw, limits.max_headers)
        except ClientDisconnected:
            conn.close()
            return False
        except HttpError as exc:
            log.info(
                "rejected request from %s: %d %s", conn.peer.addr or "unix peer", exc.status, exc
            )
            try:
                conn.sock.sendall(error_response(exc.status))
            except OSError:
                pass
            conn.close_lingering()
            return False
        except OSError:  # reset or timed out between requests: nothing to answer
            conn.close()
            return False
        body = make_body(head, reader)
        responder = WireResponder(
            conn.sock, head.method, head.version, head.keep_alive and not stopping()
        )
        if head.expect_continue and not isinstance(body, EmptyBody):
            body.on_first_read = responder.send_continue
        request = Request(
            head.method,
            head.target,
            head.version,
            head.headers,
            body,
            conn.peer,
            conn.server_name,
            conn.server_port,
        )
        reusable = bridge.handle(request, responder) and responder.keep_alive
        if reusable and not body.complete:
            if head.expect_continue and not responder.continue_sent:
                # The client may or may not send the body now: the stream is ambiguous.
                reusable = False
            else:
                try:
                    reusable = body.drain(limits.max_drain_bytes)
                except (HttpError, OSError):
                    reusable = False
        if not reusable:
            if body.complete:
                conn.close()
            else:
                conn.close_lingering()
            return False
        if stopping() and not conn.has_pending_input():
            conn.close()
            return False
        if not reader.buffered and not stopping():
            return True
