"""Request queues as listening Unix path sockets that the controller owns for their lifetime.

Owns: ``QueueSocket`` and ``QueueSockets``. A queue is ``<runDir>/queues/NAME.sock`` (never an abstract
name: abstract sockets ignore permissions), bound under umask 0o177 so it is never more permissive
than 0600 for an instant, then set to 0660 owned by root and the listener's group: only the listener
may ``connect()`` (deliver requests); workers get the listening fd by inheritance. Its backlog is
the queue's ``maxLength``, clamped to ``net.core.somaxconn``. Because the controller holds the
socket, a worker that exits loses nothing queued.

As root the directory ``<runDir>/queues`` is 0750, root and the listener's group (it follows the
listener's group on a reload): nobody else may even reach a socket's path, whatever its mode. No one
else needs to: workers inherit their fd, ``orchestrator open`` gets its fd from the broker
(``broker.sock`` in the run directory), and health probes run in the controller. Without root every
process is the controller's own user, and the run directory is 0700.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import dataclass

from orchestrator.backends.linux.sockdiag import accept_queue

SOCKET_MODE = 0o660
DIR_MODE = 0o750


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
        self._listener_gid = listener_gid
        self.bound: dict[str, QueueSocket] = {}

    @property
    def listener_gid(self) -> int:
        """The listener's group: the group of the directory and of every socket."""
        return self._listener_gid

    @listener_gid.setter
    def listener_gid(self, gid: int) -> None:
        # The listener's user changed (a reload): the directory follows at once, before a queue
        # is created or repaired, so the old group cannot reach the new listener's queues.
        self._listener_gid = gid
        if os.path.isdir(self.directory):
            self.ensure_directory()

    def ensure_directory(self) -> None:
        """Create the queues directory: 0750, and as root owned by root and the listener's group
        (the listener may reach the sockets, no one else may)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.directory, 0, self._listener_gid)
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
