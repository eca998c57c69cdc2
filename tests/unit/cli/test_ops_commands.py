"""The operator verbs' offline parts: every command's help has examples, the completion scripts
(generated from the parser; bash run for real), and ``show PLANFILE``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess

import pytest

from orchestrator.cli.completion import commands, script
from orchestrator.cli.main import build_parser, main
from orchestrator.model import LiveState
from orchestrator.plan.diff import make_plan
from orchestrator.plan.render import plan_document
from tests.support.states import site


def _subparsers(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix}{name}", sub))
                found += _subparsers(sub, f"{prefix}{name} ")
    return found


@pytest.mark.parametrize(("name", "sub"), _subparsers(build_parser()), ids=lambda v: str(v)[:30])
def test_every_command_help_has_examples(name: str, sub: argparse.ArgumentParser) -> None:
    """``orchestrator COMMAND --help`` ends with an ``examples:`` section naming the command."""
    text = sub.format_help()
    assert "examples:" in text, name
    examples = text.split("examples:", 1)[1]
    assert f"orchestrator {name.split()[0]}" in examples, name


def test_the_new_verbs_are_commands() -> None:
    """restart, reload, show and completion are on the parser (and so in every script)."""
    _, cmds = commands(build_parser())
    assert {"restart", "reload", "show", "completion"} <= {c.name for c in cmds}


def _complete(tmp_path: object, words: list[str]) -> list[str]:
    path = os.path.join(str(tmp_path), "orchestrator.bash")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(script("bash", build_parser()))
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {path}\nCOMP_WORDS=({line})\nCOMP_CWORD={len(words) - 1}\n"
        "_orchestrator\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return [w for w in out.stdout.splitlines() if w]


def test_the_bash_script_parses(tmp_path: object) -> None:
    """``bash -n`` accepts the generated script."""
    path = os.path.join(str(tmp_path), "c.bash")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(script("bash", build_parser()))
    subprocess.run(["bash", "-n", path], check=True)


def test_bash_completes_a_command_name(tmp_path: object) -> None:
    """``orchestrator re<TAB>`` offers the commands starting with re."""
    assert ["render", "reset", "restart", "reload"] == _complete(tmp_path, ["orchestrator", "re"])


def test_bash_completes_a_commands_options(tmp_path: object) -> None:
    """``orchestrator reload --f<TAB>`` offers --force; a status option is not offered."""
    assert ["--force"] == _complete(tmp_path, ["orchestrator", "reload", "--fo"])
    offered = _complete(tmp_path, ["orchestrator", "status", "--"])
    assert {"--json", "--spec", "--run-dir"} <= set(offered)
    assert "--force" not in offered


def test_bash_completes_pool_names_quietly_without_a_controller(tmp_path: object) -> None:
    """No controller answers: the pool position completes to nothing, and no error shows."""
    run_dir = os.path.join(str(tmp_path), "none")
    env_words = ["orchestrator", "restart", "--run-dir", run_dir, ""]
    assert [] == _complete(tmp_path, env_words)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command(shell: str, tmp_path: object) -> None:
    """Each script names every command; where the shell is installed, it parses the script."""
    text = script(shell, build_parser())
    _, cmds = commands(build_parser())
    assert [c.name for c in cmds if c.name not in text] == []
    binary = shutil.which(shell)
    if binary is not None:
        path = os.path.join(str(tmp_path), f"c.{shell}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        subprocess.run([binary, "-n", path], check=True)


def test_complete_prints_nothing_when_no_controller_runs(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hidden ``__complete`` never fails a shell: exit 0 and no output."""
    assert 0 == main(["__complete", "pools", "--run-dir", os.path.join(str(tmp_path), "x")])
    assert ("", "") == capsys.readouterr()


def test_show_renders_a_saved_plan_as_text_and_json(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A saved plan shows its changes and summary; --json prints the document as saved."""
    doc = plan_document(make_plan(site(), LiveState.empty("fake")), manifest_path="site.yaml")
    path = os.path.join(str(tmp_path), "site.plan")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    assert 0 == main(["show", path])
    text = capsys.readouterr().out
    assert "  + queue/api" in text
    assert text.rstrip().endswith("to destroy.")
    summary = doc["summary"]
    assert isinstance(summary, dict)
    assert f"Plan: {summary['add']} to add" in text
    assert 0 == main(["show", path, "--json"])
    assert doc == json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe", b'{"format_version": "1.0"}'])
def test_show_refuses_what_is_not_a_plan_in_one_line(
    content: bytes, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a saved plan: exit 1, one line naming it, no traceback."""
    path = os.path.join(str(tmp_path), "bad.plan")
    with open(path, "wb") as fh:
        fh.write(content)
    assert 1 == main(["show", path])
    err = capsys.readouterr().err.strip()
    assert 1 == len(err.splitlines()), err
    assert err.startswith(f"{path}: not a saved plan")
