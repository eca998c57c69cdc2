"""Value spellings people write and the loader accepts: whole floats, bare byte counts, a bare 0."""

from __future__ import annotations

import os

import pytest

from orchestrator.errors import ManifestError
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


def test_a_disabled_queue_needs_no_pool(tmp_path: object) -> None:
    """A site taken offline: its queue answers 503 by itself, so no pool is required; an enabled
    queue without a pool is still an error."""
    body = (
        "queues: {q: {state: disabled, verbosity503: full}}\n"
        'urlGroups: {g: {queue: q, urls: ["http://127.0.0.1:8080/"]}}\n'
    )
    desired = _load(tmp_path, body)
    assert Key(Kind.QUEUE, "q") in desired.resources  # type: ignore[attr-defined]
    path = os.path.join(str(tmp_path), "site.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(
            "apiVersion: orchestrator/v1\n" + body.replace("state: disabled", "state: enabled")
        )
    with pytest.raises(ManifestError, match="no worker pool serves it"):
        load_manifest(path)


def test_listener_open_files_defaults_to_none_and_is_read_when_given() -> None:
    """``session.listener.openFiles``: null (the controller's hard limit) unless set."""
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.load import ManifestFile, ManifestSet

    def listener(extra: str) -> object:
        text = f"apiVersion: orchestrator/v1\nsession:\n  name: s\n{extra}"
        mset = ManifestSet("m.yaml", (ManifestFile("m.yaml", text.encode()),))
        session = load_manifest(mset).desired.session
        assert session is not None
        return session.listener.open_files

    assert listener("") is None
    assert 256 == listener("  listener: {openFiles: 256}\n")


def test_listener_processes_is_a_count_or_auto() -> None:
    """``session.listener.processes``: 1 unless set; a count, or "auto" kept as written (the
    backend turns it into one per usable CPU)."""
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.load import ManifestFile, ManifestSet

    def processes(extra: str) -> object:
        text = f"apiVersion: orchestrator/v1\nsession:\n  name: s\n{extra}"
        mset = ManifestSet("m.yaml", (ManifestFile("m.yaml", text.encode()),))
        session = load_manifest(mset).desired.session
        assert session is not None
        return session.listener.processes

    assert 1 == processes("")
    assert 3 == processes("  listener: {processes: 3}\n")
    assert "auto" == processes("  listener: {processes: auto}\n")


def test_auto_listener_processes_follow_the_usable_cpus_with_a_cap() -> None:
    """ "auto" is one listener per CPU this process may run on, at most AUTO_PROCESSES_MAX."""
    import os

    from orchestrator.backends.linux.listener_ctl import AUTO_PROCESSES_MAX, listener_processes

    expected = max(1, min(AUTO_PROCESSES_MAX, len(os.sched_getaffinity(0))))
    assert expected == listener_processes("auto")
    assert 5 == listener_processes(5)
