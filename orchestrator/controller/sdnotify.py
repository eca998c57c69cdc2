"""Telling a service manager how we are: the sd_notify protocol.

Owns: ``SdNotify``: ``READY=1`` after the first convergence, ``STATUS=`` after each pass,
``RELOADING=1`` (with ``MONOTONIC_USEC=``) and ``READY=1`` around a reload, and the ``WATCHDOG=1``
keep-alive at half of ``WATCHDOG_USEC``. Does nothing when ``NOTIFY_SOCKET`` is not set. Sending
never raises: a service manager that went away must not take the controller with it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping


def watchdog_interval_s(env: Mapping[str, str], pid: int) -> float | None:
    """How often to send ``WATCHDOG=1``, or ``None`` when no keep-alive is expected of ``pid``.

    As ``sd_watchdog_enabled(3)``: expected when ``WATCHDOG_USEC`` is set and ``WATCHDOG_PID`` is
    unset or ``pid``; the recommended cadence is half of ``WATCHDOG_USEC``. A value that is not a
    positive integer turns the watchdog off (systemd never sends one).
    """
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid):
        return None  # meant for another process (we inherited it)
    return int(usec) / 1e6 / 2


class SdNotify:
    """Sends state lines to ``$NOTIFY_SOCKET`` (a path, or an abstract name starting with '@')."""

    def __init__(self, env: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET", "")
        self.ready_sent = False
        self.reload_pending = False  # RELOADING=1 sent, READY=1 not yet
        self.watchdog_s = watchdog_interval_s(env, os.getpid() if pid is None else pid)
        self._last_ping: float | None = None

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

    def reloading(self) -> None:
        """A reload starts: ``RELOADING=1``, once per reload, and only after ``READY=1`` (a
        reload during start-up is part of the start, which ends with the first ``READY=1``).

        systemd 253+ (``Type=notify-reload``) matches ``RELOADING=1`` to the reload it asked for
        by ``MONOTONIC_USEC`` (CLOCK_MONOTONIC, in µs): without it a reload job may end before the
        reload did, or wait for its timeout.
        """
        if not self.ready_sent or self.reload_pending:
            return
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", "STATUS=reloading the manifest", f"MONOTONIC_USEC={usec}")
        self.reload_pending = True

    def reloaded(self, status: str) -> None:
        """The reload has an outcome (applied, rejected or unchanged): ``READY=1`` again. Nothing
        when no ``RELOADING=1`` was sent."""
        if self.reload_pending:
            self.send("READY=1", f"STATUS={status}")
            self.reload_pending = False

    def watchdog_due_in(self, now: float) -> float | None:
        """Seconds until the next ``WATCHDOG=1`` is due (0 when it is), ``None`` without one."""
        if self.watchdog_s is None:
            return None
        if self._last_ping is None:
            return 0.0
        return max(0.0, self._last_ping + self.watchdog_s - now)

    def watchdog(self, now: float) -> bool:
        """Send ``WATCHDOG=1`` when due; returns whether it was sent. The main loop calls this on
        every turn, so a loop that hangs stops the pings and the service manager acts."""
        due = self.watchdog_due_in(now)
        if due is None or due > 0:
            return False
        self.send("WATCHDOG=1")
        self._last_ping = now
        return True
