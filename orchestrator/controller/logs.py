"""Structured logs: one event a line on stderr, as text (``key=value``) or JSON.

Owns: ``LogWriter`` (an ``EventLog`` subscriber, and the one writer of the controller's stderr:
captured output goes through ``write_raw``, so that lines never interleave), ``format_text``, and
the admin API's side of ``orchestrator logs`` (``serve_logs``, ``resolve_pool``): a pool's lines
from its ring (``controller.output``), then, when following, each new one.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

from orchestrator.controller.output import LISTENER, OutputHub, OutputLine

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
        self.write_raw(line + "\n")

    def write_raw(self, text: str) -> None:
        """Write whole lines (``text`` ends with a newline) as they are."""
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed stderr must not take the controller down


# -- orchestrator logs: the admin API's side -------------------------------------------------------
#: Lines a follower may fall behind by before its oldest waiting lines are dropped (and counted).
FOLLOW_BACKLOG = 10_000


class UnknownPool(LookupError):
    """``logs`` named no pool the controller knows."""


def resolve_pool(name: str, known: Iterable[str]) -> str | None:
    """The output source ``orchestrator logs NAME`` means: ``listener`` is the listener (``None``),
    ``worker/NAME`` or ``NAME`` a pool (``worker/listener`` is a pool of that name).

    Raises:
        UnknownPool: no such pool; the message lists the known ones.
    """
    pools = set(known)
    if name == LISTENER:
        return None
    pool = name.removeprefix("worker/")
    if pool in pools:
        return pool
    names = ", ".join([*sorted(pools), LISTENER])
    raise UnknownPool(f'unknown pool "{name}"; known: {names}')


def serve_logs(
    send: Callable[[dict[str, object]], bool],
    output: OutputHub,
    known: Iterable[str],
    args: Mapping[str, object],
    stopped: threading.Event,
) -> None:
    """Answer a ``logs`` request: the pool's buffered lines (``tail``, ``since_s`` seconds back),
    one ``event`` message each, then, with ``follow``, every new line until the client goes or the
    controller stops; else a result. ``send`` returns False once the client is gone."""
    try:
        pool = resolve_pool(str(args.get("pool", "")), known)
    except UnknownPool as exc:
        send({"ok": False, "error": {"summary": str(exc), "kind": "unknown_pool"}})
        return
    tail = args.get("tail")
    since_s = args.get("since_s")
    since = time.time() - float(str(since_s)) if since_s is not None else None
    waiting: collections.deque[OutputLine] = collections.deque()
    wake = threading.Event()
    dropped = [0]

    def take(line: OutputLine) -> None:
        # On the output reader's thread: never block it; a slow client loses its oldest lines.
        if line.pool == pool:
            if len(waiting) >= FOLLOW_BACKLOG:
                waiting.popleft()
                dropped[0] += 1
            waiting.append(line)
            wake.set()

    # Subscribed before the buffer is read, so no line falls between the two (duplicates are
    # skipped by sequence number).
    cancel = output.subscribe(take) if args.get("follow") else None
    try:
        last = 0
        lines = output.lines(pool, tail=int(str(tail)) if tail is not None else None, since=since)
        for line in lines:
            if not send({"event": line.record()}):
                return
            last = line.seq
        if cancel is None:
            send({"ok": True, "result": {"pool": name_of(pool), "lines": len(lines)}})
            return
        while not stopped.is_set():
            if not wake.wait(1.0):
                continue
            wake.clear()
            if dropped[0]:
                count, dropped[0] = dropped[0], 0
                if not send({"event": {"dropped": count}}):
                    return
            while waiting:
                line = waiting.popleft()
                if line.seq > last:
                    if not send({"event": line.record()}):
                        return
                    last = line.seq
    finally:
        if cancel is not None:
            cancel()


def name_of(pool: str | None) -> str:
    """How a source is named: the pool's name, or ``listener``."""
    return LISTENER if pool is None else pool
