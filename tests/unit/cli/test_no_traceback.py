"""Bad paths in options end every command with a one-line error and exit 1, never a traceback.

Each subcommand that takes a path is run with the mistakes a user makes: a missing directory, a
file where a directory is expected, an output nobody may write (``/sys`` refuses new files even to
root). Commands that talk to a controller get a bad ``--run-dir`` and need none running.
``schema`` takes no path and ``worker`` is the runner's (its options are addresses, not paths).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from tests.conftest import REPO

# The repository's own copy: as root, a manifest under /tmp is refused as untrusted (a sticky,
# world-writable directory), which would hide the error under test.
QUICKSTART = os.path.join(REPO, "examples", "quickstart")
UNWRITABLE = "/sys/orchestrator-test"

#: (name, argv with {missing}, {file}, {unwritable}, what the first line of stderr must name)
CASES = [
    ("validate a missing directory", ["validate", "{missing}/"], "{missing}"),
    ("validate under a file", ["validate", "{file}/site.yaml"], "{file}/site.yaml"),
    ("render a missing directory", ["render", "kubernetes", "{missing}"], "{missing}"),
    (
        "render -o a file",
        ["render", "kubernetes", QUICKSTART, "-o", "{file}"],
        "{file}: exists and is not a directory",
    ),
    (
        "render -o unwritable",
        ["render", "kubernetes", QUICKSTART, "-o", "{unwritable}"],
        "{unwritable}: cannot write",
    ),
    ("plan a missing directory", ["plan", "{missing}", "--run-dir", "{missing}"], "{missing}"),
    (
        "plan --out into a missing directory",
        ["plan", QUICKSTART, "--run-dir", "{missing}", "--out", "{missing}/p.json"],
        "{missing}/p.json",
    ),
    (
        "plan --out under a file",
        ["plan", QUICKSTART, "--run-dir", "{missing}", "--out", "{file}/p.json"],
        "{file}/p.json",
    ),
    (
        "plan --out unwritable",
        ["plan", QUICKSTART, "--run-dir", "{missing}", "--out", "{unwritable}.json"],
        "{unwritable}.json",
    ),
    (
        "plan --run-dir a file",
        ["plan", QUICKSTART, "--run-dir", "{file}"],
        "{file}: not a directory",
    ),
    ("apply a missing directory", ["apply", "{missing}", "--run-dir", "{missing}"], "{missing}"),
    (
        "apply --run-dir a file",
        ["apply", QUICKSTART, "--run-dir", "{file}"],
        "{file}: not a directory",
    ),
    ("run a missing directory", ["run", "{missing}", "--run-dir", "{missing}"], "{missing}"),
    ("run --run-dir a file", ["run", QUICKSTART, "--run-dir", "{file}"], "{file}: not a directory"),
    (
        "run --run-dir unwritable",
        ["run", QUICKSTART, "--run-dir", "{unwritable}"],
        "{unwritable}: ",  # mkdir in sysfs: EPERM, where open() gives EACCES
    ),
    (
        "status --run-dir missing",
        ["status", "--run-dir", "{missing}"],
        "no controller is running at {missing}",
    ),
    ("status --run-dir a file", ["status", "--run-dir", "{file}"], "{file}: not a directory"),
    ("down --run-dir a file", ["down", "--run-dir", "{file}"], "{file}: not a directory"),
    ("reset --run-dir a file", ["reset", "web", "--run-dir", "{file}"], "{file}: not a directory"),
    ("events --run-dir a file", ["events", "--run-dir", "{file}"], "{file}: not a directory"),
    (
        "open --run-dir a file",
        ["open", "api", "--run-dir", "{file}", "--", "true"],
        "{file}: not a directory",
    ),
    (
        "open --run-dir missing",
        ["open", "api", "--run-dir", "{missing}", "--", "true"],
        "no broker answers at {missing}",
    ),
]


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """A missing directory, a plain file and a path no one may create."""
    file = tmp_path / "file"
    file.write_text("not a directory\n")
    return {"missing": str(tmp_path / "missing"), "file": str(file), "unwritable": UNWRITABLE}


def _fill(text: str, paths: dict[str, str]) -> str:
    return text.format(**paths)


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_path_is_one_line_and_exit_1(
    paths: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    """Exit 1, an error line (not a detail line) names the path, and no traceback. Where the
    wording is this module's (not plan's own --out checks), the line also says what is wrong."""
    code = main([_fill(a, paths) for a in argv])
    err = capsys.readouterr().err
    assert 1 == code, err
    assert "Traceback" not in err
    problem = next(line for line in err.splitlines() if _fill(expected, paths) in line)
    assert not problem.startswith(" "), err  # the error itself, not a detail line


def test_the_console_script_prints_no_traceback_either(paths: dict[str, str]) -> None:
    """The same mistake through the real entry point (``python -m orchestrator``): the text a
    user sees on the terminal has no traceback, only the one line."""
    out = paths["missing"] + "/p.json"
    argv = ["plan", QUICKSTART, "--run-dir", paths["missing"], "--out", out]
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == proc.returncode
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert out in line


def test_debug_shows_the_traceback_of_a_path_problem() -> None:
    """--debug keeps tracebacks for bug reports, path problems included."""
    with pytest.raises(OSError, match="orchestrator-test"):
        main(["--debug", "run", QUICKSTART, "--run-dir", UNWRITABLE])
