"""The admin API's wire format: versioned JSON lines over a Unix socket.

Owns: message encoding and decoding, and the protocol version. A request is one line
``{"v": 1, "op": OP, "args": {...}}``; the reply is zero or more ``{"v": 1, "event": {...}}`` lines
(progress) followed by exactly one ``{"v": 1, "ok": true, "result": {...}}`` or
``{"v": 1, "ok": false, "error": {"summary", "detail", "kind"}}``. A peer speaking another major
version gets an error, never a guess.
"""

from __future__ import annotations

import json

VERSION = 1
OPS = frozenset({"state", "plan", "apply", "events", "down", "reset", "reload", "restart", "logs"})
MAX_LINE = 64 * 1024 * 1024  # a posted manifest set may be large, but not unbounded


class ProtocolError(Exception):
    """A malformed or foreign message."""


def encode(message: dict[str, object]) -> bytes:
    """One message as one line."""
    return json.dumps({"v": VERSION, **message}, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, object]:
    """Parse one line; raises ``ProtocolError`` for bad JSON or another protocol version."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    if message.get("v") != VERSION:
        raise ProtocolError(
            f"protocol version {message.get('v')!r} is not supported (this side speaks {VERSION})"
        )
    return message
