"""State that survives a stop (issue 12 item 2 and its acceptance): the last-known-good manifest
and the users the controller created live in the state directory, not in the run directory; a
controller stopped as systemd does (SIGTERM) and started again still knows both, and ``--resume``
comes up on the last-known-good manifest; state an older version left in the run directory is
moved on first start; ``ORCHESTRATOR_RUN_DIR`` finds the controller; and the sd_notify messages
(READY, WATCHDOG, RELOADING) arrive on a ``NOTIFY_SOCKET`` in order."""

from __future__ import annotations

import itertools
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support.controller import (
    ANY_PORT,
    REPO,
    Controller,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration


def _json(path: str) -> object:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _users(state_dir: str) -> set[str]:
    """The users the controller recorded as made by it."""
    names = _json(os.path.join(state_dir, "users.json"))
    assert isinstance(names, list)
    return {str(n) for n in names}


def _in_force(ctl: Controller, old_sha: str) -> str | None:
    """The hash of the manifest in force, once it is not ``old_sha`` any more and has been saved as
    the last known good; else ``None``."""
    now = str(ctl.state()["manifest"]["sha256"])  # type: ignore[index]
    return now if now != old_sha and now == _lkg_sha(ctl.state_dir) else None


def _lkg_sha(state_dir: str) -> str:
    """The hash of the persisted last-known-good manifest."""
    lkg = _json(os.path.join(state_dir, "last-known-good.json"))
    assert isinstance(lkg, dict)
    return str(lkg["sha256"])


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


@pytest.mark.root
def test_after_stop_and_start_the_last_known_good_and_the_users_are_still_known(
    world_dir: str, names: Names
) -> None:
    """SIGTERM, start again on the same state directory: the manifest in force is the
    last-known-good one, and a pool removed afterwards has its user deleted (the controller still
    knows it made it); then an invalid manifest with --resume starts on the last-known-good one."""
    manifest = quickstart_manifest(ANY_PORT, names, user="auto")
    hello_user, notes_user = f"orch-{names.hello}", f"orch-{names.notes}"
    with running_controller(world_dir, manifest) as first:
        sha = str(first.state()["manifest"]["sha256"])  # type: ignore[index]
        assert 0 == first.stop()
        assert sha == _lkg_sha(first.state_dir)
        assert {hello_user, notes_user} <= _users(first.state_dir)
        # The run directory holds sockets and the lock only (systemd may empty it at stop).
        assert not os.path.exists(os.path.join(first.run_dir, "state"))
        assert _exists(notes_user)  # kept across a stop: the pool comes back on start

        with running_controller(world_dir, manifest) as second:
            assert sha == second.state()["manifest"]["sha256"]  # type: ignore[index]
            trimmed = _drop_pool(manifest, names)
            assert names.notes not in trimmed
            second.write("site.yaml", trimmed)
            wait_until(
                lambda: not _exists(notes_user) and notes_user not in _users(second.state_dir),
                30,
                f"{notes_user} to be deleted and forgotten",
            )
            assert _exists(hello_user)
            assert hello_user in _users(second.state_dir)
            # The user goes during the apply; the trimmed manifest is in force (and saved as the
            # last known good) only once that whole pass has finished.
            second_sha = wait_until(
                lambda: _in_force(second, sha),
                30,
                "the trimmed manifest to be in force and the last known good",
            )
            assert 0 == second.stop()

        broken = trimmed.replace(f"queue: {names.hello}\n    command", "queue: nosuch\n    command")
        assert broken != trimmed
        with running_controller(world_dir, broken, args=("--resume",)) as third:
            assert second_sha == third.state()["manifest"]["sha256"]  # type: ignore[index]
            assert 200 == third.get("/hello/").status
            assert "resuming the last-known-good manifest" in third.log()


def _drop_pool(manifest: str, names: Names) -> str:
    """The quickstart manifest without the notes pool, its URL group and its queue."""
    out = manifest.replace(f"  {names.notes}: {{}}\n", "")
    group = (
        f"  {names.notes}:\n    queue: {names.notes}\n"
        f'    urls: ["http://127.0.0.1:{ANY_PORT}/notes/"]\n'
    )
    out = out.replace(group, "")
    start = out.index(f"  {names.notes}:\n    queue: {names.notes}\n    command")
    return out[:start]


def test_state_left_in_the_run_directory_moves_to_the_state_directory(
    world_dir: str, names: Names
) -> None:
    """An older version's <run dir>/state/ is moved on first start and the move is logged once;
    then ORCHESTRATOR_RUN_DIR=... orchestrator status finds the controller without --run-dir."""
    old = os.path.join(world_dir, "run", "state")
    os.makedirs(old, mode=0o700)
    stale = {"root": "/old", "sha256": "0" * 64, "files": []}
    with open(os.path.join(old, "last-known-good.json"), "w", encoding="utf-8") as fh:
        json.dump(stale, fh)
    # A user that does not exist: recorded, so it must be carried over, but nothing to delete.
    sentinel = f"orch-gone{os.getpid()}"
    with open(os.path.join(old, "users.json"), "w", encoding="utf-8") as fh:
        json.dump([sentinel], fh)
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (moved,) = ctl.events("state_moved")
        assert (old, ctl.state_dir) == (moved["source"], moved["target"])
        assert ["last-known-good.json", "users.json"] == moved["files"]
        assert not os.path.exists(old)
        assert sentinel in _users(ctl.state_dir)
        # The converged manifest replaced the moved one.
        running = str(ctl.state()["manifest"]["sha256"])  # type: ignore[index]
        wait_until(
            lambda: _lkg_sha(ctl.state_dir) == running,
            10,
            "the last-known-good manifest to be the running one",
        )
        env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_RUN_DIR"}
        env["ORCHESTRATOR_RUN_DIR"] = ctl.run_dir
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
            cwd=REPO,
        )
        assert 0 == proc.returncode, proc.stderr
        assert ctl.proc.pid == json.loads(proc.stdout)["pid"]


def _messages(
    sock: socket.socket, until: str, timeout_s: float
) -> list[tuple[float, dict[str, str]]]:
    """Datagrams (arrival time, fields) up to and including the first with ``until`` (KEY=VALUE)."""
    key, _, value = until.partition("=")
    out: list[tuple[float, dict[str, str]]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            break
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        out.append((time.monotonic(), fields))
        if fields.get(key) == value:
            return out
    raise AssertionError(f"no {until} within {timeout_s}s; got {[f for _, f in out]}")


def test_notify_messages_arrive_in_order_with_watchdog_pings(world_dir: str, names: Names) -> None:
    """READY=1 after the first convergence; WATCHDOG=1 every WATCHDOG_USEC/2; on SIGHUP
    RELOADING=1 (with MONOTONIC_USEC) then READY=1, also when the files did not change (systemd's
    Type=notify-reload waits for both after its signal)."""
    path = os.path.join(world_dir, "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        with running_controller(
            world_dir,
            quickstart_manifest(ANY_PORT, names),
            converge=False,
            env_extra={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"},
        ) as ctl:
            start = _messages(sock, "READY=1", 60)
            assert not any("RELOADING" in f for _, f in start)
            assert ctl.converged()
            pings = [t for t, f in _messages(sock, "WATCHDOG=1", 5) if "WATCHDOG" in f]
            for _ in range(3):
                pings += [t for t, f in _messages(sock, "WATCHDOG=1", 5) if "WATCHDOG" in f]
            # From the second ping on: the first may follow a ping sent just before READY=1.
            gaps = [b - a for a, b in itertools.pairwise(pings[1:])]
            # Half of 1 s, give or take a loop turn (the loop wakes for the ping itself).
            assert all(0.3 <= gap <= 0.9 for gap in gaps), gaps

            before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            os.kill(ctl.proc.pid, signal.SIGHUP)
            reload = [f for _, f in _messages(sock, "READY=1", 30) if "WATCHDOG" not in f]
            assert ["RELOADING", "READY"] == [
                k for f in reload for k in ("RELOADING", "READY") if k in f
            ]
            assert before <= int(reload[0]["MONOTONIC_USEC"])
            assert ctl.converged()
