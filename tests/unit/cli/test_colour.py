"""Colour follows ``--no-color``, ``FORCE_COLOR`` (force-color.org), ``NO_COLOR`` (no-color.org)
and whether stdout is a terminal, in that order. ``plan`` is the command that colours."""

from __future__ import annotations

import argparse
import io
import json
import os

import pytest

from orchestrator.cli import main
from orchestrator.cli.common import colour
from tests.conftest import REPO

QUICKSTART = os.path.join(REPO, "examples", "quickstart")
ESC = "\x1b["


class _Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's or CI's own setting must not decide these tests.
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.mark.parametrize(
    ("env", "no_color_flag", "terminal", "expected"),
    [
        ({}, False, True, True),
        ({}, False, False, False),
        ({"NO_COLOR": "1"}, False, True, False),
        ({"NO_COLOR": ""}, False, True, True),  # empty means unset, as no-color.org says
        ({"FORCE_COLOR": "1"}, False, False, True),
        ({"FORCE_COLOR": ""}, False, False, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False, True),  # force-color.org: last word
        ({"FORCE_COLOR": "1"}, True, True, False),  # the flag of this invocation beats both
    ],
)
def test_colour_decision(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    no_color_flag: bool,
    terminal: bool,
    expected: bool,
) -> None:
    """Each combination of flag, variables and terminal gives the documented answer."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdout", _Terminal() if terminal else io.StringIO())
    assert expected == colour(argparse.Namespace(no_color=no_color_flag))


def _plan(tmp_path: object, *extra: str) -> list[str]:
    return ["plan", QUICKSTART, "--run-dir", os.path.join(str(tmp_path), "run"), *extra]


def test_force_color_colours_a_plan_piped_into_a_ci_log(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """FORCE_COLOR=1 colours the plan although stdout is not a terminal."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert 0 == main(_plan(tmp_path))
    assert f"{ESC}32m+{ESC}0m" in capsys.readouterr().out


def test_no_color_keeps_a_plan_on_a_terminal_plain(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR=1 removes the colour a terminal would get."""
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert 0 == main(_plan(tmp_path))
    assert ESC in terminal.getvalue()  # the control: a terminal is coloured
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert 0 == main(_plan(tmp_path))
    assert "will be created" in terminal.getvalue()
    assert ESC not in terminal.getvalue()


def test_force_color_never_colours_json(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON stays parseable whatever the environment asks for."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert 0 == main(_plan(tmp_path, "--json"))
    out = capsys.readouterr().out
    assert ESC not in out
    json.loads(out)


def test_top_level_help_documents_the_colour_variables(capsys: pytest.CaptureFixture[str]) -> None:
    """``orchestrator --help`` names both variables and their order."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "NO_COLOR=1" in out
    assert "FORCE_COLOR=1" in out
    assert "--no-color beats both" in out
