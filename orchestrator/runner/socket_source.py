"""Requests from listening sockets: an accept loop with backpressure feeding a fixed thread pool.

Owns: the accept thread (one selector over the listeners, the parked keep-alive connections and a wakeup
socket), the pool of N threads that each serve one connection at a time, and the rules between them:

- **Backpressure.** Listeners are watched only while a pool thread is free, so connections we could not
  serve stay in the kernel backlog, which sibling processes of the pool share and drain.
- **Parking.** Between requests an idle keep-alive connection goes back to the selector instead of pinning
  a thread (the front end pools upstream connections; a thread per idle connection would starve new
  ones). It returns to the pool when readable, or is closed after the keep-alive timeout.
- **Stopping.** Listeners are closed at once — our copies only, never ``shutdown()`` — and parked
  connections too; connections being served finish their current response, then close.

Only the accept thread touches the selector, the parked set and the in-flight count; pool threads hand
connections back through a deque and a wakeup byte. Must not import ``signal`` or app loading, and must
never call ``shutdown()`` on a listener.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Sequence

from orchestrator.runner.connection import Connection, Limits, serve_connection
from orchestrator.runner.listeners import Listener
from orchestrator.runner.wsgi import Peer, WsgiBridge

log = logging.getLogger("orchestrator.runner")

ACCEPT_PAUSE_S = 0.5  # after EMFILE and friends: let connections close before trying again


class SocketSource:
    """Serves a WSGI bridge from listening sockets with ``threads`` pool threads."""

    def __init__(
        self,
        listeners: Sequence[Listener],
        bridge: WsgiBridge,
        *,
        threads: int = 8,
        keepalive_timeout_s: float = 75.0,
        io_timeout_s: float = 30.0,
        max_connections: int = 1000,
        limits: Limits | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._listeners = list(listeners)
        self._bridge = bridge
        self._threads = threads
        self._keepalive_timeout_s = keepalive_timeout_s
        self._io_timeout_s = io_timeout_s
        self._max_connections = max(max_connections, threads)
        self._limits = limits or Limits()
        self._server_addr = {id(lst): _server_name_port(lst.sock) for lst in self._listeners}

        # Shared between threads.
        self._stopping = False
        self._jobs: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._finished: collections.deque[Connection | None] = collections.deque()
        self._idle = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

        # Accept thread only.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._watching = False
        self._accept_paused_until = 0.0
        self._in_flight = 0  # connections queued for or held by a pool thread
        self._parked: dict[Connection, float] = {}  # idle keep-alive -> deadline, oldest first

        self._loop_thread = threading.Thread(target=self._run, name="runner-accept", daemon=True)
        self._pool = [
            threading.Thread(target=self._work, name=f"runner-worker-{i}", daemon=True)
            for i in range(threads)
        ]

    # -- Source protocol (called from the main thread) ---------------------------------------------

    def start(self) -> None:
        """Start the pool and the accept loop."""
        for thread in self._pool:
            thread.start()
        self._loop_thread.start()

    def stop_accepting(self) -> None:
        """Close the listeners and idle connections at once; busy connections finish, then close."""
        self._stopping = True
        self._wake()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once stopping and no connection is being served."""
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        """Stop everything; waits briefly for threads that are already finishing."""
        self.stop_accepting()
        if self._loop_thread.is_alive():
            self._loop_thread.join(timeout=1.0)
        else:
            self._close_listeners()
        for thread in self._pool:
            if thread.is_alive():
                thread.join(timeout=0.1)
        if not self._loop_thread.is_alive():
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    # -- pool threads --------------------------------------------------------------------------------

    def _is_stopping(self) -> bool:
        return self._stopping

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # buffer full: a wakeup is already pending

    def _work(self) -> None:
        while (conn := self._jobs.get()) is not None:
            reusable = False
            try:
                reusable = serve_connection(conn, self._bridge, self._limits, self._is_stopping)
            except BaseException:  # a bug here must not kill the thread and shrink the pool
                log.exception("unexpected error serving a connection")
                conn.close()
            self._finished.append(conn if reusable else None)
            self._wake()

    # -- accept thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._collect_finished()
                if self._stopping:
                    self._close_listeners()
                    self._close_parked()
                    if self._in_flight == 0:
                        break
                self._watch_listeners(self._can_accept())
                for key, _ in self._selector.select(self._next_timeout()):
                    if key.data is None:
                        self._drain_wakeups()
                    elif isinstance(key.data, Listener):
                        self._accept(key.data)
                    else:
                        self._unpark(key.data)
                self._expire_idle()
        except BaseException:
            # The process cannot serve without this loop; exit so the supervisor replaces us.
            log.critical("accept loop failed", exc_info=True)
            os._exit(1)
        finally:
            self._idle.set()
            for _ in self._pool:
                self._jobs.put(None)

    def _can_accept(self) -> bool:
        return (
            not self._stopping
            and self._in_flight < self._threads
            and self._in_flight + len(self._parked) < self._max_connections
            and time.monotonic() >= self._accept_paused_until
        )

    def _watch_listeners(self, want: bool) -> None:
        if want == self._watching:
            return
        for listener in self._listeners:
            if want:
                self._selector.register(listener.sock, selectors.EVENT_READ, listener)
            else:
                self._selector.unregister(listener.sock)
        self._watching = want

    def _next_timeout(self) -> float | None:
        deadlines = []
        if self._parked:
            deadlines.append(next(iter(self._parked.values())))
        if self._accept_paused_until and not self._watching and not self._stopping:
            deadlines.append(self._accept_paused_until)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _drain_wakeups(self) -> None:
        try:
            self._wake_r.recv(4096)
        except BlockingIOError:
            pass

    def _accept(self, listener: Listener) -> None:
        # Accept only what a free thread will serve right away; the rest stays in the shared backlog.
        while self._in_flight < self._threads:
            try:
                sock, addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # a sibling process won the race for this connection
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: back off instead of spinning
                log.error("accept() on %s failed: %s", listener.name, exc)
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_S
                self._watch_listeners(False)
                return
            self._in_flight += 1
            self._jobs.put(self._connection(sock, addr, listener))

    def _connection(self, sock: socket.socket, addr: object, listener: Listener) -> Connection:
        sock.settimeout(self._io_timeout_s)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            host, port = addr[0], addr[1]  # type: ignore[index]
            peer = Peer(str(host), int(port))
        else:
            peer = Peer(is_proxy=True)  # only the front end can connect to a queue socket
        name, port_text = self._server_addr[id(listener)]
        return Connection(sock, peer, name, port_text)

    def _unpark(self, conn: Connection) -> None:
        # Readable: a request (or EOF) arrived. It is already ours, so it goes to the pool even when
        # every thread is busy; it waits in the job queue, not in the kernel.
        self._selector.unregister(conn.sock)
        del self._parked[conn]
        self._in_flight += 1
        self._jobs.put(conn)

    def _collect_finished(self) -> None:
        now = time.monotonic()
        while self._finished:
            conn = self._finished.popleft()
            self._in_flight -= 1
            if conn is None:
                continue
            if self._stopping:
                if conn.has_pending_input():
                    self._in_flight += 1
                    self._jobs.put(conn)
                else:
                    conn.close()
                continue
            self._parked[conn] = now + self._keepalive_timeout_s
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _expire_idle(self) -> None:
        now = time.monotonic()
        while self._parked:
            conn, deadline = next(iter(self._parked.items()))
            if deadline > now:
                break
            del self._parked[conn]
            self._selector.unregister(conn.sock)
            conn.close()

    def _close_parked(self) -> None:
        # A parked connection that already holds a request is served, not dropped: the front end
        # may have sent it on its pooled connection just before our SIGTERM.
        for conn in self._parked:
            self._selector.unregister(conn.sock)
            if conn.has_pending_input():
                self._in_flight += 1
                self._jobs.put(conn)
            else:
                conn.close()
        self._parked.clear()

    def _close_listeners(self) -> None:
        self._watch_listeners(False)
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()


def _server_name_port(sock: socket.socket) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT for requests without a Host header."""
    name = sock.getsockname()
    if isinstance(name, tuple):
        return str(name[0]), str(name[1])
    return "localhost", "80"
