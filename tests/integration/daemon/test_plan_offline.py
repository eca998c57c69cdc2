"""A controller-backed plan, ``plan --against`` and ``plan --live`` are the same plan (issue 13 item 1).

A controller applies manifest A (the quickstart's shape on port 0). B changes one pool's env (a
restart), the other pool's process count (an update in place) and adds a queue (a create). Then
``plan B`` through the controller, ``plan B --against A`` and ``plan B --live SNAPSHOT`` (written by
``orchestrator status --json --spec``) must print the same JSON document except for what
legitimately differs: ``live.generation`` is unknown to ``--against`` (a controller counts its own
applies; ``--live`` reads it from the snapshot, so only ``--against`` differs there). The text forms
must match too, apart from the same generation in their header line.
"""

from __future__ import annotations

import json
import os

import pytest

from orchestrator.cli import main
from tests.support.controller import ANY_PORT, Names, quickstart_manifest, running_controller

pytestmark = pytest.mark.integration


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o644)


def _plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["plan", *argv, "--json", "--detailed-exitcode"])
    return code, json.loads(capsys.readouterr().out)


def test_controller_against_and_live_plans_are_identical(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same steps, reasons, replace paths, waves, fingerprints; only live.generation differs."""
    site = os.path.join(world_dir, "site")
    # Absolute cwd: B lies in another directory, and a relative cwd would resolve there.
    a = quickstart_manifest(ANY_PORT, names).replace("cwd: apps", f"cwd: {site}/apps")
    b = (
        a.replace(
            f"  {names.notes}:\n    queue: {names.notes}\n    command:",
            f"  {names.notes}:\n    queue: {names.notes}\n    env: {{GREETING: changed}}\n"
            "    command:",
        )
        .replace(
            f"  {names.hello}:\n    queue: {names.hello}\n    command:",
            f"  {names.hello}:\n    queue: {names.hello}\n    processes: 2\n    command:",
        )
        .replace("queues:\n", "queues:\n  spare: {}\n")
    )
    assert 1 == b.count("processes: 2")
    assert "GREETING" in b
    with running_controller(world_dir, a) as ctl:
        run_dir = os.path.join(world_dir, "run")
        next_site = os.path.join(world_dir, "next", "site.yaml")
        _write(next_site, b)
        snapshot = os.path.join(world_dir, "snapshot.json")
        assert 0 == main(["status", "--json", "--spec", "--run-dir", run_dir])
        _write(snapshot, capsys.readouterr().out)

        code, controller = _plan(capsys, next_site, "--run-dir", run_dir)
        generation = ctl.state()["generation"]
    old = os.path.join(site, "site.yaml")
    against_code, against = _plan(capsys, next_site, "--against", old)
    live_code, live = _plan(capsys, next_site, "--live", snapshot)

    assert (2, 2, 2) == (code, against_code, live_code)
    changes = {c["address"]: c.get("action_reason", "") for c in controller["resource_changes"]}  # type: ignore[union-attr]
    assert {
        "queue/spare": "",
        f"worker/{names.hello}": "update_because_spec_changed",
        f"worker/{names.notes}": "restart_because_spec_changed",
    } == changes
    assert controller == live
    assert generation == controller["live"]["generation"]  # type: ignore[index]
    assert 0 == against["live"]["generation"]  # type: ignore[index]
    for doc in (controller, against):
        doc["live"] = {k: v for k, v in doc["live"].items() if k != "generation"}  # type: ignore[union-attr]
    assert controller == against
