"""Telling a service manager how we are: the sd_notify protocol (``READY=1``, ``STATUS=...``).

Owns: ``SdNotify``. Does nothing when ``NOTIFY_SOCKET`` is not set.
"""

from __future__ import annotations

import contextlib
import os
import socket


class SdNotify:
    """Sends state lines to ``$NOTIFY_SOCKET`` (a path, or an abstract name starting with '@')."""

    def __init__(self) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET", "")
        self.ready_sent = False

    def send(self, *lines: str) -> None:
        """Send ``KEY=VALUE`` lines in one datagram."""
        if not self.address:
            return
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode(), address)

    def ready(self, status: str) -> None:
        """``READY=1`` the first time, ``STATUS=`` every time."""
        if not self.ready_sent:
            self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")
            self.ready_sent = True
        else:
            self.send(f"STATUS={status}")
