"""The injectable clock: real time for the daemon, fake time for tests.

Owns: ``Clock`` (a protocol), ``SystemClock`` and ``FakeClock``.
Must not import anything from ``orchestrator``.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What pure code asks of time: a monotonic reading and a wall-clock reading."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (for display and logs only)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to (``advance``), for tests in virtual time."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("time never goes back")
        self._now += seconds
