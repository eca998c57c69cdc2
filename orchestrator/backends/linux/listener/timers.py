"""The listener's connection timers, as pure decisions.

Owns: ``Expiry`` (which timer ran out, named by its http.sys counter), ``expired`` (header wait, idle
keep-alive, entity body) and ``send_rate`` (the minimum send rate, after a grace period). They take
``now`` and return a verdict; they read no clock and touch no socket. The connection's sweep
(``proxy.ClientConnection.sweep``, called once a second by ``app.ListenerApp.sweep`` with the app's
injected clock) acts on the verdict: a 408 or a close, a reset for a client too slow to read.

Must not import: ``proxy``, ``app`` or anything doing I/O (``time``, ``asyncio``, ``socket``).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

from orchestrator.backends.linux.listener.phase import Phase

if TYPE_CHECKING:
    from orchestrator.backends.linux.listener.config import Settings

#: The time a client is given before the minimum send rate applies (and between two checks of it).
SEND_RATE_GRACE_S: Final = 5.0

#: When the write buffer was last measured, and how many bytes it held then (0: empty).
WriteMark = tuple[float, int]


class Expiry(enum.StrEnum):
    """A timer that ran out; the value is the error counter it adds to (http.sys's names)."""

    HEADER_WAIT = "Timer_HeaderWait"  # a head not complete in time: 408 if any byte came, or close
    IDLE = "Timer_ConnectionIdle"  # no new request on a kept-alive connection: close
    ENTITY_BODY = "Timer_EntityBody"  # a body not complete in time: 408
    MIN_SEND_RATE = "Timer_MinBytesPerSecond"  # a client reading too slowly: reset


def expired(
    phase: Phase,
    since: float,
    now: float,
    settings: Settings,
    *,
    body_limit_s: float,
    body_done: bool,
) -> Expiry | None:
    """The phase timer that ran out, if any.

    Args:
        phase: the connection's phase.
        since: when it entered that phase (or last received body bytes), on the listener's clock.
        now: the time now, on the same clock.
        settings: the session's timers.
        body_limit_s: the entity-body timer of the request's route (the session's without one).
        body_done: the request body is complete (the entity-body timer stops).
    """
    elapsed = now - since
    if phase == Phase.HEAD and elapsed > settings.header_wait_s:
        return Expiry.HEADER_WAIT
    if phase == Phase.IDLE and elapsed > settings.idle_connection_s:
        return Expiry.IDLE
    if phase == Phase.BODY and not body_done and elapsed > body_limit_s:
        return Expiry.ENTITY_BODY
    return None


def send_rate(mark: WriteMark, buffered: int, now: float, min_rate: int) -> tuple[bool, WriteMark]:
    """Whether a client reads too slowly, and the mark to keep for the next check.

    The clock starts when the write buffer first holds bytes; after ``SEND_RATE_GRACE_S`` the
    client must have taken at least ``min_rate`` bytes a second since the mark (0: no minimum).

    Args:
        mark: the mark kept from the previous check.
        buffered: bytes in the connection's write buffer now.
        now: the time now, on the listener's clock.
        min_rate: the minimum send rate, B/s.

    Returns:
        ``(too_slow, mark)``: too slow means reset the connection (the mark is then unchanged).
    """
    when, marked = mark
    if buffered == 0:
        return False, (now, 0)
    if marked == 0:
        return False, (now, buffered)
    if now - when < SEND_RATE_GRACE_S:
        return False, mark
    if min_rate and marked - buffered < min_rate * (now - when):
        return True, mark
    return False, (now, buffered)


__all__ = ["SEND_RATE_GRACE_S", "Expiry", "WriteMark", "expired", "send_rate"]
