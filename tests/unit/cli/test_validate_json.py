"""``orchestrator validate``: ``--json`` always prints a document (schemas/validate.schema.json),
``-`` reads stdin, and ``--warnings-as-errors`` fails on warnings."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from orchestrator.cli import main
from tests.conftest import REPO

QUICKSTART = os.path.join(REPO, "examples", "quickstart")
SITE = os.path.join(QUICKSTART, "site.yaml")
DIAGNOSTIC_FIELDS = {"file", "line", "column", "path", "severity", "message", "hint"}
# A typo in a field name and a route to a queue no pool serves: one schema error, found at once.
TYPO = """\
apiVersion: orchestrator/v1
queues:
  api:
    maxLenght: 10
"""


def _schema() -> dict[str, object]:
    with open(os.path.join(REPO, "schemas", "validate.schema.json"), encoding="utf-8") as fh:
        schema: dict[str, object] = json.load(fh)
    return schema


def _json_of(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, _schema())
    return doc


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.fixture
def spare_queue(tmp_path: Path) -> str:
    """The quickstart plus a queue nothing uses: valid, with one warning."""
    target = tmp_path / "site"
    shutil.copytree(QUICKSTART, target)
    site = target / "site.yaml"
    site.write_text(site.read_text().replace("queues:\n", "queues:\n  spare: {}\n", 1))
    return str(target)


def test_invalid_manifest_prints_errored_document_with_located_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid manifest still gives JSON on stdout: errored, and each diagnostic located."""
    site = tmp_path / "site.yaml"
    site.write_text(TYPO)
    assert 1 == main(["validate", "--json", str(site)])
    doc = _json_of(capsys)
    assert doc["errored"] is True
    assert doc["valid"] is False
    diagnostics = doc["diagnostics"]
    assert isinstance(diagnostics, list)
    assert diagnostics
    for d in diagnostics:
        assert DIAGNOSTIC_FIELDS <= d.keys()
        assert str(site) == d["file"]
        assert d["line"] > 0
        assert d["column"] > 0
    typo = next(d for d in diagnostics if "maxLenght" in d["message"])
    assert (4, 5, "error") == (typo["line"], typo["column"], typo["severity"])
    assert "queues.api.maxLenght" == typo["path"]


def test_valid_manifest_prints_a_document_that_is_not_errored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The quickstart: valid, not errored, no diagnostics, its object counts."""
    assert 0 == main(["validate", "--json", QUICKSTART])
    doc = _json_of(capsys)
    assert (True, False, []) == (doc["valid"], doc["errored"], doc["diagnostics"])
    manifests = doc["manifests"]
    assert isinstance(manifests, list)
    assert {"queue": 2, "urlgroup": 2, "worker": 2} == manifests[0]["objects"]


def test_missing_path_with_json_still_prints_a_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that does not exist is a diagnostic in the document, not a bare stderr line."""
    missing = str(tmp_path / "nope")
    assert 1 == main(["validate", "--json", missing])
    doc = _json_of(capsys)
    assert doc["errored"] is True
    assert [(missing, "no such file or directory")] == [
        (d["file"], d["message"])
        for d in doc["diagnostics"]  # type: ignore[attr-defined]
    ]


def test_dash_reads_the_manifest_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``git show main:site.yaml | orchestrator validate -`` validates what was piped in."""
    with open(SITE, "rb") as fh:
        _stdin(monkeypatch, fh.read())
    assert 0 == main(["validate", "-"])
    out = capsys.readouterr().out
    assert out.startswith("<stdin>: valid (2 queues, 2 URL groups, 2 worker pools; manifest ")


def test_errors_in_stdin_are_located_in_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Diagnostics about piped input name ``<stdin>`` with the line and column."""
    _stdin(monkeypatch, TYPO.encode())
    assert 1 == main(["validate", "--json", "-"])
    doc = _json_of(capsys)
    diagnostics = doc["diagnostics"]
    assert isinstance(diagnostics, list)
    assert ("<stdin>", 4, 5) == (
        diagnostics[0]["file"],
        diagnostics[0]["line"],
        diagnostics[0]["column"],
    )


def test_dash_twice_reports_the_second_in_the_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdin holds one manifest: a second ``-`` is an error, and --json still prints JSON."""
    with open(SITE, "rb") as fh:
        _stdin(monkeypatch, fh.read())
    assert 1 == main(["validate", "--json", "-", "-"])
    doc = _json_of(capsys)
    assert [True, False] == [
        m["valid"]
        for m in doc["manifests"]  # type: ignore[attr-defined]
    ]
    manifests = doc["manifests"]
    assert isinstance(manifests, list)
    assert ["'-' given more than once"] == [d["message"] for d in manifests[1]["diagnostics"]]


def test_stdin_filename_names_the_piped_manifest_and_anchors_its_relative_paths(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --stdin-filename the quickstart's ``cwd: apps`` is found beside the named file, as
    it is when validating the file itself: no warning, and messages use that name."""
    with open(SITE, "rb") as fh:
        _stdin(monkeypatch, fh.read())
    assert 0 == main(["validate", "--json", "--stdin-filename", SITE, "-"])
    doc = _json_of(capsys)
    assert [] == doc["diagnostics"]
    manifests = doc["manifests"]
    assert isinstance(manifests, list)
    assert SITE == manifests[0]["path"]


def test_warnings_pass_without_warnings_as_errors(spare_queue: str) -> None:
    """A warning alone does not fail validate."""
    assert 0 == main(["validate", spare_queue])


def test_warnings_as_errors_fails_and_says_why(
    spare_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--warnings-as-errors: exit 1, the warning printed, and a line naming the option."""
    assert 1 == main(["validate", "--warnings-as-errors", spare_queue])
    err = capsys.readouterr().err
    assert 'warning: queue "spare" is not used by any URL group or worker pool' in err
    assert f"{spare_queue}: 1 warning, which --warnings-as-errors makes errors" in err


def test_warnings_as_errors_in_json_marks_the_document_errored(
    spare_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest stays valid, the document is errored, the warning keeps its severity."""
    assert 1 == main(["validate", "--json", "--warnings-as-errors", spare_queue])
    doc = _json_of(capsys)
    assert (True, True, True) == (doc["valid"], doc["errored"], doc["warnings_as_errors"])
    assert ["warning"] == [
        d["severity"]
        for d in doc["diagnostics"]  # type: ignore[attr-defined]
    ]


def test_the_repository_schema_is_the_packaged_one() -> None:
    """schemas/validate.schema.json (linked for readers) is the file the package ships."""
    packaged = os.path.join(REPO, "orchestrator", "schemas", "validate.schema.json")
    with (
        open(packaged, "rb") as a,
        open(os.path.join(REPO, "schemas", "validate.schema.json"), "rb") as b,
    ):
        assert a.read() == b.read()
