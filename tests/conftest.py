"""Shared pytest configuration: marker skips with their reasons, common fixtures, and the check
that a run leaves no cgroup tree and no throwaway user behind."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

from tests.support import leftovers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FOREIGN = pytest.StashKey[list[str]]()


#: Tests that must not run beside each other when the suite runs in parallel (``scripts/test.sh``
#: runs pytest-xdist): each group runs on one worker, in order. Every other module is a unit of its
#: own (its module fixtures start once), spread over the workers: its names, users, run directories
#: and ports (port 0) are its own.
SERIAL_GROUPS = {
    # Fixed pool and listener names, so fixed users (orch-echo, orch-hello, orch-listener...), which
    # a controller creates and deletes: two at once would pull a user from under the other.
    "tests/integration/listener/": "fixed-users",
    "tests/integration/daemon/test_isolated.py": "fixed-users",
    # One Wine prefix and its wineserver.
    "tests/wine/": "wine",
}


def serial_scope(nodeid: str) -> str:
    """The unit of work a test belongs to under xdist: its serial group, else its module (or
    class)."""
    for prefix, group in SERIAL_GROUPS.items():
        if nodeid.startswith(prefix):
            return group
    return nodeid.rsplit("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scope scheduling, with the serial groups as scopes (its own ``loadgroup`` needs a
    marker it writes into the node id, which pytest 9.2 no longer lets a plugin change)."""
    from xdist.scheduler import LoadScopeScheduling

    class SerialGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return serial_scope(nodeid)

    return SerialGroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip marked tests that cannot run here, saying why."""
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    skips = {
        "root": (not is_root, "needs root (real users, cgroups, sockets owned by others)"),
        "wine": (shutil.which("wine") is None, "Wine is not installed (apt-get install wine)"),
        "windows": (sys.platform != "win32", "needs real Windows"),
        "slow": (os.environ.get("ORCH_SLOW") != "1", "slow tier: set ORCH_SLOW=1 to run it"),
    }
    for item in items:
        for marker, (skip, reason) in skips.items():
            if skip and item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def world_dir() -> Iterator[str]:
    """A fresh directory every user can traverse (run directories that workers must reach); the
    cgroup tree of a controller run on ``world_dir/run`` goes with it."""
    path = tempfile.mkdtemp(prefix="orch-test-", dir="/tmp")
    os.chmod(path, 0o755)
    leftovers.register_run_dir(os.path.join(path, "run"))
    try:
        yield path
    finally:
        leftovers.remove_cgroups(os.path.join(path, "run"))
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """As root, the run must leave no ``orch-…`` cgroup tree of a controller it ran, no user it
    made and no new state directory under ``/var/lib/orchestrator`` (a controller started without
    ``--state-dir``): what is left fails the run (and is removed, so the next run starts clean).
    New ``orch-…`` trees and users the run cannot claim (another run's, a benchmark's on the same
    host) are listed in the summary."""
    if os.geteuid() != 0:
        yield
        return
    trees, users = leftovers.cgroup_trees(), leftovers.users_now()
    states = leftovers.state_dirs()
    yield
    dirs, names = leftovers.leftovers()
    new_states = leftovers.state_dirs() - states
    foreign = sorted(leftovers.cgroup_trees() - trees - set(dirs))
    foreign += sorted(
        u for u in leftovers.users_now() - users - set(names) if u.startswith("orch-")
    )
    request.config.stash[_FOREIGN] = foreign
    if dirs or names or new_states:
        leftovers.clean_up()
        leftovers.remove_state_dirs(new_states)
        pytest.fail(
            "the run left behind (now removed):\n"
            + "".join(f"  cgroup {d}\n" for d in dirs)
            + "".join(f"  user {n}\n" for n in names)
            + "".join(
                f"  state directory {p} (give the controller --state-dir)\n"
                for p in sorted(new_states)
            ),
            pytrace=False,
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name new ``orch-…`` cgroups and users this run cannot claim."""
    foreign = terminalreporter.config.stash.get(_FOREIGN, [])
    if foreign:
        terminalreporter.section("orch-… cgroups and users that appeared during the run")
        terminalreporter.line(
            "Not made by a controller or fixture of this run (another run or a benchmark on this"
            " host?):"
        )
        for item in foreign:
            terminalreporter.line(f"  {item}")
