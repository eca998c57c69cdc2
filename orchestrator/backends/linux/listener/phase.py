"""The phases of a client connection: a closed set, the one the timers look at.

Owns: ``Phase``. Both hot-path cores export these members (``fast.py`` as they are; ``_fast.pyx``
keeps C ints inside and hands these members to Python), so ``proxy``, ``app`` and the timers see
``Phase.IDLE``, never a bare 3. An ``IntEnum``: the compiled core stores the value in a C int.

Must not import: anything else of the listener (both cores import this module).
"""

from __future__ import annotations

import enum


class Phase(enum.IntEnum):
    """Where a client connection is in its request cycle."""

    HEAD = 0  # reading a request head (the header-wait timer runs)
    BODY = 1  # reading a request body (the entity-body timer runs)
    WAIT = 2  # the request is upstream; waiting for the response
    IDLE = 3  # between requests on a kept-alive connection (the idle timer runs)
    CLOSING = 4  # closing; no timer


__all__ = ["Phase"]
