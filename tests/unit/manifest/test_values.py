"""Value spellings people write and the loader accepts: whole floats, bare byte counts, a bare 0."""

from __future__ import annotations

import os

from orchestrator.manifest import load_manifest
from orchestrator.model import Key, Kind


def _load(tmp_path: object, body: str) -> object:
    path = os.path.join(str(tmp_path), "site.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("apiVersion: orchestrator/v1\n" + body)
    return load_manifest(path).desired


def test_a_whole_float_in_an_integer_field_is_that_integer(tmp_path: object) -> None:
    """processes: 2.0 means 2 (JSON Schema lets it pass as an integer; it must not crash)."""
    desired = _load(
        tmp_path,
        "queues: {q: {maxLength: 10.0}}\nworkers: {w: {queue: q, command: [x], processes: 2.0}}\n",
    )
    assert 2 == desired.resources[Key(Kind.WORKER, "w")].processes  # type: ignore[attr-defined]
    assert 10 == desired.resources[Key(Kind.QUEUE, "q")].max_length  # type: ignore[attr-defined]


def test_a_bare_number_in_a_size_field_is_bytes(tmp_path: object) -> None:
    """maxBodyBytes: 1048576 is a size in bytes."""
    desired = _load(tmp_path, "session: {limits: {maxBodyBytes: 1048576}}\n")
    assert 1048576 == desired.session.limits.max_body_bytes  # type: ignore[attr-defined]


def test_a_bare_zero_turns_a_recycle_timer_off(tmp_path: object) -> None:
    """recycling.time: 0 is allowed without quotes."""
    desired = _load(
        tmp_path,
        "queues: {q: {}}\nworkers: {w: {queue: q, command: [x], recycling: {time: 0, memory: 0}}}\n",
    )
    pool = desired.resources[Key(Kind.WORKER, "w")]  # type: ignore[attr-defined]
    assert (0.0, 0) == (pool.recycling.time_s, pool.recycling.memory_bytes)
