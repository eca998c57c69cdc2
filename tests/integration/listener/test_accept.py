"""The listener's accept loop on a real listening socket: a burst of clients is taken in one wake-up.

uvloop's own server accepted one connection per loop iteration, so under load a burst waited in the
kernel's backlog for seconds; the listener now accepts itself. These tests drive ``ListenerApp``'s
accept handler directly, in this process, with real TCP connections on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
from collections.abc import Iterator

import pytest

from orchestrator.backends.linux.listener.app import (
    ACCEPT_BATCH,
    ACCEPT_PAUSE_S,
    ListenerApp,
    _Listening,
)
from orchestrator.backends.linux.listener.channel import Channel
from orchestrator.backends.linux.listener.config import Config, Settings
from orchestrator.routing.table import RouteTable

pytestmark = pytest.mark.integration


@pytest.fixture
def app() -> Iterator[ListenerApp]:
    loop = asyncio.new_event_loop()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    app = ListenerApp(loop, Channel(ours), access_log=False)
    try:
        yield app
    finally:
        for conn in list(app.connections):
            if conn.transport is not None:
                conn.transport.abort()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()
        ours.close()
        theirs.close()


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _pending(sock: socket.socket) -> bool:
    """Whether a connection is still waiting to be accepted (takes it if so)."""
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_one_wake_up_takes_every_waiting_connection(app: ListenerApp) -> None:
    sock = _listening()
    clients = [socket.create_connection(sock.getsockname()) for _ in range(100)]
    try:
        app._serve("s", _Listening(sock, "http", None))
        app._accept("s")
        assert not _pending(sock)  # nothing left in the backlog after a single call
        app.loop.run_until_complete(asyncio.sleep(0.05))
        assert 100 == len(app.connections)
        assert 100 == app.stats.accepted
    finally:
        for c in clients:
            c.close()
        app._unserve("s")


def test_a_wake_up_takes_at_most_a_batch(app: ListenerApp) -> None:
    """Requests already in progress are not starved by an endless stream of new clients."""
    sock = _listening()
    clients = [socket.create_connection(sock.getsockname()) for _ in range(ACCEPT_BATCH + 5)]
    try:
        app._serve("s", _Listening(sock, "http", None))
        app._accept("s")
        assert _pending(sock)
        app.loop.run_until_complete(asyncio.sleep(0.1))
        assert ACCEPT_BATCH <= len(app.connections)
    finally:
        for c in clients:
            c.close()
        app._unserve("s")


def test_unserving_closes_the_socket_and_stops_accepting(app: ListenerApp) -> None:
    sock = _listening()
    app._serve("s", _Listening(sock, "http", None))
    app._unserve("s")
    assert sock.fileno() == -1
    assert "s" not in app.servers


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connections_over_max_connections_are_reset(app: ListenerApp) -> None:
    """``limits.maxConnections``: the connection over the limit is reset, the others stay."""
    app.config = Config(1, Settings(max_connections=3), RouteTable.build([]), {})
    sock = _listening()
    clients = [socket.create_connection(sock.getsockname()) for _ in range(5)]
    try:
        app._serve("s", _Listening(sock, "http", None))
        app._accept("s")
        app.loop.run_until_complete(asyncio.sleep(0.1))
        assert 3 == len(app.connections)
        assert 2 == app.stats.errors.get("ConnLimit")
        assert 2 == sum(_closed_by_peer(c) for c in clients)
    finally:
        for c in clients:
            c.close()
        app._unserve("s")


def test_running_out_of_descriptors_pauses_accepting_instead_of_spinning(app: ListenerApp) -> None:
    """EMFILE leaves the listening socket readable: the listener stops watching it for a moment
    (no busy loop), logs the reason, and takes the waiting connection once descriptors are free."""
    sock = _listening()
    client = socket.create_connection(sock.getsockname())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        app._serve("s", _Listening(sock, "http", None))
        # No descriptor left for accept(): the lowest free one is above the limit.
        resource.setrlimit(resource.RLIMIT_NOFILE, (_lowest_free_fd(), hard))
        app._accept("s")
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert 1 == app.stats.errors.get("AcceptFailed")
        assert 0 == len(app.connections)
        # Not watched meanwhile: a busy loop would call accept again at once.
        app.loop.run_until_complete(asyncio.sleep(ACCEPT_PAUSE_S / 2))
        assert 1 == app.stats.errors.get("AcceptFailed")
        app.loop.run_until_complete(asyncio.sleep(ACCEPT_PAUSE_S * 3))
        assert 1 == len(app.connections)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        client.close()
        app._unserve("s")


def _lowest_free_fd() -> int:
    fd = os.dup(0)
    os.close(fd)
    return fd
