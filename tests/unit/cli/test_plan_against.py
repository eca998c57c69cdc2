"""``plan --against``, ``plan --live``, ``--format markdown``, the errored JSON document, and the
one-line errors of plan's and apply's own path options (issue 13 items 1, 2, 3, 8)."""

from __future__ import annotations

import json
import os
import shutil

import jsonschema
import pytest

from orchestrator.cli import main
from orchestrator.manifest import load_manifest
from orchestrator.plan.snapshot import assumed_live, spec_document
from tests.conftest import REPO

QUICKSTART = os.path.join(REPO, "examples", "quickstart")


@pytest.fixture
def old(tmp_path: object) -> str:
    """A copy of the quickstart elsewhere (the base branch's checkout), differing only in one
    pool's env."""
    target = os.path.join(str(tmp_path), "base")
    shutil.copytree(QUICKSTART, target)
    path = os.path.join(target, "site.yaml")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text.replace("notes, served from a queue", "notes, the old greeting"))
    return target


@pytest.fixture
def run_dir(tmp_path: object) -> str:
    """A run directory where no controller runs."""
    return os.path.join(str(tmp_path), "run")


def _schema() -> object:
    with open(os.path.join(REPO, "schemas", "plan.schema.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_against_a_base_differing_in_one_env_plans_exactly_that_pools_restart(
    old: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's acceptance: exit 2 with --detailed-exitcode and one change, worker/notes'
    restart. The base lies in another directory: its relative cwd is no change."""
    code = main(["plan", QUICKSTART, "--against", old, "--detailed-exitcode", "--json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, _schema())
    assert 2 == code
    assert [("worker/notes", ["create", "delete"], "restart_because_spec_changed")] == [
        (c["address"], c["change"]["actions"], c["action_reason"]) for c in doc["resource_changes"]
    ]
    assert [["env", "NOTES_GREETING"]] == doc["resource_changes"][0]["change"]["replace_paths"]


def test_against_itself_plans_no_changes_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """The same manifest as base: nothing to do."""
    assert 0 == main(["plan", QUICKSTART, "--against", QUICKSTART, "--detailed-exitcode"])
    assert "No changes. Live state matches the manifest." in capsys.readouterr().out


def test_live_reads_a_status_snapshot_and_plans_as_against_does(
    old: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A snapshot of a controller that applied OLD gives the --against OLD plan."""
    applied = load_manifest(old).desired
    snap = os.path.join(str(tmp_path), "snap.json")
    with open(snap, "w", encoding="utf-8") as fh:
        # Applied from QUICKSTART's location: the controller resolved cwd there.
        base = load_manifest(QUICKSTART).desired
        pools = dict(base.resources.items())
        for key, res in applied.resources.items():
            if key.kind.value == "worker":
                import dataclasses

                pools[key] = dataclasses.replace(res, cwd=base.resources[key].cwd)  # type: ignore[union-attr]
        from orchestrator.model import DesiredState

        state = DesiredState.of(pools, applied.manifest_sha256)
        json.dump({"state": "running", "spec": spec_document(assumed_live(state, "linux"))}, fh)
    assert 0 == main(["plan", QUICKSTART, "--live", snap, "--json"])
    live_doc = json.loads(capsys.readouterr().out)
    assert 0 == main(["plan", QUICKSTART, "--against", old, "--json"])
    against_doc = json.loads(capsys.readouterr().out)
    assert against_doc == live_doc


def test_live_rejects_a_file_that_is_not_a_snapshot_in_one_line(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain status document (no --spec) is named, with the command that writes a snapshot."""
    snap = os.path.join(str(tmp_path), "status.json")
    with open(snap, "w", encoding="utf-8") as fh:
        json.dump({"state": "running"}, fh)
    assert 1 == main(["plan", QUICKSTART, "--live", snap])
    err = capsys.readouterr().err
    assert f"{snap}: not a controller snapshot" in err.splitlines()[0]
    assert "Traceback" not in err


def test_markdown_format_writes_a_pull_request_comment(
    old: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counts first, then the one change in a collapsed block with its reason."""
    assert 0 == main(["plan", QUICKSTART, "--against", old, "--format", "markdown"])
    out = capsys.readouterr().out
    assert out.startswith("### orchestrator plan: **0** to add, **0** to change, **1** to replace")
    assert 1 == out.count("<details><summary>")
    assert "<b>worker/notes</b>" in out


def test_json_on_an_invalid_manifest_is_an_errored_document(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout holds a document valid against the plan schema: errored, every diagnostic with a
    line and column; exit 1."""
    site = os.path.join(str(tmp_path), "site.yaml")
    with open(site, "w", encoding="utf-8") as fh:
        fh.write(
            "apiVersion: orchestrator/v1\nsession:\n  name: main\n  bogus: 1\nqueues:\n  a: 3\n"
        )
    assert 1 == main(["plan", site, "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    jsonschema.validate(doc, _schema())
    assert (True, False, []) == (doc["errored"], doc["applyable"], doc["resource_changes"])
    assert len(doc["diagnostics"]) >= 2
    for d in doc["diagnostics"]:
        assert d["file"] == site
        assert isinstance(d["line"], int)
        assert isinstance(d["column"], int)
        assert {"path", "severity", "message", "hint"} <= set(d)
    assert "bogus" in captured.err  # people still read the diagnostics on stderr


def test_the_schema_refuses_an_errored_document_without_diagnostics() -> None:
    """errored: true needs at least one error diagnostic, each with every field."""
    from orchestrator.plan.render import errored_document

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(errored_document([]), _schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(errored_document([{"message": "x", "severity": "error"}]), _schema())


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (
            ["plan", QUICKSTART, "--out", "{tmp}/missing/dir/p.json"],
            "--out {tmp}/missing/dir/p.json: directory {tmp}/missing/dir does not exist; "
            "create it (mkdir -p) or save elsewhere",
        ),
        (
            ["plan", QUICKSTART, "--out", "{tmp}"],
            "--out {tmp}: is a directory; name a file to save the plan in",
        ),
        (
            ["plan", QUICKSTART, "--out", "{file}/p.json"],
            "--out {file}/p.json: {file} is not a directory; save the plan elsewhere",
        ),
        (
            ["plan", QUICKSTART, "--out", "/sys/orchestrator-test/p.json"],
            "--out /sys/orchestrator-test/p.json: directory /sys/orchestrator-test does not",
        ),
        (["plan", QUICKSTART, "--run-dir", "{file}"], "{file}: not a directory"),
        (
            ["plan", QUICKSTART, "--against", "{tmp}/nope"],
            "--against {tmp}/nope: no such file or directory",
        ),
        (
            ["plan", QUICKSTART, "--live", "{tmp}/nope.json"],
            "--live {tmp}/nope.json: no such file or directory; write one with",
        ),
        (
            ["apply", "{tmp}/plan.json"],
            "{tmp}/plan.json: no such file or directory; give a manifest",
        ),
        (["apply", QUICKSTART, "--run-dir", "{file}"], "{file}: not a directory"),
    ],
)
def test_a_bad_path_in_plan_or_apply_is_one_line_and_exit_1(
    argv: list[str], first_line: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """Named path, what to do, no traceback, nothing planned."""
    tmp = str(tmp_path)
    a_file = os.path.join(tmp, "a-file")
    with open(a_file, "w", encoding="utf-8") as fh:
        fh.write("x")
    args = [a.format(tmp=tmp, file=a_file) for a in argv]
    assert 1 == main(args)
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0].startswith(first_line.format(tmp=tmp, file=a_file))
    assert "Traceback" not in captured.err
    assert "will be created" not in captured.out


def test_an_unwritable_out_is_refused_before_planning(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory nobody may write in (not even root: /proc) is named in one line."""
    assert 1 == main(["plan", QUICKSTART, "--out", "/proc/p.json"])
    err = capsys.readouterr().err
    assert err.startswith("--out /proc/p.json: ")
    assert 1 == len(err.strip().splitlines())


def test_an_errored_plan_saved_from_json_is_refused_by_apply() -> None:
    """`plan --json > p.json` on an invalid manifest, then `apply p.json`: refused, named."""
    from orchestrator.errors import PlanError
    from orchestrator.plan.render import errored_document, read_saved_plan

    text = json.dumps(errored_document([], manifest_path="/x/site.yaml"))
    with pytest.raises(PlanError, match=r"p\.json: an errored plan"):
        read_saved_plan(text, "p.json")
