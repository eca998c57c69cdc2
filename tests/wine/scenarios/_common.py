"""Helpers shared by the Windows-side scenario scripts: JSON-line events and stdin commands.

Runs under Windows CPython 3.13 inside Wine; standard library and the orchestrator package only.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections.abc import Callable, Iterator

_lock = threading.Lock()


def emit(event: str, **fields: object) -> None:
    """Print one JSON line (thread-safe, flushed: the test reads it as it comes)."""
    line = json.dumps({"event": event, **fields}, default=repr)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def commands() -> Iterator[str]:
    """Commands the test writes to our stdin, one per line, until it closes it."""
    for line in sys.stdin:
        text = line.strip()
        if text:
            yield text


def run(main: Callable[[], None]) -> None:
    """Run ``main``; report an exception as an ``error`` event and exit 1."""
    try:
        main()
    except BaseException as exc:  # report everything: the test sees only stdout
        emit("error", type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc())
        sys.stdout.flush()
        raise SystemExit(1) from None
