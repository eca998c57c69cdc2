"""Where state lives: the default state directory, the move of state an older version kept in the
run directory, and the session's paths read from manifests that need not be valid."""

from __future__ import annotations

import json
import os
import re

import pytest

from orchestrator.controller.paths import (
    StateDir,
    default_state_dir,
    move_state,
    session_paths,
)
from orchestrator.errors import OrchestratorError


def test_root_keeps_state_under_var_lib_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root: /var/lib/orchestrator/SESSION (systemd's StateDirectory=orchestrator)."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "/var/lib/orchestrator/shop" == default_state_dir("shop")


@pytest.mark.parametrize(
    ("xdg", "expected"),
    [
        ("/srv/state", "/srv/state/orchestrator/shop"),
        ("", "/home/ann/.local/state/orchestrator/shop"),
        ("relative/state", "/home/ann/.local/state/orchestrator/shop"),  # invalid: ignored
    ],
    ids=["xdg-set", "xdg-empty", "xdg-relative"],
)
def test_a_user_keeps_state_under_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, xdg: str, expected: str
) -> None:
    """Otherwise $XDG_STATE_HOME/orchestrator/SESSION; unset, empty or relative means
    ~/.local/state, as the XDG Base Directory specification says."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", "/home/ann")
    monkeypatch.setenv("XDG_STATE_HOME", xdg)
    assert expected == default_state_dir("shop")


def _write(path: str, data: object) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def _read(path: str) -> object:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def test_state_in_an_old_run_dir_moves_to_the_state_dir(tmp_path: object) -> None:
    """Both files move, and the emptied <run dir>/state goes."""
    old = os.path.join(str(tmp_path), "run", "state")
    _write(os.path.join(old, "last-known-good.json"), {"sha256": "abc"})
    _write(os.path.join(old, "users.json"), ["orch-api"])
    new = StateDir(os.path.join(str(tmp_path), "var", "shop"))
    new.create()
    assert ["last-known-good.json", "users.json"] == move_state(old, new)
    assert {"sha256": "abc"} == _read(new.last_known_good)
    assert ["orch-api"] == _read(new.users)
    assert not os.path.exists(old)
    assert 0o700 == os.stat(new.root).st_mode & 0o777


def test_users_in_both_places_are_merged_and_the_state_dirs_manifest_wins(
    tmp_path: object,
) -> None:
    """Users named by either record are ours to delete, so neither list may be lost; the state
    directory's last-known-good manifest is the one in force and stays."""
    old = os.path.join(str(tmp_path), "run", "state")
    _write(os.path.join(old, "last-known-good.json"), {"sha256": "old"})
    _write(os.path.join(old, "users.json"), ["orch-api", "orch-web"])
    new = StateDir(os.path.join(str(tmp_path), "state"))
    _write(new.last_known_good, {"sha256": "new"})
    _write(new.users, ["orch-batch", "orch-api"])
    assert ["users.json"] == move_state(old, new)
    assert ["orch-api", "orch-batch", "orch-web"] == _read(new.users)
    assert {"sha256": "new"} == _read(new.last_known_good)
    # What was not moved stays where an operator can see it.
    assert {"sha256": "old"} == _read(os.path.join(old, "last-known-good.json"))


def test_nothing_to_move_is_not_an_error(tmp_path: object) -> None:
    """A fresh run directory, or one that is the state directory itself, moves nothing."""
    new = StateDir(os.path.join(str(tmp_path), "state"))
    assert [] == move_state(os.path.join(str(tmp_path), "run", "state"), new)
    _write(new.users, ["orch-api"])
    assert [] == move_state(new.root, new)
    assert ["orch-api"] == _read(new.users)


def _manifest(tmp_path: object, text: str) -> str:
    path = os.path.join(str(tmp_path), "site.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def test_session_paths_are_read_from_a_manifest_that_does_not_validate(tmp_path: object) -> None:
    """An unknown queue (or any other mistake outside the session) does not hide them."""
    path = _manifest(
        tmp_path,
        "apiVersion: orchestrator/v1\n"
        "session: {name: shop, runDir: /run/shop, stateDir: /srv/shop}\n"
        "urlGroups: {a: {queue: nosuch, urls: ['http://+:80/']}}\n",
    )
    paths = session_paths(path)
    assert ("shop", "/run/shop", "/srv/shop") == (paths.name, paths.run_dir, paths.state_dir)


def test_a_manifest_without_a_session_gets_the_default_name(tmp_path: object) -> None:
    """No session section: the schema's default name, no paths."""
    paths = session_paths(_manifest(tmp_path, "apiVersion: orchestrator/v1\nqueues: {}\n"))
    assert ("main", None, None) == (paths.name, paths.run_dir, paths.state_dir)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("session: [\n", "site.yaml:"),
        ("session: {runDir: 42}\n", "session.runDir must be a non-empty string, not 42"),
        ("session: {name: ../etc}\n", "session.name '../etc' is not a valid name"),
    ],
    ids=["not-yaml", "not-a-string", "not-a-name"],
)
def test_unreadable_session_paths_are_refused_naming_the_file(
    tmp_path: object, text: str, message: str
) -> None:
    """YAML that does not parse, a runDir that is not a string, a name that is not a name (it
    would become a directory name): one line that names the file."""
    with pytest.raises(OrchestratorError, match=re.escape(message)):
        session_paths(_manifest(tmp_path, text))


def test_a_missing_manifest_is_refused_naming_it(tmp_path: object) -> None:
    """The path and 'no such file or directory'."""
    missing = os.path.join(str(tmp_path), "nope.yaml")
    with pytest.raises(OrchestratorError, match=r"nope\.yaml.*no such file or directory"):
        session_paths(missing)
