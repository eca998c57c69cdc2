"""``orchestrator plan`` and ``apply PLANFILE`` without a controller: exit codes, JSON, stale plans."""

from __future__ import annotations

import json
import os
import shutil

import jsonschema
import pytest

from orchestrator.cli import main
from tests.conftest import REPO

QUICKSTART = os.path.join(REPO, "examples", "quickstart")


@pytest.fixture
def site(tmp_path: object) -> str:
    """A private copy of the quickstart example."""
    target = os.path.join(str(tmp_path), "site")
    shutil.copytree(QUICKSTART, target)
    return target


@pytest.fixture
def run_dir(tmp_path: object) -> str:
    """A run directory where no controller runs."""
    return os.path.join(str(tmp_path), "run")


def test_plan_without_a_controller_creates_everything_and_exits_2(
    site: str, run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every object is a create, the note says why, and --detailed-exitcode gives 2."""
    code = main(["plan", site, "--detailed-exitcode", "--run-dir", run_dir])
    out = capsys.readouterr().out
    assert 2 == code
    assert f"no controller is running at {run_dir}" in out
    assert 7 == out.count("will be created")
    assert "Plan: 7 to add, 0 to change, 0 to replace, 0 to destroy." in out
    assert "\x1b[" not in out  # no colour when stdout is not a terminal


def test_plan_without_detailed_exitcode_exits_0(site: str, run_dir: str) -> None:
    """Changes are not an error unless asked for."""
    assert 0 == main(["plan", site, "--run-dir", run_dir])


def test_plan_json_follows_the_documented_shape(
    site: str, run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints only JSON on stdout, valid against schemas/plan.schema.json."""
    assert 0 == main(["plan", site, "--json", "--run-dir", run_dir])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    with open(os.path.join(REPO, "schemas", "plan.schema.json"), encoding="utf-8") as fh:
        jsonschema.validate(doc, json.load(fh))
    assert {"add": 7, "change": 0, "replace": 0, "destroy": 0, "drift": 0} == doc["summary"]
    assert all(c["change"]["actions"] == ["create"] for c in doc["resource_changes"])
    assert "no controller is running" in captured.err


def test_a_saved_plan_of_a_changed_manifest_is_stale(
    site: str, run_dir: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan --out, edit the manifest, apply the plan: refused as stale, exit 1."""
    saved = os.path.join(str(tmp_path), "plan.json")
    assert 0 == main(["plan", site, "--out", saved, "--run-dir", run_dir])
    with open(os.path.join(site, "site.yaml"), "a", encoding="utf-8") as fh:
        fh.write("\n# an edit after the plan was made\n")
    capsys.readouterr()
    assert 1 == main(["apply", saved, "--run-dir", run_dir])
    err = capsys.readouterr().err
    assert "Plan is stale" in err
    assert "changed after the plan was made; run plan again" in err


def test_a_fresh_saved_plan_needs_a_running_controller(
    site: str, run_dir: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unchanged manifest passes the stale check, then apply says plainly that nothing runs."""
    saved = os.path.join(str(tmp_path), "plan.json")
    assert 0 == main(["plan", site, "--out", saved, "--run-dir", run_dir])
    capsys.readouterr()
    assert 1 == main(["apply", saved, "--run-dir", run_dir])
    err = capsys.readouterr().err
    assert f"no controller is running at {run_dir}" in err
    assert "Traceback" not in err


def test_a_file_that_is_not_a_plan_is_refused(
    tmp_path: object, run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON file of another kind is named and explained, not a traceback."""
    bogus = os.path.join(str(tmp_path), "x.json")
    with open(bogus, "w", encoding="utf-8") as fh:
        fh.write('{"format_version": "9.0", "hello": 1}')
    assert 1 == main(["apply", bogus, "--run-dir", run_dir])
    assert "not a saved plan" in capsys.readouterr().err


def test_plan_of_an_invalid_manifest_exits_1_with_located_errors(
    tmp_path: object, run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same diagnostics as validate."""
    path = os.path.join(str(tmp_path), "bad.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("apiVersion: orchestrator/v1\nqueues:\n  api: {maxLenght: 5}\n")
    assert 1 == main(["plan", path, "--detailed-exitcode", "--run-dir", run_dir])
    assert (
        'bad.yaml:3:9: queues.api.maxLenght: unknown field "maxLenght"' in capsys.readouterr().err
    )
