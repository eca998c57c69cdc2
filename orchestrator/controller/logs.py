"""Structured logs: one event a line on stderr, as text (``key=value``) or JSON.

Owns: ``LogWriter`` (an ``EventLog`` subscriber) and ``format_text``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO

#: Events too chatty for the log (they stay available through ``orchestrator events``).
QUIET = frozenset({"health_wait", "drain_wait", "fake_applied"})


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


def format_text(record: dict[str, object]) -> str:
    """``2026-11-28T10:00:00.123Z event=step_applied reconcile_id=ab12 step="create queue/api"``."""
    ts = float(str(record.get("ts", time.time())))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
    parts = [stamp, f"event={record.get('event')}"]
    for key, value in record.items():
        if key in ("ts", "event", "seq", "traceback"):
            continue
        parts.append(f"{key}={_text_value(value)}")
    line = " ".join(parts)
    if "traceback" in record:
        line += "\n" + str(record["traceback"]).rstrip()
    return line


class LogWriter:
    """Writes events to a stream, one per line."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, object]) -> None:
        if record.get("event") in QUIET:
            return
        if self.fmt == "json":
            line = json.dumps(record, separators=(",", ":"), default=str)
        else:
            line = format_text(record)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not take the controller down
