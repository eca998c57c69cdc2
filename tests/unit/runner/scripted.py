"""A scripted ``recv``: hands out prepared byte strings one per call, then EOF."""

from __future__ import annotations

import random
from collections.abc import Iterable


class ScriptedRecv:
    """``recv(n)`` returning the next scripted piece (at most ``n`` bytes of it) or ``b""`` at the end."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = [p for p in pieces if p]
        self.calls = 0

    def __call__(self, n: int) -> bytes:
        self.calls += 1
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if len(piece) > n:
            self.pieces.insert(0, piece[n:])
            piece = piece[:n]
        return piece


def split_randomly(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at reproducible random points (pieces of 1 to 7 bytes)."""
    rng = random.Random(seed)
    pieces = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 7)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def byte_at_a_time(data: bytes) -> list[bytes]:
    """gunicorn's harshest split."""
    return [data[i : i + 1] for i in range(len(data))]
