"""The listener's upstream side, in pure Python: the twin of ``_upstream.pxi`` in the compiled core.

Owns: ``Poller`` (one epoll set for every connection to a queue socket), ``UpstreamPool`` (idle
keep-alive connections to one queue socket) and ``Upstream`` (the base of one such connection), with
``HIGH_WATER`` and ``POOL_MAX``. ``fast.py`` re-exports these names: ``core.py`` takes them from the
compiled ``_fast`` module or from ``fast``, and both define the same behaviour
(``tests/integration/listener/test_twins.py`` compares them byte for byte).

An ``Upstream`` tells the client connection it serves (duck-typed: ``upstream_data``,
``upstream_eof``, ``upstream_lost``, ``pause_client_reading``, ``resume_client_reading``) what its
worker did; it knows nothing else of the client side.

Must not import: ``fast``, ``proxy`` or ``app`` (they build on this module); nothing outside the
standard library.
"""

from __future__ import annotations

import asyncio
import select
import socket
from typing import Any, Final

#: Pause reading from the peer when this much is waiting to be written to the other side.
HIGH_WATER: Final = 256 * 1024
#: Idle keep-alive connections kept per queue.
POOL_MAX: Final = 256


class Poller:
    """The listener's upstream connections, watched with one epoll set of their own.

    The set itself is a single descriptor the event loop watches (``add_reader``), so opening or
    closing a connection costs one ``epoll_ctl`` (closing a socket leaves the set by itself), where
    the loop's own per-descriptor watchers cost six and a transport a task, futures and several
    loop iterations: what a worker that closes every connection (gunicorn's sync worker) pays on
    every request. Level-triggered: what a connection does not read now is reported again.
    """

    __slots__ = ("conns", "epoll")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.epoll = select.epoll()
        self.conns: dict[int, Upstream] = {}
        loop.add_reader(self.epoll.fileno(), self._events)

    def _events(self) -> None:
        conns = self.conns
        for fd, events in self.epoll.poll(0, 64):
            conn = conns.get(fd)
            if conn is None:
                continue  # closed while earlier events of this batch were handled
            if events & _READABLE:
                conn._readable()
            if events & select.EPOLLOUT and not conn.closed:
                conn._writable()

    def watch(self, conn: Upstream, reading: bool, writing: bool) -> None:
        """What to report for ``conn`` (its descriptor is already in the set)."""
        mask = (select.EPOLLIN if reading else 0) | (select.EPOLLOUT if writing else 0)
        self.epoll.modify(conn.fd, mask)

    def close(self) -> None:
        """Stop watching (the listener is exiting)."""
        self.epoll.close()


_READABLE: Final = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
_UNIX_STREAM: Final = int(socket.SOCK_STREAM) | int(socket.SOCK_NONBLOCK) | int(socket.SOCK_CLOEXEC)


class UpstreamPool:
    """Idle keep-alive connections to one queue socket, reused (newest first) before new ones.

    ``factory`` makes the connection objects (``proxy.UpstreamConnection``, which adds the general
    path's response parser); ``poller`` watches their sockets.
    """

    __slots__ = ("factory", "idle", "name", "path", "poller")

    def __init__(self, name: str, path: str, poller: Poller, factory: type[Upstream]) -> None:
        self.name = name
        self.path = path
        self.poller = poller
        self.factory = factory
        self.idle: list[Upstream] = []

    def take(self) -> Upstream | None:
        """An idle connection that is still open, or ``None``."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, conn: Upstream) -> None:
        """Keep a connection whose exchange completed, for reuse."""
        conn.client = None
        if not conn.closed and len(self.idle) < POOL_MAX:
            self.idle.append(conn)
        else:
            conn.close()

    def connect(self) -> Upstream:
        """A new connection to the queue. A Unix socket connects at once or not at all, so the
        connection is ready to take a request when this returns.

        Raises:
            BlockingIOError: the queue's backlog is full (http.sys: QueueFull).
            OSError: the queue socket is gone or refuses.
        """
        sock = socket.socket(socket.AF_UNIX, _UNIX_STREAM)
        try:
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        return self.factory(self, sock)

    def close(self) -> None:
        """Close every idle connection."""
        while self.idle:
            self.idle.pop().close()


class Upstream:
    """One connection to a queue socket (a worker accepted it), on its non-blocking socket.

    Watched by the process's ``Poller``, not an asyncio transport (see there). A write goes straight
    to ``send``; what the socket does not take waits until it can (above ``HIGH_WATER`` the client
    connection stops reading until this drains to a quarter of that). What the worker sends goes to
    the client connection it serves (``client.upstream_data``), its EOF to ``upstream_eof`` and
    then, as for a reset, to ``upstream_lost``; bytes on an idle connection mean the worker
    misbehaves, and close it. Whoever closes a connection itself (``close``) is not told about it.
    """

    __slots__ = (
        "client",
        "closed",
        "fast_buf",
        "fd",
        "parser",
        "paused_client",
        "poller",
        "pool",
        "reading",
        "received",
        "reused",
        "sock",
        "wbuf",
        "wsize",
    )

    def __init__(self, pool: UpstreamPool, sock: socket.socket) -> None:
        self.pool = pool
        self.poller = pool.poller
        self.sock = sock
        self.fd = sock.fileno()
        self.client: Any = None
        self.parser: Any = None  # the general path's ResponseParser, made when first needed
        self.closed = False
        self.reused = False
        self.received = 0
        self.fast_buf = b""  # a response the fast path holds until it is complete
        self.wbuf: list[bytes] = []  # what the socket did not take yet
        self.wsize = 0
        self.paused_client = False
        self.reading = True
        self.poller.conns[self.fd] = self
        self.poller.epoll.register(self.fd, select.EPOLLIN)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            client = self.client
            if client is not None:
                client.upstream_eof(self)
            self._lost(None)
            return
        self.received += len(data)
        client = self.client
        if client is None:
            self.close()  # bytes on an idle connection: the worker is misbehaving
            return
        client.upstream_data(self, data)

    def _lost(self, exc: Exception | None) -> None:
        """The worker closed or reset the connection (unless we closed it ourselves meanwhile)."""
        if self.closed:
            return
        self._shut()
        client = self.client
        if client is not None:
            client.upstream_lost(self)

    def write(self, data: bytes) -> None:
        """Send request bytes; what the socket does not take is sent when it can."""
        if self.closed:
            return
        if self.wbuf:
            self.wbuf.append(data)
            self.wsize += len(data)
        else:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                # Told on the next loop iteration: the caller is in the middle of a decision.
                self._shut()
                asyncio.get_running_loop().call_soon(self._told_lost, exc)
                return
            if sent == len(data):
                return
            rest = data[sent:]
            self.wbuf.append(rest)
            self.wsize = len(rest)
            self.poller.watch(self, self.reading, True)
        if self.wsize > HIGH_WATER and not self.paused_client and self.client is not None:
            self.paused_client = True
            self.client.pause_client_reading()

    def _writable(self) -> None:
        if not self.wbuf:
            return
        data = self.wbuf[0] if len(self.wbuf) == 1 else b"".join(self.wbuf)
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if sent == len(data):
            self.wbuf = []
            self.wsize = 0
            self.poller.watch(self, self.reading, False)
        else:
            self.wbuf = [data[sent:]]
            self.wsize = len(data) - sent
        if self.paused_client and self.wsize <= HIGH_WATER // 4:
            self.paused_client = False
            if self.client is not None:
                self.client.resume_client_reading()

    def _told_lost(self, exc: Exception) -> None:
        client = self.client
        if client is not None:
            client.upstream_lost(self)

    def pause_reading(self) -> None:
        """Stop reading the worker's bytes (the client is slow to take them)."""
        if self.reading and not self.closed:
            self.reading = False
            self.poller.watch(self, False, bool(self.wbuf))

    def resume_reading(self) -> None:
        """Read the worker's bytes again."""
        if not self.reading and not self.closed:
            self.reading = True
            self.poller.watch(self, True, bool(self.wbuf))

    def _shut(self) -> None:
        self.closed = True
        self.fast_buf = b""
        self.wbuf = []
        # Closing the socket takes it out of the epoll set.
        if self.poller.conns.get(self.fd) is self:
            del self.poller.conns[self.fd]
        self.sock.close()

    def close(self) -> None:
        """Close (without reuse, and without telling the client)."""
        if not self.closed:
            self._shut()
