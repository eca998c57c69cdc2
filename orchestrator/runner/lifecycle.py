"""The worker's main thread: readiness, signals, graceful drain, exit.

Owns: running any ``Source`` from start to exit. Signal handlers only set a flag; the C-level handler also
writes a byte to a wakeup socket (``signal.set_wakeup_fd``), which is what wakes the main thread — a Python
handler alone would not interrupt a blocking wait (PEP 475 retries it).

- SIGTERM / SIGINT: stop accepting at once, let in-flight requests finish within the grace, exit 0.
  A second one while draining exits at once (so a double Ctrl-C works by hand).
- SIGQUIT (POSIX): exit at once.

Readiness is ``READY=1`` on ``$NOTIFY_SOCKET`` once the source is serving; ``STOPPING=1`` when a stop
begins. Must not import the socket source, HTTP code or app loading: it sees only ``Source``.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
from types import FrameType

from orchestrator.runner.notify import sd_notify
from orchestrator.runner.source import Source

log = logging.getLogger("orchestrator.runner")

DRAIN_POLL_S = 0.1  # how often the drain re-checks for SIGQUIT while waiting for requests to finish


class _Flags:
    """What the signal handlers have asked for; written only by handlers, read by the main loop."""

    def __init__(self) -> None:
        self.stops = 0
        self.quit = False

    def handle_term(self, signum: int, frame: FrameType | None) -> None:
        self.stops += 1

    def handle_quit(self, signum: int, frame: FrameType | None) -> None:
        self.quit = True


def _exit_now(code: int) -> None:
    """Leave without waiting for pool threads that may be stuck inside the app."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run(source: Source, *, graceful_timeout_s: float) -> int:
    """Serve from ``source`` until a signal says stop, then drain and return the exit code.

    Must be called from the main thread (signal handlers can only be installed there).

    Args:
        source: where requests come from; already set up (sockets bound or inherited, app imported).
        graceful_timeout_s: how long in-flight requests may take to finish after SIGTERM.

    Returns:
        0 after a clean stop. SIGQUIT, a second stop signal, or a grace that ran out leave through
        ``os._exit(0)`` instead, since pool threads may still be inside the app.
    """
    flags = _Flags()
    wake_r, wake_w = socket.socketpair()  # a socket, not a pipe: Windows accepts only sockets here
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    previous_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, flags.handle_term)
    signal.signal(signal.SIGINT, flags.handle_term)
    sigbreak = getattr(signal, "SIGBREAK", None)  # Windows: the controller's CTRL_BREAK_EVENT
    if sigbreak is not None:
        signal.signal(sigbreak, flags.handle_term)
    sigquit = getattr(signal, "SIGQUIT", None)
    if sigquit is not None:
        signal.signal(sigquit, flags.handle_quit)

    def wait(timeout_s: float | None) -> None:
        select.select([wake_r], [], [], timeout_s)
        try:
            wake_r.recv(4096)
        except BlockingIOError:
            pass

    try:
        source.start()
        sd_notify("READY=1")
        log.info("ready")
        while not (flags.stops or flags.quit):
            wait(None)
        sd_notify("STOPPING=1")
        if flags.quit:
            log.info("SIGQUIT: exiting at once")
            _exit_now(0)
        log.info("stopping: finishing in-flight requests (grace %.0fs)", graceful_timeout_s)
        source.stop_accepting()
        deadline = time.monotonic() + graceful_timeout_s
        while not source.wait_idle(min(DRAIN_POLL_S, max(0.0, deadline - time.monotonic()))):
            if flags.quit or flags.stops > 1:
                log.info("asked again: exiting at once")
                _exit_now(0)
            if time.monotonic() >= deadline:
                log.warning("grace of %.0fs ran out with requests in flight", graceful_timeout_s)
                _exit_now(0)
        source.close()
        log.info("stopped")
        return 0
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        wake_r.close()
        wake_w.close()
