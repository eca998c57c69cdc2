"""A root controller obeys only manifests no other user can change: ``untrusted`` on real files.

Root only (files are chowned to a uid that is not ours). Each case builds the files and directories
in a temporary directory and reads them back with ``read_manifest_set``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.manifest import read_manifest_set, untrusted

pytestmark = pytest.mark.root

OTHER_UID = 54_321  # no account needed: chown takes any number
MANIFEST = "apiVersion: orchestrator/v1\nsession: {name: t}\n"


def _site(tmp_path: Path, mode: int = 0o644, dir_mode: int = 0o755) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.yaml").write_text(MANIFEST)
    (site / "a.yaml").chmod(mode)
    site.chmod(dir_mode)
    tmp_path.chmod(0o755)
    return site


def _messages(path: Path) -> list[str]:
    return [d.summary for d in untrusted(read_manifest_set(str(path)), 0)]


def test_root_owned_files_nobody_else_can_write_are_trusted(tmp_path: Path) -> None:
    """0644 files in a 0755 directory, all root's: nothing to say."""
    assert [] == _messages(_site(tmp_path))


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_file_its_group_or_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    """The diagnostic names the mode and the file, and says what to run."""
    site = _site(tmp_path, mode=mode)
    problems = untrusted(read_manifest_set(str(site)), 0)
    assert [f"manifest file is writable by its group or by others (mode {mode:04o})"] == [
        d.summary for d in problems
    ]
    assert problems[0].location is not None
    assert str(site / "a.yaml") == problems[0].location.file
    assert f"chmod go-w {site / 'a.yaml'}" in problems[0].detail


def test_a_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    site = _site(tmp_path)
    os.chown(site / "a.yaml", OTHER_UID, 0)
    assert [f"manifest file is owned by uid {OTHER_UID}, not root"] == _messages(site)


def test_the_controllers_own_uid_is_trusted_too(tmp_path: Path) -> None:
    """``trusted_uid`` besides root (a controller under a service account reading its files)."""
    site = _site(tmp_path)
    os.chown(site / "a.yaml", OTHER_UID, 0)
    assert [] == untrusted(read_manifest_set(str(site)), OTHER_UID)


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775])
def test_a_manifest_directory_others_can_write_is_refused_even_when_sticky(
    tmp_path: Path, mode: int
) -> None:
    """Anyone who can add a file to the directory adds to the manifest, sticky bit or not."""
    site = _site(tmp_path, dir_mode=mode)
    assert [f"manifest directory is writable by its group or by others (mode {mode:04o})"] == (
        _messages(site)
    )


def test_one_file_in_a_sticky_directory_is_fine_but_not_in_a_plain_shared_one(
    tmp_path: Path,
) -> None:
    """A single manifest file named on the command line: in /tmp-like (1777) nobody else can replace
    it; in a 0777 directory anyone can."""
    sticky = _site(tmp_path, dir_mode=0o1777)
    assert [] == _messages(sticky / "a.yaml")
    sticky.chmod(0o777)
    assert ["manifest directory is writable by its group or by others (mode 0777)"] == _messages(
        sticky / "a.yaml"
    )


def test_a_symlinked_file_is_judged_by_its_target_and_the_targets_directory(tmp_path: Path) -> None:
    """ConfigMap style: the target and the directory it sits in count, not the link."""
    site = _site(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "b.yaml").write_text("queues: {}\n")
    (data / "b.yaml").chmod(0o644)
    data.chmod(0o775)
    (site / "b.yaml").symlink_to(data / "b.yaml")
    problems = untrusted(read_manifest_set(str(site)), 0)
    assert ["manifest directory is writable by its group or by others (mode 0775)"] == [
        d.summary for d in problems
    ]
    assert problems[0].location is not None
    assert str(data) == problems[0].location.file


def test_a_directory_above_the_manifest_that_others_can_write_is_refused(tmp_path: Path) -> None:
    """Whoever can rename a directory above the manifest can swap everything below it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    site = _site(shared)
    shared.chmod(0o777)
    problems = untrusted(read_manifest_set(str(site)), 0)
    assert ["manifest directory is writable by its group or by others (mode 0777)"] == [
        d.summary for d in problems
    ]
    assert problems[0].location is not None
    assert str(shared) == problems[0].location.file
    os.chown(shared, OTHER_UID, 0)
    shared.chmod(0o755)
    assert [f"manifest directory is owned by uid {OTHER_UID}, not root"] == _messages(site)


def test_the_directory_of_a_symlink_named_on_the_command_line_counts(tmp_path: Path) -> None:
    """``run /srv/links/site.yaml`` with that name a symlink: /srv/links is checked too."""
    site = _site(tmp_path)
    links = tmp_path / "links"
    links.mkdir()
    (links / "site.yaml").symlink_to(site / "a.yaml")
    links.chmod(0o777)
    assert ["manifest directory is writable by its group or by others (mode 0777)"] == _messages(
        links / "site.yaml"
    )


def test_a_read_only_mount_is_trusted_whatever_its_mode(tmp_path: Path) -> None:
    """A ConfigMap volume is mode 0777 but mounted read-only: nobody can write it."""
    mount = tmp_path / "configmap"
    mount.mkdir()
    tmp_path.chmod(0o755)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0777", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        (mount / "site.yaml").write_text(MANIFEST)
        (mount / "site.yaml").chmod(0o644)
        assert ["manifest directory is writable by its group or by others (mode 0777)"] == (
            _messages(mount)
        )
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        assert [] == _messages(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=False)
