"""The host-wide address registry: one owner per ``host:port`` (wildcards overlap every host of
their port), the owner named in the refusal, atomic taking, and a SIGKILLed owner's address free
again. Real lock files and real processes, in a registry directory of the test's own."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from orchestrator.backends.linux.addresses import (
    AddressRegistry,
    AddressTaken,
    Owner,
    RegistryError,
    registry_directory,
)
from tests.support.controller import REPO, wait_until

pytestmark = [pytest.mark.integration]


@pytest.fixture
def directory(tmp_path: str) -> str:
    return os.path.join(str(tmp_path), "addresses")


def _registry(directory: str, session: str, pid: int = 1000) -> AddressRegistry:
    return AddressRegistry(Owner(session, f"/run/{session}", pid), directory)


def test_a_second_owner_is_refused_with_the_first_named(directory: str) -> None:
    """The error names the address, the session, its run directory and its pid."""
    first, second = _registry(directory, "demo", 1234), _registry(directory, "other")
    first.acquire("127.0.0.1", 8080)
    with pytest.raises(AddressTaken) as caught:
        second.acquire("127.0.0.1", 8080)
    assert (
        "127.0.0.1:8080 is already served by session 'demo' (run dir /run/demo, pid 1234); "
        "stop it or choose another address"
    ) == str(caught.value)
    assert {"127.0.0.1:8080"} == {n for n in os.listdir(directory) if not n.startswith(".")}
    first.release_all()
    second.release_all()


@pytest.mark.parametrize(
    ("held", "asked", "conflict"),
    [
        (("0.0.0.0", 8080), ("127.0.0.1", 8080), True),
        (("127.0.0.1", 8080), ("0.0.0.0", 8080), True),
        (("::", 8080), ("127.0.0.1", 8080), True),
        (("::1", 8080), ("::", 8080), True),
        (("0.0.0.0", 8080), ("::", 8080), True),
        (("127.0.0.1", 8080), ("127.0.0.2", 8080), False),
        (("127.0.0.1", 8080), ("::1", 8080), False),
        (("0.0.0.0", 8080), ("127.0.0.1", 8081), False),
    ],
)
def test_wildcards_overlap_every_host_of_their_port(
    directory: str, held: tuple[str, int], asked: tuple[str, int], conflict: bool
) -> None:
    """``0.0.0.0:P`` and ``[::]:P`` take every host on port P; other hosts and ports are free."""
    first, second = _registry(directory, "a"), _registry(directory, "b")
    first.acquire(*held)
    try:
        if conflict:
            with pytest.raises(AddressTaken, match="session 'a'"):
                second.acquire(*asked)
        else:
            second.acquire(*asked)
    finally:
        first.release_all()
        second.release_all()


def test_an_owner_may_take_its_own_address_again_and_overlapping_ones(directory: str) -> None:
    """Taking an address twice, or a host of a port whose wildcard it holds, is not a conflict."""
    registry = _registry(directory, "a")
    registry.acquire("0.0.0.0", 8080)
    registry.acquire("0.0.0.0", 8080)
    registry.acquire("127.0.0.1", 8080)
    registry.release_all()


def test_a_released_address_is_free_and_its_file_gone(directory: str) -> None:
    """Release removes the owner's file; the next controller takes the address."""
    first, second = _registry(directory, "a"), _registry(directory, "b")
    first.acquire("127.0.0.1", 8080)
    first.release("127.0.0.1", 8080)
    assert [] == [n for n in os.listdir(directory) if not n.startswith(".")]
    second.acquire("127.0.0.1", 8080)
    second.release_all()


def test_a_renamed_session_is_what_the_refusal_names(directory: str) -> None:
    """A held file follows the session's new name."""
    first, second = _registry(directory, "old"), _registry(directory, "b")
    first.acquire("127.0.0.1", 8080)
    first.rename("new")
    with pytest.raises(AddressTaken, match="session 'new'"):
        second.acquire("127.0.0.1", 8080)
    first.release_all()


_HOLDER = """
import sys, time
from orchestrator.backends.linux.addresses import AddressRegistry, AddressTaken, Owner
registry = AddressRegistry(Owner(sys.argv[2], "/run/x", 4321), sys.argv[1])
if sys.argv[3] == "race":
    while time.time() < float(sys.argv[4]):
        time.sleep(0.001)
try:
    registry.acquire("127.0.0.1", 8080)
except AddressTaken:
    print("refused", flush=True)
    sys.exit(0)
print("held", flush=True)
time.sleep(60)
"""


def _holder(directory: str, session: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _HOLDER, directory, session, *(extra or ("hold",))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_a_sigkilled_owners_address_is_free_again(directory: str) -> None:
    """The kernel drops the lock of a process killed with SIGKILL: its stale file blocks nobody,
    and the next owner replaces it."""
    proc = _holder(directory, "killed")
    try:
        assert proc.stdout is not None
        assert "held" == proc.stdout.readline().strip()
        other = _registry(directory, "next")
        with pytest.raises(AddressTaken, match="session 'killed'"):
            other.acquire("127.0.0.1", 8080)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert os.path.exists(os.path.join(directory, "127.0.0.1:8080"))  # stale, left behind
        other.acquire("127.0.0.1", 8080)
        with open(os.path.join(directory, "127.0.0.1:8080"), encoding="utf-8") as fh:
            assert '"session": "next"' in fh.read()
        other.release_all()
    finally:
        proc.kill()
        proc.communicate()


def test_taking_any_address_sweeps_the_stale_files_of_others(directory: str) -> None:
    """A stale file on another port (its holder was killed) goes at the next taking, whatever the
    address taken: the directory does not grow with every controller killed."""
    proc = _holder(directory, "killed")
    try:
        assert proc.stdout is not None
        assert "held" == proc.stdout.readline().strip()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.communicate()
    stale = os.path.join(directory, "127.0.0.1:8080")
    assert os.path.exists(stale)
    other = _registry(directory, "next")
    other.acquire("127.0.0.1", 9090)
    assert not os.path.exists(stale)
    assert ["127.0.0.1:9090"] == sorted(n for n in os.listdir(directory) if not n.startswith("."))
    other.release_all()


def test_concurrent_takers_of_one_address_get_one_owner(directory: str) -> None:
    """Eight processes take the same address at the same instant: exactly one holds it."""
    start = f"{time.time() + 1.5:.3f}"
    procs = [_holder(directory, f"s{i}", "race", start) for i in range(8)]
    try:
        answers = []
        for proc in procs:
            assert proc.stdout is not None
            answers.append(proc.stdout.readline().strip())
        assert (1, 7) == (answers.count("held"), answers.count("refused")), answers
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()


def test_a_directory_others_can_write_is_refused(directory: str) -> None:
    """A registry another user could write to could be faked or emptied: it is not used."""
    os.mkdir(directory, 0o700)
    os.chmod(directory, 0o777)
    with pytest.raises(RegistryError, match="no other user can write"):
        _registry(directory, "a").acquire("127.0.0.1", 8080)


def test_the_registry_is_root_owned_for_root_and_private_otherwise() -> None:
    """/run/orchestrator-addresses (0755 root) for root; a 0700 directory per uid otherwise, never
    inside a run directory (emptied at a stop)."""
    assert "/run/orchestrator-addresses" == registry_directory(0)
    assert "/tmp/orchestrator-1000-addresses" == registry_directory(1000)
    registry = AddressRegistry(Owner("a", "/run/a", os.getpid()))
    registry.acquire("127.0.0.1", 1)  # port 1: never served by a test controller
    try:
        st = os.stat(registry.directory)
        expected = 0o755 if os.geteuid() == 0 else 0o700
        assert (expected, os.geteuid()) == (stat.S_IMODE(st.st_mode), st.st_uid)
    finally:
        registry.release_all()
    wait_until(lambda: not os.path.exists(os.path.join(registry.directory, "127.0.0.1:1")), 1, "")
