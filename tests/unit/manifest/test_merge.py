"""Manifest sets: a directory of files merged by name, what is read and what is skipped, the
manifest hash, host identity checks, and paths relative to the manifest."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.errors import ManifestError, Severity
from orchestrator.manifest import identities as identities_module
from orchestrator.manifest import load_manifest, read_manifest_set
from orchestrator.manifest.identities import UserInfo
from orchestrator.model import Key, Kind
from orchestrator.model.desired import RequestQueue, Session, UrlGroup, WorkerPool

SESSION = """\
apiVersion: orchestrator/v1
session:
  name: site
  timeouts:
    headerWait: 10s
"""

API = """\
apiVersion: orchestrator/v1
queues:
  api:
    maxLength: 500
urlGroups:
  api:
    queue: api
    urls: ["http://+:8080/api/"]
workers:
  api:
    queue: api
    command: [python3, -m, api]
"""

REPORTS = """\
apiVersion: orchestrator/v1
queues:
  reports: {}
urlGroups:
  reports:
    queue: reports
    urls: ["http://+:8080/reports/"]
workers:
  reports:
    queue: reports
    command: [python3, -m, reports]
    processes: 2
"""

ALL_KEYS = {
    Key(Kind.SESSION, "site"),
    Key(Kind.QUEUE, "api"),
    Key(Kind.QUEUE, "reports"),
    Key(Kind.URLGROUP, "api"),
    Key(Kind.URLGROUP, "reports"),
    Key(Kind.WORKER, "api"),
    Key(Kind.WORKER, "reports"),
}


def _body(text: str) -> str:
    """A manifest document without its ``apiVersion`` line, to append to another document."""
    return text.split("\n", 1)[1]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory holding the session, the api app and the reports app in three files."""
    folder = tmp_path / "site"
    _write(folder / "00-session.yaml", SESSION)
    _write(folder / "api.yaml", API)
    _write(folder / "reports.yml", REPORTS)
    return folder


def test_directory_files_merge_by_name(site: Path) -> None:
    """Objects from every *.yaml and *.yml file of a directory form one desired state."""
    desired = load_manifest(str(site)).desired
    assert ALL_KEYS == set(desired.resources)
    session = desired.resources[Key(Kind.SESSION, "site")]
    assert isinstance(session, Session)
    assert 10.0 == session.timeouts.header_wait_s
    api = desired.resources[Key(Kind.QUEUE, "api")]
    assert isinstance(api, RequestQueue)
    assert 500 == api.max_length
    pool = desired.resources[Key(Kind.WORKER, "reports")]
    assert isinstance(pool, WorkerPool)
    assert 2 == pool.processes


def test_objects_in_one_file_may_reference_objects_in_another(tmp_path: Path) -> None:
    """A URL group and a pool in one file route to a queue defined in another file."""
    folder = tmp_path / "site"
    _write(folder / "queues.yaml", "apiVersion: orchestrator/v1\nqueues:\n  api: {}\n")
    _write(folder / "api.yaml", API.replace("queues:\n  api:\n    maxLength: 500\n", ""))
    desired = load_manifest(str(folder)).desired
    group = desired.resources[Key(Kind.URLGROUP, "api")]
    assert isinstance(group, UrlGroup)
    assert Key(Kind.QUEUE, "api") == group.queue
    assert Key(Kind.QUEUE, "api") in desired.resources


def test_hidden_files_are_ignored(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An editor's hidden ``.draft.yaml``, even a broken one, is neither read nor reported."""
    _write(site / ".draft.yaml", "apiVersion: orchestrator/v2\nqueues:\n  api: {}\n\tbroken: [\n")
    _write(site / ".api.yaml.swp", "not yaml at all: [")
    assert ALL_KEYS == set(load_manifest(str(site)).desired.resources)
    assert 0 == main(["validate", str(site)])
    captured = capsys.readouterr()
    assert "draft" not in captured.out + captured.err
    assert "valid (2 queues, 2 URL groups, 2 worker pools" in captured.out


def test_non_yaml_files_and_subdirectories_are_ignored(site: Path) -> None:
    """READMEs, backups and files in subdirectories are not part of the manifest set."""
    _write(site / "README.md", "# The site manifest\n")
    _write(site / "api.yaml.orig", "apiVersion: orchestrator/v1\nqueues:\n  old: {}\n")
    _write(site / "api.yaml~", "apiVersion: orchestrator/v1\nqueues:\n  old: {}\n")
    _write(site / "archive" / "old.yaml", "apiVersion: orchestrator/v1\nqueues:\n  old: {}\n")
    names = [os.path.basename(f.name) for f in read_manifest_set(str(site)).files]
    assert ["00-session.yaml", "api.yaml", "reports.yml"] == names
    assert ALL_KEYS == set(load_manifest(str(site)).desired.resources)


def test_symlinked_files_are_followed_in_a_configmap_layout(tmp_path: Path) -> None:
    """A ConfigMap mount loads through ``site.yaml -> ..data/site.yaml -> ..TS/site.yaml``."""
    mount = tmp_path / "config"
    _write(mount / "..2026_01_01" / "site.yaml", SESSION + _body(API))
    (mount / "..data").symlink_to("..2026_01_01")
    (mount / "site.yaml").symlink_to(Path("..data") / "site.yaml")
    first = load_manifest(str(mount))
    assert [str(mount / "site.yaml")] == [f.name for f in first.source.files]
    assert {
        Key(Kind.SESSION, "site"),
        Key(Kind.QUEUE, "api"),
        Key(Kind.URLGROUP, "api"),
        Key(Kind.WORKER, "api"),
    } == set(first.desired.resources)

    # The kubelet writes a new timestamped directory and swaps ..data atomically.
    _write(mount / "..2026_01_02" / "site.yaml", SESSION + _body(REPORTS))
    (mount / "..data_tmp").symlink_to("..2026_01_02")
    os.replace(mount / "..data_tmp", mount / "..data")
    second = load_manifest(str(mount))
    assert Key(Kind.WORKER, "reports") in second.desired.resources
    assert Key(Kind.WORKER, "api") not in second.desired.resources
    # Repointing ..data is a new manifest: new content, new hash.
    assert first.desired.manifest_sha256 != second.desired.manifest_sha256


def test_multiple_documents_in_one_file_merge(tmp_path: Path) -> None:
    """``---``-separated documents of one file merge like separate files."""
    path = _write(tmp_path / "site.yaml", SESSION + "---\n" + API + "---\n" + REPORTS)
    assert ALL_KEYS == set(load_manifest(str(path)).desired.resources)


def test_a_name_defined_in_two_documents_of_one_file_names_both_places(tmp_path: Path) -> None:
    """Merging documents finds a queue defined twice, and says where each definition is."""
    path = _write(
        tmp_path / "site.yaml", API + "---\napiVersion: orchestrator/v1\nqueues:\n  api: {}\n"
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path))
    (diag,) = info.value.diagnostics
    assert diag.location is not None
    assert (str(path), 16, 3) == (diag.location.file, diag.location.line, diag.location.column)
    assert "queues.api is defined twice" == diag.summary
    assert f"{path}:3:3" in diag.detail


def test_manifest_hash_does_not_change_when_nothing_changes(site: Path) -> None:
    """Loading the same files twice gives the same hash."""
    first = load_manifest(str(site)).desired.manifest_sha256
    again = load_manifest(str(site)).desired.manifest_sha256
    assert first == again
    assert first == read_manifest_set(str(site)).sha256
    assert 64 == len(first)


def test_manifest_hash_does_not_depend_on_where_the_directory_is(
    site: Path, tmp_path: Path
) -> None:
    """The same files copied to another directory hash the same (no absolute paths in it)."""
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(site, copy)
    assert read_manifest_set(str(site)).sha256 == read_manifest_set(str(copy)).sha256


def test_manifest_hash_ignores_files_that_are_not_read(site: Path) -> None:
    """A README or a hidden draft next to the manifests leaves the hash as it was."""
    before = read_manifest_set(str(site)).sha256
    _write(site / "README.md", "notes\n")
    _write(site / ".draft.yaml", "apiVersion: orchestrator/v1\n")
    assert before == read_manifest_set(str(site)).sha256


@pytest.mark.parametrize("changed", ["00-session.yaml", "api.yaml", "reports.yml"])
def test_manifest_hash_changes_when_any_file_changes(site: Path, changed: str) -> None:
    """Any edit to any file, even a comment, gives a new hash."""
    before = read_manifest_set(str(site)).sha256
    with open(site / changed, "a", encoding="utf-8") as fh:
        fh.write("# edited\n")
    assert before != read_manifest_set(str(site)).sha256


def test_manifest_hash_changes_when_a_file_is_added(site: Path) -> None:
    """A new manifest file changes the set, so it changes the hash."""
    before = read_manifest_set(str(site)).sha256
    _write(site / "extra.yaml", "apiVersion: orchestrator/v1\nqueues:\n  extra: {}\n")
    assert before != read_manifest_set(str(site)).sha256


class FakeIdentities:
    """Host users and groups from two dictionaries (every file and command exists)."""

    def __init__(self, users: dict[str, UserInfo], groups: dict[str, int]) -> None:
        self.users = users
        self.groups = groups

    def user(self, name: str) -> UserInfo | None:
        return self.users.get(name)

    def group(self, name: str) -> int | None:
        return self.groups.get(name)

    # Files and commands all exist: these tests are about users and groups.
    def is_file(self, path: str) -> bool:
        return True

    def is_dir(self, path: str) -> bool:
        return True

    def worker_path(self, backend: str) -> str:
        return "/usr/bin"

    def find_command(self, command: str, path: str, cwd: str) -> str | bool | None:
        return command


IDENTITIES_SITE = """\
apiVersion: orchestrator/v1
session:
  name: site
  listener:
    user: www
  adminGroup: operators
queues:
  api:
    acl:
      - user: apiuser
      - group: auditors
urlGroups:
  api:
    queue: api
    urls: ["http://+:8080/api/"]
workers:
  api:
    queue: api
    command: [python3, -m, api]
    user: apiuser
    group: apps
    groups: [metrics]
"""

KNOWN = FakeIdentities(
    {
        "www": UserInfo("www", 33, 33, frozenset({"www"})),
        "apiuser": UserInfo("apiuser", 1001, 1001, frozenset({"apps"})),
    },
    {"www": 33, "apps": 1001, "metrics": 1002, "operators": 1003, "auditors": 1004},
)

#: (line, column, summary) of every identity problem when the host knows none of the names.
UNKNOWN_PROBLEMS = [
    (5, 5, 'unknown user "www" on this host'),
    (6, 3, 'unknown group "operators" on this host'),
    (10, 9, 'unknown user "apiuser" on this host'),
    (11, 9, 'unknown group "auditors" on this host'),
    (20, 5, 'unknown user "apiuser" on this host'),
    (21, 5, 'unknown group "apps" on this host'),
    (22, 14, 'unknown group "metrics" on this host'),
]


def test_known_users_and_groups_give_no_warnings(tmp_path: Path) -> None:
    """Names the host knows pass in strict mode with no diagnostics at all."""
    path = _write(tmp_path / "site.yaml", IDENTITIES_SITE)
    loaded = load_manifest(str(path), identities=KNOWN, strict_identities=True)
    assert () == loaded.warnings


def test_unknown_users_and_groups_are_warnings_by_default(tmp_path: Path) -> None:
    """Offline validation cannot know the target host: unknown names warn but load."""
    path = _write(tmp_path / "site.yaml", IDENTITIES_SITE)
    loaded = load_manifest(str(path), identities=FakeIdentities({}, {}))
    assert all(d.severity is Severity.WARNING for d in loaded.warnings)
    got = [(d.location.line, d.location.column, d.summary) for d in loaded.warnings if d.location]
    assert UNKNOWN_PROBLEMS == got


def test_unknown_users_and_groups_are_errors_with_strict_identities(tmp_path: Path) -> None:
    """``apply`` and ``run`` load with strict_identities: the same problems become errors."""
    path = _write(tmp_path / "site.yaml", IDENTITIES_SITE)
    with pytest.raises(ManifestError) as info:
        load_manifest(str(path), identities=FakeIdentities({}, {}), strict_identities=True)
    diags = info.value.diagnostics
    assert all(d.severity is Severity.ERROR for d in diags)
    got = [(d.location.line, d.location.column, d.summary) for d in diags if d.location]
    assert UNKNOWN_PROBLEMS == got


def test_validate_warns_about_unknown_users_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``orchestrator validate`` prints the identity warnings and still calls the manifest valid."""
    path = _write(tmp_path / "site.yaml", IDENTITIES_SITE)
    monkeypatch.setattr(identities_module, "HostIdentities", lambda: FakeIdentities({}, {}))
    assert 0 == main(["validate", str(path)])
    captured = capsys.readouterr()
    assert f'{path}:20:5: workers.api.user: warning: unknown user "apiuser" on this host' in (
        captured.err.splitlines()
    )
    assert len(UNKNOWN_PROBLEMS) == captured.err.count(": warning: unknown ")
    assert f"{path}: valid (1 queue, 1 URL group, 1 worker pool;" in captured.out


def test_acl_group_membership_on_the_host_admits_the_pool(tmp_path: Path) -> None:
    """A queue ACL naming a group lets in a pool whose user belongs to it on the host."""
    text = IDENTITIES_SITE.replace("      - user: apiuser\n      - group: auditors\n", "")
    text = text.replace("    acl:\n", "    acl:\n      - group: auditors\n")
    path = _write(tmp_path / "site.yaml", text)
    member = FakeIdentities(
        {**KNOWN.users, "apiuser": UserInfo("apiuser", 1001, 1001, frozenset({"auditors"}))},
        KNOWN.groups,
    )
    load_manifest(str(path), identities=member, strict_identities=True)
    with pytest.raises(ManifestError, match='ACL does not allow pool "api"'):
        load_manifest(str(path), identities=KNOWN, strict_identities=True)


def test_relative_cwd_resolves_against_the_manifest_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cwd: apps`` is the apps folder beside the manifest, not beside the caller."""
    text = API.replace("command: [python3, -m, api]", "command: [python3, -m, api]\n    cwd: apps")
    _write(tmp_path / "deploy" / "site" / "api.yaml", text)
    monkeypatch.chdir(tmp_path / "deploy")
    desired = load_manifest(os.path.join("site", "api.yaml")).desired
    pool = desired.resources[Key(Kind.WORKER, "api")]
    assert isinstance(pool, WorkerPool)
    assert str(tmp_path / "deploy" / "site" / "apps") == pool.cwd


def test_relative_cwd_resolves_against_its_own_file_in_a_directory(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a directory, ``../shared`` is taken from the file that says it; absolute paths stay."""
    api = (site / "api.yaml").read_text(encoding="utf-8")
    _write(site / "api.yaml", api + "    cwd: ../shared/api\n")
    reports = (site / "reports.yml").read_text(encoding="utf-8")
    _write(site / "reports.yml", reports + "    cwd: /srv/reports\n")
    monkeypatch.chdir("/")
    desired = load_manifest(str(site)).desired
    api_pool = desired.resources[Key(Kind.WORKER, "api")]
    reports_pool = desired.resources[Key(Kind.WORKER, "reports")]
    assert isinstance(api_pool, WorkerPool)
    assert isinstance(reports_pool, WorkerPool)
    assert str(site.parent / "shared" / "api") == api_pool.cwd
    assert "/srv/reports" == reports_pool.cwd
