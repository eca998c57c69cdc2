"""How a command finds its controller's run directory: ``--run-dir``, then
``$ORCHESTRATOR_RUN_DIR``, then ``-f MANIFEST``'s ``session.runDir``, then the default; and the
one-line refusal of a source that is given but bad (issue 12 item 3)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from orchestrator.cli.common import run_dir_of
from orchestrator.cli.main import build_parser, main
from orchestrator.controller.paths import default_run_dir
from orchestrator.errors import OrchestratorError
from tests.unit.cli.test_status_spec import _OneShotController

#: Every command that talks to a controller, with the arguments it needs besides the options.
COMMANDS = [["status"], ["down"], ["reset", "api"], ["events"], ["open", "api"]]


@pytest.fixture
def place() -> Iterator[str]:
    """A short directory (a socket path must fit in 108 bytes) with a manifest naming a runDir."""
    root = tempfile.mkdtemp(prefix="orch-rd-")
    for name in ("flag", "env", "manifest"):
        os.mkdir(os.path.join(root, name))
    with open(os.path.join(root, "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write(f"apiVersion: orchestrator/v1\nsession: {{runDir: {root}/manifest}}\n")
    with open(os.path.join(root, "a-file"), "w", encoding="utf-8") as fh:
        fh.write("not a directory\n")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _resolve(argv: list[str]) -> str:
    return run_dir_of(build_parser().parse_args(argv), None)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_each_source_is_taken_in_order(
    command: list[str], place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--run-dir beats the variable, which beats -f's session.runDir, which beats the default;
    every controller command reads the same options."""
    flag, env, manifest = (os.path.join(place, n) for n in ("flag", "env", "manifest"))
    site = os.path.join(place, "site.yaml")
    file_option = "--file" if command[0] == "events" else "-f"  # events -f is --follow
    monkeypatch.delenv("ORCHESTRATOR_RUN_DIR", raising=False)
    assert default_run_dir() == _resolve(command)
    assert manifest == _resolve([*command[:1], file_option, site, *command[1:]])
    monkeypatch.setenv("ORCHESTRATOR_RUN_DIR", env)
    assert env == _resolve([*command[:1], file_option, site, *command[1:]])
    assert flag == _resolve([*command[:1], "--run-dir", flag, file_option, site, *command[1:]])


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORCHESTRATOR_RUN_DIR= (empty) falls through to the default, as NO_COLOR= does."""
    monkeypatch.setenv("ORCHESTRATOR_RUN_DIR", "")
    assert default_run_dir() == _resolve(["status"])


def test_a_manifest_without_a_run_dir_falls_through_to_the_default(
    place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-f names a manifest whose session has no runDir: the default, like the controller's."""
    monkeypatch.delenv("ORCHESTRATOR_RUN_DIR", raising=False)
    bare = os.path.join(place, "bare.yaml")
    with open(bare, "w", encoding="utf-8") as fh:
        fh.write("apiVersion: orchestrator/v1\nsession: {name: shop}\n")
    assert default_run_dir() == _resolve(["status", "-f", bare])


def test_a_plan_s_own_manifest_counts_as_the_file(
    place: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan and apply hand in the session.runDir of the manifest they loaded: after the
    variable, before the default."""
    monkeypatch.setenv("ORCHESTRATOR_RUN_DIR", os.path.join(place, "env"))
    args = build_parser().parse_args(["status"])
    assert os.path.join(place, "env") == run_dir_of(args, os.path.join(place, "manifest"))
    monkeypatch.delenv("ORCHESTRATOR_RUN_DIR")
    assert os.path.join(place, "manifest") == run_dir_of(args, os.path.join(place, "manifest"))


@pytest.mark.parametrize(
    ("argv", "env", "message", "detail"),
    [
        (["--run-dir", "{file}"], None, "{file}: not a directory", "--run-dir names"),
        ([], "{file}", "{file}: not a directory", "ORCHESTRATOR_RUN_DIR names"),
        (["-f", "{missing}"], None, "--file {missing}: {missing}", "--file names a manifest"),
        (
            ["-f", "{broken}"],
            None,
            "--file {broken}: {broken}:2:1: YAML syntax error",
            "--file names a manifest",
        ),
        (["-f", "{points}"], None, "{file}: not a directory", "session.runDir in {points}"),
    ],
    ids=[
        "flag-is-a-file",
        "variable-is-a-file",
        "manifest-missing",
        "manifest-not-yaml",
        "manifest-run-dir-is-a-file",
    ],
)
def test_a_bad_source_is_refused_in_one_line_naming_it(
    place: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: str | None,
    message: str,
    detail: str,
) -> None:
    """A source that is given is used or refused, never skipped (a typo must not reach another
    controller): the message names the path, the detail where it came from; exit 1."""
    values = {
        "file": os.path.join(place, "a-file"),
        "missing": os.path.join(place, "missing.yaml"),
        "broken": os.path.join(place, "broken.yaml"),
        "points": os.path.join(place, "points.yaml"),
    }
    with open(values["broken"], "w", encoding="utf-8") as fh:
        fh.write("session: [\n")
    with open(values["points"], "w", encoding="utf-8") as fh:
        fh.write(f"session: {{runDir: {values['file']}}}\n")
    if env is None:
        monkeypatch.delenv("ORCHESTRATOR_RUN_DIR", raising=False)
    else:
        monkeypatch.setenv("ORCHESTRATOR_RUN_DIR", env.format(**values))
    with pytest.raises(OrchestratorError) as caught:
        _resolve(["status", *(a.format(**values) for a in argv)])
    assert caught.value.summary.startswith(message.format(**values))
    assert detail.format(**values) in str(caught.value.detail)
    assert 1 == main(["status", *(a.format(**values) for a in argv)])
    err = capsys.readouterr().err
    assert message.format(**values) in err
    assert "Traceback" not in err


def test_status_finds_the_controller_through_the_variable(
    place: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ORCHESTRATOR_RUN_DIR=... orchestrator status, no --run-dir: the request reaches it."""
    env = os.path.join(place, "env")
    controller = _OneShotController(env, {"state": "running", "pid": 4242})
    monkeypatch.setenv("ORCHESTRATOR_RUN_DIR", env)
    try:
        assert 0 == main(["status", "--json"])
    finally:
        controller.close()
    assert [{"v": 1, "op": "state"}] == [
        {k: r[k] for k in ("v", "op") if k in r} for r in controller.requests
    ]
    assert '"pid": 4242' in capsys.readouterr().out
