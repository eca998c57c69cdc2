"""Request queues as listening Unix path sockets that the controller owns for their lifetime.

Owns: ``QueueSocket`` and ``QueueSockets``. A queue is ``<runDir>/queues/NAME.sock`` (never an abstract
name: abstract sockets ignore permissions), bound under umask 0o177 so it is never more permissive
than 0600 for an instant, then set to 0660 owned by root and the listener's group: only the listener
may ``connect()`` (deliver requests); workers get the listening fd by inheritance. Its backlog is the
queue's ``maxLength``, clamped to ``net.core.somaxconn``. Because the controller holds the socket, a
worker that exits loses nothing queued.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass

from orchestrator.backends.linux.sockdiag import accept_queue

SOCKET_MODE = 0o660
DIR_MODE = 0o711


@dataclass(slots=True)
class QueueSocket:
    """One bound queue."""

    name: str
    path: str
    sock: socket.socket
    inode: int
    backlog: int
    clamped_from: int | None = None

    def fileno(self) -> int:
        """The listening fd handed to workers (and to the broker's clients)."""
        return self.sock.fileno()

    def waiting(self) -> int | None:
        """Connections delivered to the queue that no worker has accepted yet (its depth), or
        ``None`` when the kernel cannot say."""
        # The socket's own inode (sockfs), not ``inode``, which is the path's file on disk.
        try:
            answer = accept_queue(os.fstat(self.sock.fileno()).st_ino)
        except OSError:  # closed meanwhile
            return None
        return answer[0] if answer else None


@dataclass(frozen=True, slots=True)
class SocketCheck:
    """What stat says about a queue's socket file, compared with what it should be."""

    exists: bool
    same_inode: bool = False
    mode_ok: bool = False
    owner_ok: bool = False
    detail: str = ""


class QueueSockets:
    """Binds, adjusts, checks and removes queue sockets."""

    def __init__(self, directory: str, somaxconn: int, owner_uid: int, listener_gid: int) -> None:
        self.directory = directory
        self.somaxconn = somaxconn
        self.owner_uid = owner_uid
        self.listener_gid = listener_gid
        self.bound: dict[str, QueueSocket] = {}

    def ensure_directory(self) -> None:
        """Create the queues directory (0711: traversable, not listable)."""
        os.makedirs(self.directory, mode=DIR_MODE, exist_ok=True)
        os.chmod(self.directory, DIR_MODE)

    def path(self, name: str) -> str:
        """Where queue ``name`` lives."""
        return os.path.join(self.directory, f"{name}.sock")

    def backlog(self, max_length: int) -> tuple[int, int | None]:
        """The listen backlog for ``max_length``, and the asked value when it had to be clamped."""
        if max_length > self.somaxconn:
            return self.somaxconn, max_length
        return max_length, None

    def create(self, name: str, max_length: int) -> QueueSocket:
        """Bind and listen; replaces a stale file at the path."""
        self.ensure_directory()
        path = self.path(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        self._permissions(path)
        backlog, clamped = self.backlog(max_length)
        sock.listen(backlog)
        sock.set_inheritable(False)
        queue = QueueSocket(name, path, sock, os.stat(path).st_ino, backlog, clamped)
        previous = self.bound.get(name)
        self.bound[name] = queue
        if previous is not None:
            previous.sock.close()
        return queue

    def _permissions(self, path: str) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.owner_uid, self.listener_gid)
        os.chmod(path, SOCKET_MODE)

    def set_length(self, name: str, max_length: int) -> QueueSocket:
        """Change the backlog in place: calling listen() again on a listening socket does that."""
        queue = self.bound[name]
        queue.backlog, queue.clamped_from = self.backlog(max_length)
        queue.sock.listen(queue.backlog)
        return queue

    def repair(self, name: str) -> None:
        """Put the socket file's owner and mode back."""
        self._permissions(self.bound[name].path)

    def check(self, name: str) -> SocketCheck:
        """Compare the socket file with what was bound."""
        queue = self.bound.get(name)
        if queue is None:
            return SocketCheck(False, detail="not bound")
        try:
            st = os.lstat(queue.path)
        except FileNotFoundError:
            return SocketCheck(False, detail=f"{queue.path} was removed")
        if not stat.S_ISSOCK(st.st_mode) or st.st_ino != queue.inode:
            return SocketCheck(True, False, detail=f"{queue.path} was replaced by another file")
        mode = stat.S_IMODE(st.st_mode)
        mode_ok = mode == SOCKET_MODE
        owner_ok = os.geteuid() != 0 or (st.st_uid, st.st_gid) == (
            self.owner_uid,
            self.listener_gid,
        )
        detail = ""
        if not mode_ok:
            detail = f"socket mode {mode:04o}, expected {SOCKET_MODE:04o}"
        elif not owner_ok:
            detail = f"socket owned by {st.st_uid}:{st.st_gid}, expected {self.owner_uid}:{self.listener_gid}"
        return SocketCheck(True, True, mode_ok, owner_ok, detail)

    def delete(self, name: str) -> None:
        """Close and unlink (only the file we bound)."""
        queue = self.bound.pop(name, None)
        if queue is None:
            return
        with contextlib.suppress(OSError):
            if os.lstat(queue.path).st_ino == queue.inode:
                os.unlink(queue.path)
        queue.sock.close()

    def close_all(self) -> None:
        """Close and unlink every queue."""
        for name in list(self.bound):
            self.delete(name)
