"""The invalid-manifest corpus: every broken manifest gets exactly its golden diagnostics.

Each case is ``tests/data/manifests/invalid/NNN-name.yaml`` (or a ``NNN-name/`` directory) with
``NNN-name.expected.txt`` beside it, holding exactly what ``orchestrator validate`` prints on stderr
when run from the repository root with the case's path relative to it: one
``FILE:LINE:COL: JSON.PATH: message`` line per problem (plus indented detail lines) and the final
``FILE: invalid (N errors)`` line. To add a case, write the input, run
``orchestrator validate tests/data/manifests/invalid/NNN-name.yaml 2> ...expected.txt`` from the
repository root, and read the result before committing it: the golden file pins what users see.

The host checks (TLS files, a pool's ``cwd`` and ``command[0]``) depend on the machine, so the
in-process cases run on a host where every file and command exists (``test_host_checks.py`` covers
those checks); the subprocess cases name only what every test host has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from orchestrator.cli import main
from orchestrator.manifest import identities as identities_module
from orchestrator.manifest.identities import HostIdentities as RealHost
from tests.conftest import REPO


class EveryFileHost(RealHost):
    """This host's users and groups, with every file, directory and command present."""

    def is_file(self, path: str) -> bool:
        return True

    def is_dir(self, path: str) -> bool:
        return True

    def find_command(self, command: str, path: str, cwd: str) -> str | bool | None:
        return command


@pytest.fixture(autouse=True)
def _every_file_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identities_module, "HostIdentities", EveryFileHost)


CORPUS_REL = "tests/data/manifests/invalid"
CORPUS = os.path.join(REPO, CORPUS_REL)
EXPECTED_SUFFIX = ".expected.txt"

#: ``FILE:LINE:COL: ...`` — the start of every diagnostic line that has a position.
POSITION = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<column>\d+): (?P<rest>.*)$")
FINAL = re.compile(r"^(?P<file>\S+): invalid \((?P<count>\d+) errors?\)$")


@dataclass(frozen=True, slots=True)
class Case:
    """One corpus case: its name, the path passed to validate, and the golden stderr."""

    name: str
    path: str
    expected: str


def _load_cases() -> list[Case]:
    cases = []
    for entry in sorted(os.listdir(CORPUS)):
        if not entry.endswith(EXPECTED_SUFFIX):
            continue
        name = entry.removesuffix(EXPECTED_SUFFIX)
        rel = f"{CORPUS_REL}/{name}.yaml"
        if not os.path.isfile(os.path.join(REPO, rel)):
            rel = f"{CORPUS_REL}/{name}"
        with open(os.path.join(CORPUS, entry), encoding="utf-8") as fh:
            cases.append(Case(name, rel, fh.read()))
    return cases


CASES = _load_cases()
CASES_BY_NAME = {case.name: case for case in CASES}

#: Cases also run through ``python -m orchestrator``: a YAML error, a schema error, semantic
#: errors across sections, a directory, and a warning next to an error.
SUBPROCESS_CASES = [
    "001-yaml-tab-indentation",
    "009-unknown-top-level-field",
    "088-warning-alongside-error",
    "090-several-semantic-errors",
    "091-queue-defined-in-two-files",
]

#: Cases whose ``--json`` output is compared with their golden text.
JSON_CASES = [
    "012-unknown-tls-field",
    "088-warning-alongside-error",
    "089-several-schema-errors",
    "090-several-semantic-errors",
    "095-errors-in-several-files",
]


def _positions(text: str) -> list[tuple[str, int, int]]:
    """``(file, line, column)`` of every diagnostic line of a golden file, in order."""
    out = []
    for line in text.splitlines():
        match = POSITION.match(line)
        if match:
            out.append((match["file"], int(match["line"]), int(match["column"])))
    return out


def _diagnostic_lines(text: str) -> list[str]:
    """The summary lines of a golden file: neither detail lines nor the final count."""
    lines = text.splitlines()[:-1]
    return [line for line in lines if not line.startswith("  ")]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_prints_exactly_the_expected_diagnostics(
    case: Case, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``orchestrator validate CASE`` exits 1 and its stderr equals the golden file."""
    monkeypatch.chdir(REPO)
    code = main(["validate", case.path])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert case.expected == err
    assert 1 == code
    assert "" == out


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_python_m_orchestrator_reports_the_case_without_a_traceback(name: str) -> None:
    """``python -m orchestrator validate`` in a real process prints the golden text and exits 1."""
    case = CASES_BY_NAME[name]
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", case.path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr
    assert case.expected == proc.stderr
    assert 1 == proc.returncode
    assert "" == proc.stdout


@pytest.mark.parametrize("name", JSON_CASES)
def test_json_output_carries_the_same_diagnostics_as_the_text(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``validate --json`` parses and names the same files, lines, columns and summaries."""
    case = CASES_BY_NAME[name]
    monkeypatch.chdir(REPO)
    code = main(["validate", "--json", case.path])
    doc = json.loads(capsys.readouterr().out)
    assert 1 == code
    assert doc["valid"] is False
    (manifest,) = doc["manifests"]
    assert case.path == manifest["path"]
    assert manifest["valid"] is False
    diags = manifest["diagnostics"]
    assert _positions(case.expected) == [(d["file"], d["line"], d["column"]) for d in diags]
    rendered = []
    for d in diags:
        kind = "warning: " if d["severity"] == "warning" else ""
        where = f"{d['file']}:{d['line']}:{d['column']}: " + (f"{d['path']}: " if d["path"] else "")
        rendered.append(where + kind + d["summary"])
    assert _diagnostic_lines(case.expected) == rendered


def test_corpus_has_enough_file_and_directory_cases() -> None:
    """At least 45 cases, at least 3 of them directories of manifest files."""
    dirs = [c for c in CASES if os.path.isdir(os.path.join(REPO, c.path))]
    assert len(CASES) >= 45
    assert len(dirs) >= 3


def test_every_corpus_input_has_an_expected_file_and_the_other_way_round() -> None:
    """No input is silently skipped for want of its golden file, and no golden file is orphaned."""
    inputs, expected = set(), set()
    for entry in os.listdir(CORPUS):
        if entry.endswith(EXPECTED_SUFFIX):
            expected.add(entry.removesuffix(EXPECTED_SUFFIX))
        elif entry.endswith(".yaml") or os.path.isdir(os.path.join(CORPUS, entry)):
            inputs.add(entry.removesuffix(".yaml"))
        else:
            pytest.fail(f"unexpected file in the corpus: {entry}")
    assert inputs == expected
    assert all(re.fullmatch(r"[0-9]{3}-[a-z0-9-]+", name) for name in inputs)
    numbers = sorted(name[:3] for name in inputs)
    assert len(set(numbers)) == len(numbers), "two cases share a number"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_error_count_matches_its_error_lines(case: Case) -> None:
    """The final ``invalid (N errors)`` counts the error lines of the file (not its warnings)."""
    *_, last = case.expected.splitlines()
    final = FINAL.match(last)
    assert final is not None, last
    assert case.path == final["file"]
    errors = [line for line in _diagnostic_lines(case.expected) if ": warning: " not in line]
    assert len(errors) == int(final["count"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_diagnostics_are_sorted_by_file_line_and_column(case: Case) -> None:
    """Problems come out in source order, so several errors read top to bottom."""
    positions = _positions(case.expected)
    assert sorted(positions) == positions
