"""Helpers shared by the http1 unit tests: drive a parser over chunks and summarise what came out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    RequestParser,
    ResponseParser,
)

CORPUS_PATH = Path(__file__).resolve().parents[2] / "data" / "http" / "llhttp-requests.json"

# Small limits for tests that exercise them without megabytes of input.
SMALL_LIMITS: dict[str, Any] = {
    "max_url_bytes": 32,
    "max_header_bytes": 96,
    "max_field_bytes": 24,
    "max_header_fields": 3,
    "max_body_bytes": 16,
    "max_chunk_line_bytes": 12,
}


@dataclass
class Outcome:
    """Everything a parse produced, with adjacent Data merged (read boundaries are not meaningful)."""

    events: list[Event] = field(default_factory=list)
    error: ProtocolError | None = None
    last: object = None  # the sentinel or ConnectionClosed that ended the last drain

    def key(self) -> tuple[object, ...]:
        """A comparable summary: events, then (error class, status, reason)."""
        error = None
        if self.error is not None:
            error = (type(self.error), self.error.error_status_hint, self.error.reason)
        return (tuple(self.events), error)

    @property
    def requests(self) -> list[Request]:
        return [e for e in self.events if isinstance(e, Request)]

    @property
    def ends(self) -> int:
        return sum(isinstance(e, EndOfMessage) for e in self.events)

    @property
    def body(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, Data))


def _append(outcome: Outcome, event: Event) -> None:
    if isinstance(event, Data) and outcome.events and isinstance(outcome.events[-1], Data):
        outcome.events[-1] = Data(outcome.events[-1].data + event.data)
    else:
        outcome.events.append(event)


def drain(parser: RequestParser | ResponseParser, outcome: Outcome) -> None:
    """Pull events until NEED_DATA, PAUSED or ConnectionClosed; record a protocol error and stop."""
    while outcome.error is None:
        try:
            event = parser.next_event()
        except ProtocolError as exc:
            outcome.error = exc
            return
        if event is NEED_DATA or event is PAUSED:
            outcome.last = event
            return
        _append(outcome, event)
        if isinstance(event, ConnectionClosed):
            outcome.last = event
            return


def feed(
    chunks: Iterable[bytes],
    *,
    eof: bool = False,
    parser: RequestParser | ResponseParser | None = None,
    **limits: Any,
) -> Outcome:
    """Feed `chunks` one receive_data() at a time, draining after each; then EOF if asked."""
    parser = parser if parser is not None else RequestParser(**limits)
    outcome = Outcome()
    for chunk in chunks:
        if outcome.error is not None:
            break
        try:
            parser.receive_data(chunk)
        except ProtocolError as exc:
            outcome.error = exc
            break
        drain(parser, outcome)
    if eof and outcome.error is None:
        parser.receive_data(b"")
        drain(parser, outcome)
    return outcome


def parse(data: bytes, *, eof: bool = False, **limits: Any) -> Outcome:
    """Parse `data` delivered in one read."""
    return feed([data], eof=eof, **limits)


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split `data` at the given offsets (sorted, deduplicated, clipped)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    pieces = []
    start = 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def load_corpus() -> dict[str, Any]:
    """The llhttp request vectors (see tests/data/http/LICENSE-llhttp.txt)."""
    with CORPUS_PATH.open(encoding="utf-8") as f:
        corpus: dict[str, Any] = json.load(f)
    return corpus


def raw(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["raw_b64"])
