"""Readiness reports from workers: the ``NOTIFY_SOCKET`` datagram socket (sd_notify protocol).

Owns: ``NotifySocket``. Workers (gunicorn, the project's runner) send ``READY=1``; the sender's pid is
read from ``SCM_CREDENTIALS``, which the kernel fills in, so a process can only speak for itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct


class NotifySocket:
    """A datagram socket at ``path`` that collects (pid, {key: value}) messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        # Any worker uid must be able to send; the sender's identity comes from the kernel.
        os.chmod(path, 0o666)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        """For the selector."""
        return self.sock.fileno()

    def read(self) -> list[tuple[int, dict[str, str]]]:
        """Every pending message: the sender's pid and its ``KEY=VALUE`` lines."""
        out: list[tuple[int, dict[str, str]]] = []
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return out
            pid = 0
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            fields = {}
            for line in data.decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key] = value
            if pid:
                out.append((pid, fields))

    def close(self) -> None:
        """Close and remove the socket."""
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
