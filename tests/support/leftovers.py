"""What a root test run may leave on the host, and its removal: the cgroup trees of the controllers
the tests ran (``orch-<hash of the run directory>`` under every hierarchy of ``/sys/fs/cgroup``),
throwaway users (made by ``tests.support.users`` or by a controller for its pools), and state
directories under ``/var/lib/orchestrator`` (a controller started without ``--state-dir`` keeps its
state there, shared by every test of the same session name: tests must give their own).

Fixtures register what they make (a run directory, a user) and remove it in teardown; the session
check in ``tests/conftest.py`` asks ``leftovers()`` at the end and fails the run when anything
registered is still there. Only registered things count: other test runs and benchmarks on the same
host make ``orch-…`` cgroups and users of their own.
"""

from __future__ import annotations

import contextlib
import os
import pwd

from orchestrator.backends.linux.cgroups import CgroupManager, namespace_for
from orchestrator.backends.linux.host import read_host_facts

CGROUP_ROOT = "/sys/fs/cgroup"
#: Where a root controller keeps its state by default (``controller.paths.default_state_dir``).
STATE_ROOT = "/var/lib/orchestrator"
_namespaces: set[str] = set()
_users: set[str] = set()


def _manager(namespace: str) -> CgroupManager:
    return CgroupManager(read_host_facts(), namespace)


def register_run_dir(run_dir: str) -> None:
    """A controller may run (or have run) on ``run_dir``: its cgroup tree must be gone at the end."""
    _namespaces.add(namespace_for(run_dir))


def register_namespace(namespace: str) -> None:
    """A cgroup namespace a test creates directly (``CgroupManager``)."""
    _namespaces.add(namespace)


def register_user(name: str) -> None:
    """A throwaway user that must be deleted by the end of the run."""
    _users.add(name)


def remove_cgroups(run_dir: str) -> None:
    """Kill what is left in the controller's cgroups and remove its tree (a controller killed with
    SIGKILL never removes its own; one that stops cleanly does)."""
    if os.geteuid() == 0:
        _manager(namespace_for(run_dir)).remove_namespace()


def cgroup_trees() -> set[str]:
    """Every ``orch-*`` cgroup directory of this host, whoever made it (for a before/after look)."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(CGROUP_ROOT):
            if not entry.is_dir():
                continue
            for path in _walk_orch(entry.path, depth=3):
                found.add(path)
    return found


def _walk_orch(directory: str, depth: int) -> list[str]:
    out: list[str] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.is_dir():
                continue
            if entry.name.startswith("orch-"):
                out.append(entry.path)
            elif depth > 1:
                out += _walk_orch(entry.path, depth - 1)
    return out


def users_now() -> set[str]:
    """The names in the user database."""
    return {entry.pw_name for entry in pwd.getpwall()}


def leftovers() -> tuple[list[str], list[str]]:
    """Registered cgroup directories and users that still exist."""
    dirs = sorted(
        d
        for namespace in _namespaces
        for d in _manager(namespace).namespace_dirs()
        if os.path.isdir(d)
    )
    present = users_now()
    return dirs, sorted(u for u in _users if u in present)


def clean_up() -> None:
    """Remove what ``leftovers()`` reports (after reporting it)."""
    from tests.support.users import delete_user_named

    for namespace in _namespaces:
        _manager(namespace).remove_namespace()
    for name in sorted(_users):
        delete_user_named(name)


def state_dirs() -> set[str]:
    """Every entry of ``/var/lib/orchestrator`` (for a before/after look: a new one means a test
    started a controller on the host's default state directory)."""
    try:
        return {entry.path for entry in os.scandir(STATE_ROOT)}
    except OSError:
        return set()


def remove_state_dirs(paths: set[str]) -> None:
    """Remove state directories the run made (and ``/var/lib/orchestrator`` if that leaves it
    empty)."""
    import shutil

    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(STATE_ROOT)
