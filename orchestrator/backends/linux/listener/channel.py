"""The private channel between the controller and a listener process.

Owns: the message format (JSON lines over a Unix stream socketpair, with listening sockets attached
as ``SCM_RIGHTS``) and ``Channel``, used by both ends. Controller → listener: ``config`` (a versioned
routing table and settings; every message carries all listening fds named in ``sockets``, in order,
so a restarted listener needs nothing else) and ``drain``. Listener → controller: ``ack`` (a config
version is in force), ``stats`` (counters) and ``log`` (an error worth the controller's log).
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
from collections import deque

MAX_FDS_PER_MESSAGE = 250


class Channel:
    """One end of the channel; non-blocking reads, blocking (bounded) writes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._fds: deque[int] = deque()
        self.closed = False

    def fileno(self) -> int:
        """For selectors and event loops."""
        return self.sock.fileno()

    def send(self, message: dict[str, object], fds: list[int] | None = None) -> None:
        """Send one message, with ``fds`` attached to its first byte."""
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        fds = fds or []
        if len(fds) > MAX_FDS_PER_MESSAGE:
            raise ValueError("too many fds in one message")
        ancillary = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        )
        sent = self.sock.sendmsg([data], ancillary)
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def receive(self) -> list[tuple[dict[str, object], list[int]]]:
        """Read what is available; returns complete messages with the fds that came with them.

        A message naming ``n`` sockets in ``fd_count`` takes the next ``n`` received fds.
        Returns an empty list when nothing complete is available; sets ``closed`` at EOF.
        """
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(MAX_FDS_PER_MESSAGE * 4)
                )
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.closed = True
                break
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    received = array.array("i")
                    received.frombytes(payload[: len(payload) - len(payload) % 4])
                    self._fds.extend(received)
            if not data:
                self.closed = True
                break
            self._buffer += data
        out: list[tuple[dict[str, object], list[int]]] = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            count = int(message.get("fd_count", 0) or 0)
            fds = [self._fds.popleft() for _ in range(min(count, len(self._fds)))]
            out.append((message, fds))
        return out

    def close(self) -> None:
        """Close the socket and any fds received but not claimed."""
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.popleft())
        self.sock.close()
        self.closed = True
