"""The README's tour against a real controller: the saved-plan step under ``run --no-watch`` has
something to apply, and ``status`` names the manifest that was applied last, also from another path.

Real processes on 127.0.0.1 port 0, the quickstart's apps; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from orchestrator.cli import main
from tests.support.controller import ANY_PORT, Names, quickstart_manifest, running_controller

pytestmark = pytest.mark.integration

THREADS = (
    'command: [orchestrator, worker, "notes:app"]',
    'command: [orchestrator, worker, --threads, "4", "notes:app"]',
)


def _status(run_dir: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert 0 == main(["status", "--json", "--run-dir", run_dir])
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_saved_plan_under_no_watch_applies_the_edit(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --no-watch an edit waits: plan --out saves it, apply PLANFILE applies exactly it, and
    the next plan says no changes (the tour's three steps, each doing something)."""
    with running_controller(
        world_dir, quickstart_manifest(ANY_PORT, names), args=("--no-watch",)
    ) as ctl:
        before = _status(ctl.run_dir, capsys)["manifest"]
        ctl.write("site.yaml", quickstart_manifest(ANY_PORT, names).replace(*THREADS))
        saved = os.path.join(world_dir, "p.json")
        capsys.readouterr()
        assert 2 == main(["plan", ctl.site, "--run-dir", ctl.run_dir, "--detailed-exitcode"])
        assert 0 == main(["plan", ctl.site, "--run-dir", ctl.run_dir, "--out", saved])
        planned = capsys.readouterr().out
        assert "Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy." in planned
        assert before == _status(ctl.run_dir, capsys)["manifest"]  # not applied by itself
        assert 0 == main(["apply", saved, "--run-dir", ctl.run_dir])
        capsys.readouterr()
        assert 0 == main(["plan", ctl.site, "--run-dir", ctl.run_dir, "--detailed-exitcode"])
        assert "No changes." in capsys.readouterr().out


def test_status_names_the_manifest_applied_from_another_path(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply OTHER_DIR: status (JSON and text) names OTHER_DIR, not the directory run started on."""
    with running_controller(
        world_dir, quickstart_manifest(ANY_PORT, names), args=("--no-watch",)
    ) as ctl:
        assert os.path.abspath(ctl.site) == os.path.abspath(
            str(_status(ctl.run_dir, capsys)["manifest"]["path"])  # type: ignore[index]
        )
        other = os.path.join(world_dir, "other")
        shutil.copytree(ctl.site, other)
        with open(os.path.join(other, "site.yaml"), "w", encoding="utf-8") as fh:
            fh.write(quickstart_manifest(ANY_PORT, names).replace(*THREADS))
        assert 0 == main(["apply", other, "--run-dir", ctl.run_dir])
        manifest = _status(ctl.run_dir, capsys)["manifest"]
        assert isinstance(manifest, dict)
        assert other == manifest["path"]
        assert manifest["sha256"] == manifest["desired_sha256"]
        assert 0 == main(["status", "--run-dir", ctl.run_dir])
        assert f"({other})" in capsys.readouterr().out
