"""A coalescing wake-up with no payload: many ``set()`` calls, one reconcile.

Owns: ``Trigger``. It is a self-pipe, so it can be set from any thread and from a signal handler
(a one-byte non-blocking write is async-signal-safe), and the daemon's selector can wait on it next to
its sockets. Triggers never say what changed: the reconcile re-reads everything (level-triggered).
"""

from __future__ import annotations

import os
import select


class Trigger:
    """Set by events (file change, SIGHUP, worker exit, admin request); consumed by the loop."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._closed = False

    def fileno(self) -> int:
        """The read end, for a selector."""
        return self._read

    def set(self) -> None:
        """Ask for a reconcile (coalesces with any pending request)."""
        try:
            os.write(self._write, b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: a wake-up is already pending

    def consume(self) -> bool:
        """Clear the trigger; returns whether it was set."""
        fired = False
        while True:
            try:
                chunk = os.read(self._read, 4096)
            except BlockingIOError:
                return fired
            if not chunk:
                return fired
            fired = True

    def wait(self, timeout_s: float | None) -> bool:
        """Block until set or until the timeout; consumes the trigger. Returns whether it was set."""
        ready, _, _ = select.select([self._read], [], [], timeout_s)
        return self.consume() if ready else False

    def close(self) -> None:
        """Release the pipe."""
        if not self._closed:
            self._closed = True
            os.close(self._read)
            os.close(self._write)
