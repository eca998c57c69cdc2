"""``workers.NAME.sandbox`` and ``session.listener.sandbox``: read into the model, paths made
absolute, YAML's bare ``off``, and the checks that say where a setting cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.errors import ManifestError
from orchestrator.manifest import load_manifest
from orchestrator.model import FilesystemDefault, Kind, Sandbox, SeccompMode, WorkerPool

SITE = """apiVersion: orchestrator/v1
session:
  name: s
  {session}
queues: {{app: {{}}}}
urlGroups: {{app: {{queue: app, urls: ['http://127.0.0.1:8080/']}}}}
workers:
  app:
    queue: app
    command: [python3, app.py]
    cwd: srv
{user}    sandbox:
{sandbox}
"""


def _write(tmp_path: Path, sandbox: str, user: str = "", session: str = "") -> Path:
    path = tmp_path / "site.yaml"
    body = "\n".join(f"      {line}" for line in sandbox.strip().splitlines())
    path.write_text(SITE.format(sandbox=body, user=user, session=session))
    return path


def _pool(path: Path) -> WorkerPool:
    pool = load_manifest(str(path)).desired.of_kind(Kind.WORKER)[0]
    assert isinstance(pool, WorkerPool)
    return pool


def test_the_fields_are_read_and_relative_paths_are_the_manifest_s(tmp_path: Path) -> None:
    pool = _pool(
        _write(
            tmp_path,
            "seccomp: default\n"
            "filesystem: {default: deny, readOnly: [data, /srv/shared], readWrite: [cache]}\n"
            "network: {connect: ['127.0.0.1:5432']}\n"
            "required: true",
        )
    )
    box = pool.sandbox
    assert SeccompMode.DEFAULT is box.seccomp
    assert FilesystemDefault.DENY is box.filesystem.default
    assert ("/srv/shared", str(tmp_path / "data")) == box.filesystem.read_only  # sorted
    assert (str(tmp_path / "cache"),) == box.filesystem.read_write
    assert ("127.0.0.1:5432",) == box.network.connect
    assert box.required


def test_defaults_and_a_bare_off(tmp_path: Path) -> None:
    assert Sandbox() == _pool(_write(tmp_path, "{}")).sandbox
    off = _pool(_write(tmp_path, "seccomp: off\nfilesystem: {default: allow}")).sandbox
    assert SeccompMode.OFF is off.seccomp
    assert FilesystemDefault.ALLOW is off.filesystem.default


def test_the_listener_has_one_too(tmp_path: Path) -> None:
    path = _write(tmp_path, "{}", session="listener: {sandbox: {seccomp: 'off', required: true}}")
    session = load_manifest(str(path)).desired.session
    assert session is not None
    assert SeccompMode.OFF is session.listener.sandbox.seccomp
    assert session.listener.sandbox.required


def test_a_port_that_cannot_be_is_an_error_where_it_is_written(tmp_path: Path) -> None:
    path = _write(tmp_path, "network: {connect: ['db:5432', 'db:70000']}")
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    (problem,) = info.value.diagnostics
    assert '"db:70000" has no port from 1 to 65535' == problem.summary
    assert problem.location is not None
    assert (13, 38) == (problem.location.line, problem.location.column)


def test_an_unknown_field_or_mode_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(str(_write(tmp_path, "seccomp: strict\nfilesystem: {defualt: deny}")))
    summaries = {d.summary for d in info.value.diagnostics}
    assert 'must be one of default, off, not "strict"' in summaries
    assert 'unknown field "defualt"; did you mean "default"?' in summaries


def test_lists_that_an_allow_ignores_are_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "filesystem: {readOnly: [/srv]}", user="    user: www-data\n")
    warnings = [d.summary for d in load_manifest(str(path)).warnings]
    assert (
        "filesystem.readOnly and readWrite are ignored: the filesystem default is allow" in warnings
    )
    quiet = load_manifest(str(_write(tmp_path, "filesystem: {readOnly: [/srv]}"))).warnings
    assert not [d for d in quiet if "ignored" in d.summary]  # user auto: deny


def test_the_httpsys_backend_warns_that_it_has_no_sandbox(tmp_path: Path) -> None:
    path = _write(tmp_path, "seccomp: 'off'", session="backend: httpsys")
    warnings = [d.summary for d in load_manifest(str(path)).warnings]
    assert "the httpsys backend has no sandbox: seccomp and Landlock are Linux's" in warnings


def test_validate_explain_shows_each_process_s_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "srv").mkdir()
    path = _write(tmp_path, "network: {connect: ['127.0.0.1:5432']}")
    assert 0 == main(["validate", str(path), "--explain"])
    out = capsys.readouterr().out
    assert "the listener: seccomp default; filesystem deny; TCP connect to any" in out
    assert "worker/app: seccomp default; filesystem deny; TCP connect to 127.0.0.1:5432" in out
    assert f"ro  {tmp_path / 'srv'}  (working directory)" in out
    assert "ro  /etc  (system)" in out
    assert 0 == main(["validate", str(path), "--explain", "--json"])
    doc = json.loads(capsys.readouterr().out)
    explained = doc["manifests"][0]["sandbox"]
    assert {"landlock_abi", "landlock_network", "seccomp"} == set(explained["kernel"])
    app = explained["workers"]["app"]
    assert ["127.0.0.1:5432"] == app["network"]["connect"]
    tmp_rule = [p for p in app["filesystem"]["paths"] if p["access"] == "rw"]
    assert [("app", "private tmp dir (TMPDIR)")] == [
        (p["path"].rsplit("/", 1)[-1], p["why"]) for p in tmp_rule
    ]
