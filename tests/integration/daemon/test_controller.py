"""The controller end to end: real processes, real sockets on 127.0.0.1, the quickstart's apps.

Run as root, pools get dedicated users (user: auto) and the listener runs as orch-listener; run as
an ordinary user, everything runs as that user. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import sys
import threading
import time

import pytest

from orchestrator.cli import main
from tests.support.controller import (
    ANY_PORT,
    REPO,
    Names,
    controller_state,
    http,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for PID 1 to reap it does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_the_quickstart_routes_each_path_to_its_own_pool(world_dir: str, names: Names) -> None:
    """/hello/ reaches the hello pool, /notes/ the notes pool, anything else is 404."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        hello = ctl.get("/hello/x").json()
        assert ("hello", "/hello/x") == (hello["app"], hello["path"])
        posted = http(ctl.port, "/notes/", method="POST", body=b"remember the milk")
        assert 201 == posted.status
        assert "remember the milk" in posted.json()["notes"]  # type: ignore[operator]
        assert 404 == ctl.get("/elsewhere/").status
        assert "/hello" == ctl.get("/hello").json()["path"]  # /hello reaches the /hello/ prefix


def test_status_json_carries_the_documented_fields(world_dir: str, names: Names) -> None:
    """manifest.sha256, queues, urlGroups, workers (pid, uid, user, state) and the listener."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        state = ctl.state()
        assert 64 == len(str(state["manifest"]["sha256"]))  # type: ignore[index]
        assert {names.hello, names.notes} == {q["name"] for q in state["queues"]}  # type: ignore[union-attr, index]
        assert {names.hello, names.notes} == {g["name"] for g in state["urlGroups"]}  # type: ignore[union-attr, index]
        worker = state["workers"][0]  # type: ignore[index]
        for field in ("pool", "pid", "uid", "user", "state", "restarts", "health"):
            assert field in worker
        listener = state["listener"]
        assert isinstance(listener, dict)
        assert listener["pid"]
        assert [f"127.0.0.1:{ctl.port}"] == listener["addresses"]


def test_port_0_binds_a_free_port_that_status_and_the_log_report_and_a_reload_keeps(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL prefix on port 0: the listener serves a port the kernel chose; status (JSON and text)
    and the listener_bound event name it; a reload of a manifest still on port 0 keeps the port,
    and the plan against the running controller stays empty."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        port = ctl.port
        assert port != 0
        assert 200 == ctl.get("/hello/").status
        listener = ctl.state()["listener"]
        assert isinstance(listener, dict)
        assert [
            {"scheme": "http", "address": "127.0.0.1:0", "bound": f"127.0.0.1:{port}", "port": port}
        ] == listener["endpoints"]
        (bound,) = ctl.events("listener_bound")
        assert ("127.0.0.1:0", port) == (bound["address"], bound["port"])
        assert 0 == main(["status", "--run-dir", ctl.run_dir])
        assert f"addresses 127.0.0.1:{port} (asked 127.0.0.1:0)" in capsys.readouterr().out

        more = '0/notes/", "http://127.0.0.1:0/more/"]'
        ctl.write("site.yaml", manifest.replace('0/notes/"]', more))
        wait_until(lambda: ctl.get("/more/").status == 200, 15, "the reloaded manifest")
        assert [f"127.0.0.1:{port}"] == ctl.state()["listener"]["addresses"]  # type: ignore[index]
        assert 1 == len(ctl.events("listener_bound"))
        code = main(["plan", ctl.site, "--run-dir", ctl.run_dir, "--detailed-exitcode"])
        assert 0 == code, capsys.readouterr().out


def test_a_killed_worker_is_replaced_within_a_second(world_dir: str, names: Names) -> None:
    """kill -9 of a worker: the next request waits in the queue (the socket never went away) and
    a replacement process serves it within 1 s."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (victim,) = ctl.pids(names.hello)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        served = ctl.get("/hello/after", timeout=5.0)
        elapsed = time.monotonic() - killed_at
        assert 200 == served.status
        assert victim != served.json()["pid"]
        assert elapsed < 1.0, f"served {elapsed:.2f}s after the kill"


def test_status_never_lists_a_worker_the_log_says_has_exited(world_dir: str, names: Names) -> None:
    """Once the log shows a worker's exit, `status` no longer lists it (status was refreshed at
    most twice a second, so a killed worker stayed "ready" for up to half a second)."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (victim,) = ctl.pids(names.hello)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: any(e.get("pid") == victim for e in ctl.events("process_exit")),
            10,
            "the exit to be logged",
        )
        assert victim not in {w["pid"] for w in ctl.workers()}


@pytest.mark.parametrize("core", ["compiled", "python"])
def test_status_says_which_listener_core_runs(world_dir: str, names: Names, core: str) -> None:
    """The listener reports its hot path; ORCHESTRATOR_NO_EXTENSIONS=1 given to the controller
    reaches the listener and selects the pure-Python twin."""
    if (
        core == "compiled"
        and importlib.util.find_spec("orchestrator.backends.linux.listener._fast") is None
    ):
        pytest.skip("the compiled listener core is not built here")
    env = {"ORCHESTRATOR_NO_EXTENSIONS": "1" if core == "python" else ""}
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names), env_extra=env) as ctl:
        assert 200 == ctl.get("/hello/").status

        def reported() -> object:
            listener = ctl.state().get("listener")
            return listener.get("core") if isinstance(listener, dict) else None

        wait_until(reported, 10, "the listener to report its core")
        assert core == reported()


def test_a_pool_that_crashes_at_boot_is_stopped_and_answers_503(
    world_dir: str, names: Names
) -> None:
    """Rapid-fail: the crashing pool answers 503 with Retry-After; the other app keeps serving."""
    crash = f'[{sys.executable}, "-c", "import sys; sys.exit(1)"]'
    manifest = quickstart_manifest(ANY_PORT, names, hello_command=crash, health=False)
    with running_controller(world_dir, manifest, converge=False) as ctl:
        wait_until(
            lambda: (ctl.state().get("pools") or {}).get(names.hello, {}).get("halted"),  # type: ignore[union-attr]
            30,
            "rapid-fail protection to stop the hello pool",
        )
        refused = ctl.get("/hello/")
        assert 503 == refused.status
        assert "retry-after" in refused.headers
        assert 200 == ctl.get("/notes/").status
        assert "rapid-fail protection" in str(ctl.state()["pools"][names.hello]["halted"])  # type: ignore[index]


def test_sigterm_stops_everything_and_exits_0(world_dir: str, names: Names) -> None:
    """Graceful stop: exit code 0, every socket removed, no worker left."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        pids = ctl.pids(names.hello) | ctl.pids(names.notes)
        assert 0 == ctl.stop(timeout_s=30)
        assert not os.path.exists(os.path.join(ctl.run_dir, "control.sock"))
        assert not os.path.exists(os.path.join(ctl.run_dir, "queues", f"{names.hello}.sock"))
        for pid in pids:
            assert not alive(pid), pid


def test_sigkill_of_the_controller_takes_every_child_within_a_second(
    world_dir: str, names: Names
) -> None:
    """PDEATHSIG (set after the uid change) and cgroups: nothing survives the controller."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        state = ctl.state()
        children = {int(str(w["pid"])) for w in state["workers"]}  # type: ignore[union-attr, index]
        children |= set(state["listener"]["pids"])  # type: ignore[index]
        os.kill(ctl.proc.pid, signal.SIGKILL)
        wait_until(
            lambda: not any(alive(p) for p in children),
            1.0,
            "every child of the killed controller to be gone",
        )


def test_a_restarted_controller_binds_the_same_port_at_once(world_dir: str, names: Names) -> None:
    """After SIGKILL, a new controller binds the port again without EADDRINUSE and serves (the
    port is the one the first controller was given for port 0, now written in the manifest)."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        assert 200 == ctl.get("/hello/").status
        port = ctl.port
        os.kill(ctl.proc.pid, signal.SIGKILL)
        ctl.proc.wait(timeout=5)
    with running_controller(world_dir, quickstart_manifest(port, names)) as again:
        assert port == again.port
        assert 200 == again.get("/hello/").status


def test_plan_against_a_running_controller_shows_no_changes(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan talks to the controller: the applied manifest is "No changes" (exit 0)."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        code = main(["plan", ctl.site, "--run-dir", ctl.run_dir, "--detailed-exitcode"])
        out = capsys.readouterr().out
        assert 0 == code, out
        assert "No changes. Live state matches the manifest." in out


def test_apply_through_the_controller_waits_and_reports(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply of a changed pool restarts it (create before destroy) and exits 0 when healthy."""
    with running_controller(
        world_dir, quickstart_manifest(ANY_PORT, names), args=("--no-watch",)
    ) as ctl:
        before = ctl.pids(names.notes)
        changed = quickstart_manifest(ANY_PORT, names).replace(
            'command: [orchestrator, worker, "notes:app"]',
            'command: [orchestrator, worker, --threads, "4", "notes:app"]',
        )
        ctl.write("site.yaml", changed)
        code = main(["apply", ctl.site, "--run-dir", ctl.run_dir])
        captured = capsys.readouterr()
        assert 0 == code, captured.err
        assert "1 replaced" in captured.out
        assert before.isdisjoint(ctl.pids(names.notes))
        assert 200 == ctl.get("/notes/").status


def test_a_queue_socket_removed_by_hand_is_drift_and_is_repaired(
    world_dir: str, names: Names
) -> None:
    """The next pass re-creates the socket and restarts the pool on it; the app serves again."""
    with running_controller(
        world_dir, quickstart_manifest(ANY_PORT, names), args=("--resync", "1s")
    ) as ctl:
        os.unlink(os.path.join(ctl.run_dir, "queues", f"{names.hello}.sock"))
        wait_until(
            lambda: os.path.exists(os.path.join(ctl.run_dir, "queues", f"{names.hello}.sock")),
            15,
            "the queue socket to be re-created",
        )
        wait_until(lambda: ctl.get("/hello/").status == 200, 15, "hello to serve again")
        assert any(e.get("reason") == "deleted_outside" for e in ctl.events("drift"))


def test_no_controller_is_said_plainly(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """status with nothing running: one sentence, exit 1, no traceback."""
    assert 1 == main(["status", "--run-dir", os.path.join(world_dir, "none")])
    err = capsys.readouterr().err
    assert "no controller is running at" in err
    assert "Traceback" not in err
    assert controller_state(os.path.join(world_dir, "none")) is None


@pytest.mark.parametrize(
    ("server", "command"),
    [
        ("gunicorn", '[gunicorn, --workers, "1", "hello:app"]'),
        ("uvicorn", '[uvicorn, --fd, "3", "asgi_hello:app"]'),
    ],
)
def test_gunicorn_and_uvicorn_serve_as_workers(
    world_dir: str, names: Names, server: str, command: str
) -> None:
    """Any server that takes an inherited socket works unchanged (fd 3)."""
    manifest = quickstart_manifest(ANY_PORT, names, hello_command=command)
    with running_controller(
        world_dir, manifest, apps_from=os.path.join(REPO, "tests", "support", "apps")
    ) as ctl:
        answer = ctl.get("/hello/x")
        assert 200 == answer.status, answer.body
        assert "/hello/x" == answer.json()["path"]


def test_sigterm_under_load_finishes_the_request_in_flight_then_everything_stops(
    world_dir: str, names: Names
) -> None:
    """Catalogue C29: SIGTERM while a 2 s request runs through the listener: that request gets its
    200, a new connection after draining began is refused or closed without an answer, the
    controller exits 0 and every process is gone within the grace (shutdownTimeLimit 5 s) + 1 s."""
    manifest = quickstart_manifest(
        ANY_PORT, names, hello_command='[orchestrator, worker, "echo:app"]'
    )
    with running_controller(
        world_dir, manifest, apps_from=os.path.join(REPO, "tests", "support", "apps")
    ) as ctl:
        state = ctl.state()
        children = {int(str(w["pid"])) for w in state["workers"]}  # type: ignore[union-attr, index]
        children |= set(state["listener"]["pids"])  # type: ignore[index]
        port = ctl.port
        slow: list[int] = []
        thread = threading.Thread(
            target=lambda: slow.append(ctl.get("/hello/slow/2", timeout=15).status)
        )
        thread.start()
        wait_until(lambda: "ECHO slow /hello/slow/2" in ctl.log(), 10, "the slow request to run")
        exited: list[float] = []
        waiter = threading.Thread(
            target=lambda: (ctl.proc.wait(timeout=15), exited.append(time.monotonic()))
        )
        ctl.proc.send_signal(signal.SIGTERM)
        stopping_at = time.monotonic()
        waiter.start()
        # The listener is told to drain right after this event (same thread, next statement).
        wait_until(lambda: ctl.events("controller_stopping"), 10, "the controller to stop")
        late = _late_answer(port)
        waiter.join(20)
        thread.join(15)
        code = ctl.proc.returncode
        stopped_in = exited[0] - stopping_at
        assert [200] == slow
        assert late in ("refused", "closed"), late
        assert 0 == code
        assert stopped_in < 5 + 1, stopped_in
        assert not any(alive(p) for p in children)


def _late_answer(port: int) -> str:
    """What a new client sees: refused, closed without an answer, or an HTTP status line."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /notes/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = sock.recv(64)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "closed"
    except TimeoutError:
        return "no answer"
    return "closed" if not data else data.split(b"\r\n", 1)[0].decode()


def test_a_halted_pool_is_rearmed_by_reset_and_by_a_new_definition(
    world_dir: str, names: Names
) -> None:
    """Catalogue C24: a pool that fails at boot is halted by rapid-fail protection (503);
    `orchestrator reset POOL` re-arms it (it serves once it can boot); halted again, a manifest
    change to the pool re-arms it too."""
    flag = os.path.join(world_dir, "can-boot")
    gated = f"[sh, -c, 'test -e {flag} && exec orchestrator worker hello:app || exit 1']"
    manifest = quickstart_manifest(ANY_PORT, names, hello_command=gated, health=False)

    def halted() -> object:
        return (ctl.state().get("pools") or {}).get(names.hello, {}).get("halted")  # type: ignore[union-attr]

    with running_controller(world_dir, manifest, converge=False) as ctl:
        wait_until(halted, 30, "rapid-fail protection to stop the hello pool")
        assert 503 == ctl.get("/hello/").status
        with open(flag, "w", encoding="ascii") as fh:
            fh.write("yes")
        os.chmod(flag, 0o644)
        assert 0 == main(["reset", names.hello, "--run-dir", ctl.run_dir])
        wait_until(lambda: ctl.get("/hello/").status == 200, 30, "hello to serve after reset")
        assert not halted()

        # Without the flag, every replacement fails at boot: one kill starts the crash loop that
        # rapid-fail protection stops. A pid read from status may have exited by the time it is
        # killed (the ProcessLookupError this test used to fail with). The worker that answered
        # may not be marked ready yet: killing an empty set started nothing (a loop run's failure).
        os.remove(flag)
        ready = wait_until(lambda: ctl.pids(names.hello), 30, "a ready hello worker")
        for pid in ready:  # type: ignore[attr-defined]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(halted, 30, "the pool halted again")
        ctl.write(
            "site.yaml",
            manifest.replace(gated, '[orchestrator, worker, "hello:app"]'),
        )
        wait_until(lambda: ctl.get("/hello/").status == 200, 30, "hello to serve, re-armed")
        assert not halted()
        assert 200 == ctl.get("/notes/").status
