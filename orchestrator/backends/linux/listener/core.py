"""Which implementation of the listener's hot path runs: the compiled ``_fast`` or its twin ``fast``.

Owns: the choice, made once per process, and the names the rest of the listener imports from it.
The compiled module (Cython, built by ``pip install`` when a C compiler and the Python headers are
there) runs unless ``ORCHESTRATOR_NO_EXTENSIONS`` is set to anything but ``0`` or it is missing; the
pure-Python twin then runs, with the same behaviour, and ``REASON`` says why (the listener logs it
once at start, and ``status`` shows ``IMPLEMENTATION``).

Must not import: ``proxy`` or ``app`` (they import this).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

from orchestrator.backends.linux.listener import fast

ENV_DISABLE = "ORCHESTRATOR_NO_EXTENSIONS"


def choose(environ: dict[str, str] | None = None) -> tuple[ModuleType, str]:
    """The hot-path module to use and, when it is the twin, why.

    Args:
        environ: the environment to read (default: this process's).
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_DISABLE, "") not in ("", "0"):
        return fast, f"{ENV_DISABLE}={env[ENV_DISABLE]}"
    try:
        return importlib.import_module("orchestrator.backends.linux.listener._fast"), ""
    except ImportError as exc:
        return fast, f"the compiled extension is not available ({exc})"


_impl, REASON = choose()
IMPLEMENTATION: str = _impl.IMPLEMENTATION

if TYPE_CHECKING:
    from orchestrator.backends.linux.listener.fast import (
        BODY,
        BUFFERED_BODY,
        CLOSING,
        FAST_MAX_FIELDS,
        HEAD,
        HIGH_WATER,
        IDEMPOTENT,
        IDLE,
        WAIT,
        FastClient,
        Poller,
        QueueStats,
        RouteCache,
        RouteEntry,
        Upstream,
        UpstreamPool,
        format_log,
    )
else:
    BODY = _impl.BODY
    BUFFERED_BODY = _impl.BUFFERED_BODY
    CLOSING = _impl.CLOSING
    FAST_MAX_FIELDS = _impl.FAST_MAX_FIELDS
    HEAD = _impl.HEAD
    HIGH_WATER = _impl.HIGH_WATER
    IDEMPOTENT = _impl.IDEMPOTENT
    IDLE = _impl.IDLE
    WAIT = _impl.WAIT
    FastClient = _impl.FastClient
    Poller = _impl.Poller
    QueueStats = _impl.QueueStats
    RouteCache = _impl.RouteCache
    RouteEntry = _impl.RouteEntry
    Upstream = _impl.Upstream
    UpstreamPool = _impl.UpstreamPool
    format_log = _impl.format_log

__all__ = [
    "BODY",
    "BUFFERED_BODY",
    "CLOSING",
    "ENV_DISABLE",
    "FAST_MAX_FIELDS",
    "HEAD",
    "HIGH_WATER",
    "IDEMPOTENT",
    "IDLE",
    "IMPLEMENTATION",
    "REASON",
    "WAIT",
    "FastClient",
    "Poller",
    "QueueStats",
    "RouteCache",
    "RouteEntry",
    "Upstream",
    "UpstreamPool",
    "choose",
    "format_log",
]
