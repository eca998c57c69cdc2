"""``orchestrator logs``, captured output and the access log, against a real controller: a pool's
start-up line tagged with its pool and pid (and no other pool's), following across a restart, the
listener's own output, an unknown pool, a flood that stalls nothing, and the access log in a file
that logrotate renames (SIGUSR1 reopens it) or in text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.support.controller import (
    ANY_PORT,
    ORCHESTRATOR,
    REPO,
    Controller,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration


def _logs(ctl: Controller, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORCHESTRATOR, "logs", *args, "--run-dir", ctl.run_dir],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Follower:
    """``orchestrator logs POOL -f`` in the background, its lines collected as they come."""

    def __init__(self, ctl: Controller, pool: str) -> None:
        self.proc = subprocess.Popen(
            [*ORCHESTRATOR, "logs", pool, "-f", "--run-dir", ctl.run_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            # As a terminal would start it: a test run started in the background of a
            # non-interactive shell (CI) inherits SIGINT ignored, and Python then installs no
            # handler, so Ctrl-C would do nothing.
            preexec_fn=_default_sigint,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int:
        """Ctrl-C, as a user would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def follower() -> Iterator[list[_Follower]]:
    made: list[_Follower] = []
    yield made
    for f in made:
        f.stop()


def _started(lines: list[str], pool: str, pid: int) -> bool:
    """The runner's start-up line of ``pid`` is there, tagged with its pool and pid."""
    return any(
        line.startswith(f"{pool}[{pid}]: ") and "listening on" in line and f"({pool})" in line
        for line in lines
    )


def test_logs_shows_a_pools_start_line_tagged_with_its_pid_and_no_other_pools(
    world_dir: str, names: Names
) -> None:
    """The runner's 'listening on ... (hello)' line, printed at start, comes back from
    ``logs hello`` as ``hello[PID]: ...`` with the worker's pid; no line of notes does; and the
    controller's own log has the same line as a JSON record with pool, pid and stream."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (pid,) = ctl.pids(names.hello)
        result = wait_until(
            lambda: (
                (r := _logs(ctl, names.hello)).returncode == 0
                and _started(r.stdout.splitlines(), names.hello, pid)
                and r
            ),
            20,
            "the start-up line in 'logs'",
        )
        assert isinstance(result, subprocess.CompletedProcess)
        lines = result.stdout.splitlines()
        assert all(line.startswith(f"{names.hello}[") for line in lines), lines
        assert not any(names.notes in line for line in lines), lines
        records = [
            e for e in ctl.events("output") if e.get("pool") == names.hello and e.get("pid") == pid
        ]
        assert any("listening on" in str(e["line"]) for e in records), records
        assert {"stderr"} >= {e["stream"] for e in records}


def test_logs_follow_shows_the_lines_of_a_worker_that_replaced_a_killed_one(
    world_dir: str, names: Names, follower: list[_Follower]
) -> None:
    """``logs hello -f`` keeps going when the worker is SIGKILLed: the supervisor's replacement
    prints its start-up line under its new pid, and Ctrl-C ends the command quietly."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (old,) = ctl.pids(names.hello)
        f = _Follower(ctl, names.hello)
        follower.append(f)
        wait_until(lambda: _started(f.lines, names.hello, old), 20, "the old worker's line")
        os.kill(old, signal.SIGKILL)
        new = wait_until(
            lambda: next(iter(ctl.pids(names.hello) - {old}), None), 30, "a replacement worker"
        )
        assert isinstance(new, int)
        wait_until(lambda: _started(f.lines, names.hello, new), 20, "the new worker's line")
        assert f.stop() in (0, 130)
        assert not any(names.notes in line for line in f.lines)


def test_logs_listener_shows_the_listeners_own_output(world_dir: str, names: Names) -> None:
    """The listener reports its hot path at start, on its stderr: ``logs listener`` has it, tagged
    with a listener pid."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        listener = ctl.state()["listener"]
        assert isinstance(listener, dict)
        pids = {int(p) for p in listener["pids"]}

        def core_line() -> str | None:
            for line in _logs(ctl, "listener").stdout.splitlines():
                tag, _, rest = line.partition(": ")
                if '"event":"listener_core"' in rest:
                    return tag
            return None

        tag = wait_until(core_line, 20, "the listener's core line")
        assert tag in {f"listener[{pid}]" for pid in pids}


def test_logs_of_an_unknown_pool_is_one_line_naming_the_known_ones(
    world_dir: str, names: Names
) -> None:
    """Exit 1, one line, the pools and the listener listed."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        result = _logs(ctl, "nosuch")
        assert 1 == result.returncode
        lines = result.stderr.strip().splitlines()
        assert 1 == len(lines), result.stderr
        known = ", ".join(sorted([names.hello, names.notes])) + ", listener"
        assert f'unknown pool "nosuch"; known: {known}' in lines[0]


FLOOD_LINES = 100_000
#: The worker: FLOOD_LINES lines on stdout as fast as it can, then it idles (escaped for YAML).
FLOOD = (
    "import sys\\nw = sys.stdout.write\\n"
    f"for i in range({FLOOD_LINES}):\\n"
    "    w(f'FLOOD {i}\\\\n')\\n"
    "sys.stdout.flush()\\nimport time\\ntime.sleep(600)\\n"
)


def test_a_flooding_worker_stalls_neither_the_controller_nor_other_pools(
    world_dir: str, names: Names
) -> None:
    """A worker prints 100,000 lines as fast as it can: it gets through them (its pipe never stays
    full), the controller keeps answering, the other pool's start-up line is still in its own
    ring, and the flooder's ring holds its newest lines in order, ending with the last."""
    manifest = quickstart_manifest(
        ANY_PORT, names, hello_command=f'[{sys.executable}, -c, "{FLOOD}"]', health=False
    )
    with running_controller(world_dir, manifest, converge=False) as ctl:
        last = f"FLOOD {FLOOD_LINES - 1}"
        wait_until(lambda: last in _logs(ctl, names.hello).stdout, 60, "the flood to be read")
        (notes_pid,) = wait_until(lambda: ctl.pids(names.notes), 30, "notes to be ready")
        assert _started(_logs(ctl, names.notes).stdout.splitlines(), names.notes, notes_pid)
        lines = [
            json.loads(line)["line"]
            for line in _logs(ctl, names.hello, "--json").stdout.splitlines()
            if json.loads(line)["stream"] == "stdout"
        ]
        numbers = [int(line.split()[1]) for line in lines]
        assert FLOOD_LINES - 1 == numbers[-1]
        assert list(range(numbers[0], FLOOD_LINES)) == numbers
        assert 200 == ctl.get("/notes/").status


def _access_lines(path: str) -> list[dict[str, object]]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def test_the_access_log_file_is_reopened_on_sigusr1_after_logrotate_renames_it(
    world_dir: str, names: Names
) -> None:
    """``accessLog: PATH``: requests are logged there (JSON, as the controller logs); logrotate
    renames the file and signals the controller; later requests go to a new file at PATH, and
    the renamed one keeps only the earlier ones. Nothing goes to the controller's stderr."""
    path = os.path.join(world_dir, "access.log")
    manifest = quickstart_manifest(ANY_PORT, names)
    if names.listener_user:  # as root the listener already has a line of its own
        user = f"listener: {{user: {names.listener_user}"
        manifest = manifest.replace(user, f"{user}, accessLog: {path}", 1)
    else:
        manifest = manifest.replace(
            "  timeouts:", f"  listener: {{accessLog: {path}}}\n  timeouts:"
        )
    assert f"accessLog: {path}" in manifest
    with running_controller(world_dir, manifest) as ctl:
        assert 200 == ctl.get("/hello/before").status
        wait_until(
            lambda: any(e.get("target") == "/hello/before" for e in _access_lines(path)),
            10,
            "the first request in the access log",
        )
        rotated = path + ".1"
        os.rename(path, rotated)
        os.kill(ctl.proc.pid, signal.SIGUSR1)
        wait_until(lambda: ctl.events("access_log_reopened"), 10, "the reopen")
        assert 200 == ctl.get("/hello/after").status
        wait_until(
            lambda: any(e.get("target") == "/hello/after" for e in _access_lines(path)),
            10,
            "the second request in the new file",
        )
        assert ["/hello/before"] == [
            e["target"] for e in _access_lines(rotated) if str(e["target"]).endswith("before")
        ]
        assert not any(str(e.get("target")).endswith("after") for e in _access_lines(rotated))
        assert not ctl.events("access")


def test_with_text_logs_worker_lines_and_access_lines_are_text(
    world_dir: str, names: Names
) -> None:
    """``--log-format text``: the controller's log has ``pool[pid]: line`` for worker output and
    ``key=value`` access lines."""
    with running_controller(
        world_dir, quickstart_manifest(ANY_PORT, names), args=("--log-format", "text")
    ) as ctl:
        (pid,) = ctl.pids(names.hello)
        assert 200 == ctl.get("/hello/texty").status
        wait_until(
            lambda: _started(ctl.log().splitlines(), names.hello, pid), 20, "the start-up line"
        )
        line = wait_until(
            lambda: next((x for x in ctl.log().splitlines() if "target=/hello/texty" in x), None),
            10,
            "the access line",
        )
        assert " event=access " in str(line)
        assert f" queue={names.hello} " in str(line)
        assert " status=200 " in str(line)


def test_logs_follow_shows_the_lines_of_the_workers_a_restart_started(
    world_dir: str, names: Names, follower: list[_Follower]
) -> None:
    """``logs hello -f`` across ``orchestrator restart hello``: the new generation's start-up line
    arrives under its new pid."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (old,) = ctl.pids(names.hello)
        f = _Follower(ctl, names.hello)
        follower.append(f)
        wait_until(lambda: _started(f.lines, names.hello, old), 20, "the old worker's line")
        restart = subprocess.run(
            [*ORCHESTRATOR, "restart", names.hello, "--run-dir", ctl.run_dir],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )
        assert 0 == restart.returncode, restart.stderr
        new = wait_until(
            lambda: next(iter(ctl.pids(names.hello) - {old}), None), 30, "the new generation"
        )
        assert isinstance(new, int)
        wait_until(lambda: _started(f.lines, names.hello, new), 20, "the new worker's line")
