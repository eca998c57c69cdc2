"""YAML as people write it: merge keys with overrides, ``x-`` anchor holders, several documents in a
file, YAML 1.1 boolean words and Kubernetes quantities (issue 13 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.errors import ManifestError
from orchestrator.manifest import identities as identities_module
from orchestrator.manifest import load_manifest
from orchestrator.model import Key, Kind
from orchestrator.model.desired import WorkerPool
from tests.unit.manifest.test_invalid_corpus import EveryFileHost

ANCHORED = """\
apiVersion: orchestrator/v1
x-defaults: &defaults
  queue: api
  command: [python3, -m, app]
  processes: 2
x-small: &small
  processes: 1
  shutdownTimeLimit: 5s
queues:
  api: {}
  reports: {}
urlGroups:
  api: {queue: api, urls: ["http://+:8080/api/"]}
workers:
  api:
    <<: *defaults
  reports:
    <<: *defaults
    queue: reports
  batch:
    <<: [*small, *defaults]
    startupTimeLimit: 9s
"""


def _pool(path: Path, name: str) -> WorkerPool:
    pool = load_manifest(str(path)).desired.resources[Key(Kind.WORKER, name)]
    assert isinstance(pool, WorkerPool)
    return pool


def test_an_explicit_key_beats_the_merged_one(tmp_path: Path) -> None:
    """``<<: *defaults`` then ``queue: reports``: the pool serves reports, with the rest merged."""
    path = tmp_path / "site.yaml"
    path.write_text(ANCHORED)
    reports = _pool(path, "reports")
    assert ("reports", ("python3", "-m", "app"), 2) == (
        reports.queue.name,
        reports.command,
        reports.processes,
    )
    assert "api" == _pool(path, "api").queue.name


def test_of_several_merged_mappings_the_earlier_wins(tmp_path: Path) -> None:
    """``<<: [*small, *defaults]``: processes from small (1), the command from defaults."""
    path = tmp_path / "site.yaml"
    path.write_text(ANCHORED)
    batch = _pool(path, "batch")
    assert (1, 5.0, 9.0, "api") == (
        batch.processes,
        batch.shutdown_time_limit_s,
        batch.startup_time_limit_s,
        batch.queue.name,
    )


def test_x_fields_are_ignored_and_validate_prints_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Top-level ``x-`` fields hold anchors: no unknown-field error and no warning."""
    path = tmp_path / "site.yaml"
    path.write_text(
        ANCHORED.replace(
            '  api: {queue: api, urls: ["http://+:8080/api/"]}\n',
            '  api: {queue: api, urls: ["http://+:8080/api/"]}\n'
            '  reports: {queue: reports, urls: ["http://+:8080/reports/"]}\n',
        )
    )
    monkeypatch.setattr(identities_module, "HostIdentities", EveryFileHost)
    assert 0 == main(["validate", str(path)])
    captured = capsys.readouterr()
    assert "" == captured.err
    assert f"{path}: valid (2 queues, 2 URL groups, 3 worker pools;" in captured.out


def test_two_explicit_keys_are_still_a_duplicate_naming_both_lines(tmp_path: Path) -> None:
    """A merge does not excuse a key written twice by hand."""
    path = tmp_path / "site.yaml"
    path.write_text(
        ANCHORED.replace("    queue: reports\n", "    queue: reports\n    queue: api\n")
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    (diag,) = info.value.diagnostics
    assert diag.location is not None
    assert (20, 5, 'duplicate key "queue"') == (
        diag.location.line,
        diag.location.column,
        diag.summary,
    )
    assert f"It is already defined at {path}:19;" in diag.detail


def test_a_merge_of_a_scalar_is_an_error_that_says_what_merges(tmp_path: Path) -> None:
    """``<<: 5`` names what a merge key takes."""
    path = tmp_path / "site.yaml"
    path.write_text(ANCHORED.replace("    <<: *defaults\n    queue: reports", "    <<: 5"))
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    assert "a merge key (<<) takes a mapping or a list of mappings" in [
        d.summary for d in info.value.diagnostics
    ]


SECOND = """\
queues:
  reports: {}
urlGroups:
  reports: {queue: reports, urls: ["http://+:8080/reports/"]}
workers:
  reports: {queue: reports, command: [python3]}
"""
FIRST = """\
apiVersion: orchestrator/v1
queues:
  api: {}
urlGroups:
  api: {queue: api, urls: ["http://+:8080/api/"]}
workers:
  api: {queue: api, command: [python3]}
"""


def test_a_second_document_takes_the_files_api_version(tmp_path: Path) -> None:
    """``---`` then a document without apiVersion merges like a second file (it used to be
    reported as missing apiVersion)."""
    path = tmp_path / "site.yaml"
    path.write_text(FIRST + "---\n" + SECOND)
    names = {r.key.name for r in load_manifest(str(path)).desired.of_kind(Kind.WORKER)}
    assert {"api", "reports"} == names


def test_a_second_document_does_not_inherit_a_wrong_api_version(tmp_path: Path) -> None:
    """The wrong apiVersion is reported where it is written; the next document lacks one."""
    path = tmp_path / "site.yaml"
    path.write_text(FIRST.replace("orchestrator/v1", "orchestrator/v2") + "---\n" + SECOND)
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    got = [(d.location.line, d.summary) for d in info.value.diagnostics if d.location]
    assert [
        (1, 'must be "orchestrator/v1", not "orchestrator/v2"'),
        (9, 'missing required field "apiVersion"'),
    ] == got


def test_an_anchor_used_across_documents_says_anchors_stay_in_one(tmp_path: Path) -> None:
    """PyYAML's "undefined alias" gets the reason: anchors do not cross ``---``."""
    path = tmp_path / "site.yaml"
    path.write_text("apiVersion: orchestrator/v1\nx-d: &d {}\n---\nqueues:\n  api: *d\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    (diag,) = info.value.diagnostics
    assert diag.summary.startswith("YAML syntax error: found undefined alias")
    assert diag.detail.startswith("Anchors (&name) reach only within one YAML document")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "    state: off\n",
            'must be one of enabled, disabled, not off (YAML reads off as false; quote it: "off");'
            ' did you mean "disabled"?',
        ),
        (
            "    verbosity503: yes\n",
            "must be one of basic, limited, full, not yes (YAML reads yes as true; quote it: "
            '"yes")',
        ),
    ],
)
def test_a_yaml_boolean_word_in_an_enum_gets_the_quote_hint(
    tmp_path: Path, line: str, message: str
) -> None:
    """``state: off`` arrives as false: the message shows the word and says to quote it."""
    path = tmp_path / "site.yaml"
    path.write_text(FIRST.replace("  api: {}\n", "  api:\n" + line))
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    assert [message] == [d.summary for d in info.value.diagnostics]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "limits: {memory: 256Mi}",
            '"256Mi" must be a size such as 16KiB, 10MB or 512; did you mean "256MiB"? '
            "(Kubernetes' Mi is written MiB here)",
        ),
        (
            "recycling: {memory: 2G}",
            '"2G" must be a size such as 16KiB, 10MB or 512; did you mean "2GB"? '
            "(Kubernetes' G is written GB here)",
        ),
        (
            "limits: {cpu: 500m}",
            "must be a number, not a string; did you mean 0.5? (Kubernetes' 500m is 0.5 cores here)",
        ),
    ],
)
def test_a_kubernetes_quantity_gets_the_spelling_used_here(
    tmp_path: Path, field: str, message: str
) -> None:
    """256Mi, 2G and 500m are Kubernetes spellings: the hint gives ours."""
    path = tmp_path / "site.yaml"
    path.write_text(FIRST.replace("command: [python3]}", "command: [python3], " + field + "}"))
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    assert [message] == [d.summary for d in info.value.diagnostics]
