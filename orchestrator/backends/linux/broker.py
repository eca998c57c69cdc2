"""Open a queue by name: the Linux analogue of http.sys ``OPEN_EXISTING``.

Owns: ``Broker`` (a thread serving ``<runDir>/broker.sock``), ``Grant`` (who may open a queue) and
``peer_credentials``. A client sends ``OPEN NAME\\n``; the broker reads the caller's uid, gid and
supplementary groups as of ``connect()`` (``SO_PEERCRED``, ``SO_PEERGROUPS``) — never from /proc
later, which would race with pid reuse — and either passes the queue's listening fd with
``SCM_RIGHTS`` (``OK NAME``) or answers an explicit refusal (``ERR unknown ...``/``ERR denied ...``),
logging uid, pid and the decision. The socket may be mode 0666: authorisation is by credentials.
The client side, ``open_queue``, is what ``orchestrator open`` runs, reached through the registry.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.backends.base import QueueRefused

SO_PEERGROUPS = 59  # not exported by Python 3.11's socket module
MAX_GROUPS = 1024


@dataclass(frozen=True, slots=True)
class Grant:
    """Who may open one queue: uids, gids (primary or supplementary); root always may."""

    fd: int
    uids: frozenset[int]
    gids: frozenset[int]


@dataclass(frozen=True, slots=True)
class Peer:
    """Credentials of a connected client, as of its connect()."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...]


def peer_credentials(conn: socket.socket) -> Peer:
    """Read ``SO_PEERCRED`` and ``SO_PEERGROUPS`` of a connected Unix socket."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    groups: tuple[int, ...] = ()
    with contextlib.suppress(OSError):
        data = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * MAX_GROUPS)
        groups = tuple(array.array("I", data[: len(data) - len(data) % 4]))
    return Peer(pid, uid, gid, groups)


def decide(grant: Grant | None, peer: Peer) -> str:
    """``ok``, ``unknown`` or ``denied``."""
    if grant is None:
        return "unknown"
    if peer.uid == 0 or peer.uid in grant.uids:
        return "ok"
    if {peer.gid, *peer.groups} & grant.gids:
        return "ok"
    return "denied"


Emit = Callable[..., None]


class Broker:
    """Serves open-by-name requests on a path socket, from its own thread."""

    def __init__(self, path: str, emit: Emit) -> None:
        self.path = path
        self.emit = emit
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = False

    def set_grants(self, grants: dict[str, Grant]) -> None:
        """Replace the table of queues and who may open them."""
        with self._lock:
            self._grants = dict(grants)

    def start(self) -> None:
        """Bind the socket and start serving."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o111)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o666)
        sock.listen(64)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="broker", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self._handle(conn)
                except OSError:
                    continue

    def _handle(self, conn: socket.socket) -> None:
        peer = peer_credentials(conn)  # connect-time credentials, before reading anything
        line = b""
        while not line.endswith(b"\n") and len(line) < 512:
            chunk = conn.recv(512)
            if not chunk:
                break
            line += chunk
        verb, _, name = line.decode("ascii", "replace").strip().partition(" ")
        if verb != "OPEN" or not name:
            conn.sendall(b"ERR usage send: OPEN QUEUE\n")
            return
        with self._lock:
            grant = self._grants.get(name)
        decision = decide(grant, peer)
        self.emit(
            "broker_open", queue=name, uid=peer.uid, gid=peer.gid, pid=peer.pid, decision=decision
        )
        if decision == "ok":
            assert grant is not None
            socket.send_fds(conn, [f"OK {name}\n".encode()], [grant.fd])
        elif decision == "unknown":
            conn.sendall(f"ERR unknown no queue named {name}\n".encode())
        else:
            conn.sendall(f"ERR denied uid {peer.uid} may not open queue {name}\n".encode())

    def stop(self) -> None:
        """Stop serving and remove the socket."""
        self._stop = True
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class BrokerRefused(QueueRefused):
    """The broker said no (``kind`` is ``unknown`` or ``denied``)."""


def open_queue(broker_path: str, name: str, timeout_s: float = 10.0) -> int:
    """Ask the broker for queue ``name``; returns the listening fd.

    This is the Linux backend's ``QueueOpener`` (``registry.queue_opener`` hands it out).

    Raises:
        BrokerRefused: unknown queue or access denied.
        OSError: no broker answers.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(broker_path)
        sock.sendall(f"OPEN {name}\n".encode())
        msg, fds, _, _ = socket.recv_fds(sock, 1024, 1)
        text = msg.decode("ascii", "replace").strip()
        if text.startswith("OK ") and fds:
            return fds[0]
        for fd in fds:
            os.close(fd)
        _, kind, rest = ([*text.split(" ", 2), "", ""])[:3]
        raise BrokerRefused(kind or "error", rest or text or "the broker closed the connection")
