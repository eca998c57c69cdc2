"""Boot failures, readiness, signals and socket activation, against real runner processes."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from orchestrator.runner.main import EXIT_BOOT_ERROR
from tests.integration.runner.harness import (
    APPS,
    Spawner,
    connection,
    get,
    listening_unix_socket,
    wait_until,
)

pytestmark = pytest.mark.integration


def _expect_cut_off(path: str, target: str) -> None:
    """A request the runner abandons when it exits: the connection closes without a response."""
    with pytest.raises(OSError):
        get(path, target)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_here:app", "cannot import 'no_such_module_here'"),
        ("runnerapp:no_such_attribute", "module 'runnerapp' has no attribute 'no_such_attribute'"),
    ],
)
def test_a_missing_module_or_attribute_exits_3_with_one_line(
    spawner: Spawner, workdir: Path, spec: str, message: str
) -> None:
    """The "cannot boot" code, and a one-line message with no traceback."""
    runner = spawner.start(
        "--bind", f"unix:{workdir / 'b.sock'}", "--app-dir", APPS, spec, wait_ready=False
    )
    assert EXIT_BOOT_ERROR == runner.wait(15)
    lines = runner.stderr.strip().splitlines()
    assert 1 == len(lines), runner.stderr
    assert lines[0].startswith("orchestrator worker: cannot boot: ")
    assert message in lines[0]
    assert not (workdir / "b.sock").exists()  # the socket it bound was cleaned up


def test_ready_is_notified_after_boot_and_stopping_on_sigterm(
    spawner: Spawner, workdir: Path
) -> None:
    """READY=1 arrives on the test's NOTIFY_SOCKET once serving; STOPPING=1 when a stop begins."""
    path = str(workdir / "n.sock")
    runner = spawner.start("--bind", f"unix:{path}", "--app-dir", APPS, "runnerapp:app")
    # Readiness was awaited by the spawner: the socket must already serve.
    assert (200, b"hello\n") == get(path, "/hello")[:2]
    runner.signal(signal.SIGTERM)
    assert b"STOPPING=1" == runner.next_notification(10)
    assert 0 == runner.wait(10)


def test_sigterm_during_a_slow_request_lets_it_finish_then_exits_0(
    spawner: Spawner, workdir: Path
) -> None:
    """The in-flight request completes with 200; new connections are refused; exit within grace."""
    path = str(workdir / "s.sock")
    mark = workdir / "started"
    runner = spawner.start(
        "--bind", f"unix:{path}", "--app-dir", APPS, "--graceful-timeout", "10", "runnerapp:app"
    )
    result: dict[str, object] = {}

    def slow_request() -> None:
        status, body, _ = get(path, f"/slow?seconds=1.5&mark={mark}")
        result["response"] = (status, body)

    client = threading.Thread(target=slow_request)
    client.start()
    wait_until(mark.exists, 10, "the slow request to start")
    stopped_at = time.monotonic()
    runner.signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            get(path, "/hello")
        except OSError:
            return True
        return False

    wait_until(refused, 5, "new connections to be refused")
    client.join(15)
    assert (200, f"slept {runner.pid}".encode()) == result["response"]
    assert 0 == runner.wait(10)
    assert time.monotonic() - stopped_at < 10


def test_sigterm_closes_idle_keep_alive_connections_at_once(
    spawner: Spawner, workdir: Path
) -> None:
    """A pooled connection sitting idle is closed immediately, not after the keep-alive timeout."""
    path = str(workdir / "k.sock")
    runner = spawner.start("--bind", f"unix:{path}", "--app-dir", APPS, "runnerapp:app")
    with connection(path, timeout=5) as conn:
        conn.request("GET", "/hello")
        assert b"hello\n" == conn.getresponse().read()
        assert conn.sock is not None
        started = time.monotonic()
        runner.signal(signal.SIGTERM)
        assert b"" == conn.sock.recv(1)  # EOF, well before the 5 s socket timeout
        assert time.monotonic() - started < 2
    assert 0 == runner.wait(10)


def test_sigterm_does_not_wait_for_a_connected_but_silent_client(
    spawner: Spawner, workdir: Path
) -> None:
    """A connection that never sent a request is idle too: the stop does not wait 30 s for it."""
    path = str(workdir / "c.sock")
    runner = spawner.start(
        "--bind", f"unix:{path}", "--app-dir", APPS, "--graceful-timeout", "20", "runnerapp:app"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.settimeout(5)
        silent.connect(path)
        assert (200, b"hello\n") == get(path, "/hello")[:2]  # the silent one has been accepted
        started = time.monotonic()
        runner.signal(signal.SIGTERM)
        assert 0 == runner.wait(10)
        assert time.monotonic() - started < 2
        assert b"" == silent.recv(1)


def test_the_grace_period_is_bounded(spawner: Spawner, workdir: Path) -> None:
    """A request longer than --graceful-timeout does not hold the process: it exits 0 on time."""
    path = str(workdir / "g.sock")
    mark = workdir / "started"
    runner = spawner.start(
        "--bind", f"unix:{path}", "--app-dir", APPS, "--graceful-timeout", "0.5", "runnerapp:app"
    )
    client = threading.Thread(
        target=lambda: _expect_cut_off(path, f"/slow?seconds=30&mark={mark}"),
        daemon=True,
    )
    client.start()
    wait_until(mark.exists, 10, "the slow request to start")
    started = time.monotonic()
    runner.signal(signal.SIGTERM)
    assert 0 == runner.wait(10)
    assert time.monotonic() - started < 5


def test_sigquit_exits_at_once(spawner: Spawner, workdir: Path) -> None:
    """SIGQUIT does not wait for in-flight requests."""
    path = str(workdir / "q.sock")
    mark = workdir / "started"
    runner = spawner.start("--bind", f"unix:{path}", "--app-dir", APPS, "runnerapp:app")
    threading.Thread(
        target=lambda: _expect_cut_off(path, f"/slow?seconds=30&mark={mark}"),
        daemon=True,
    ).start()
    wait_until(mark.exists, 10, "the slow request to start")
    runner.signal(signal.SIGQUIT)
    assert 0 == runner.wait(5)


def test_an_inherited_fd3_is_served_when_listen_pid_is_the_child(
    spawner: Spawner, workdir: Path
) -> None:
    """The controller's handoff: listening socket at fd 3, LISTEN_FDS=1, LISTEN_PID=<child>."""
    path = workdir / "queue.sock"
    with listening_unix_socket(path) as listener:
        runner = spawner.start("--app-dir", APPS, "runnerapp:app", fd3=listener, names="api")
        status, body, _ = get(str(path), "/pid")
        assert (200, str(runner.pid).encode()) == (status, body)
        assert "listening on unix:" in runner.stderr
        assert "(api)" in runner.stderr
        runner.signal(signal.SIGTERM)
        assert 0 == runner.wait(10)
        # The runner closed only its copy: the controller's socket still accepts connections.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))


def test_an_inherited_fd_with_someone_elses_listen_pid_is_ignored(
    spawner: Spawner, workdir: Path
) -> None:
    """LISTEN_PID of another process: the fd is not ours, so there is nothing to serve (exit 3)."""
    with listening_unix_socket(workdir / "other.sock") as listener:
        runner = spawner.start(
            "--app-dir", APPS, "runnerapp:app", fd3=listener, listen_pid="1", wait_ready=False
        )
        assert EXIT_BOOT_ERROR == runner.wait(15)
    assert "no socket to serve" in runner.stderr


def test_an_inherited_fd_that_is_not_a_listening_stream_socket_cannot_boot(
    spawner: Spawner,
) -> None:
    """A datagram socket at fd 3 is refused up front instead of failing on accept()."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as wrong:
        runner = spawner.start("--app-dir", APPS, "runnerapp:app", fd3=wrong, wait_ready=False)
        assert EXIT_BOOT_ERROR == runner.wait(15)
    assert "is not a Unix or TCP stream socket" in runner.stderr


def test_two_runners_share_one_inherited_socket_and_both_serve(
    spawner: Spawner, workdir: Path
) -> None:
    """With one thread each, backpressure leaves the second connection to the sibling process."""
    path = workdir / "shared.sock"
    with listening_unix_socket(path) as listener:
        first = spawner.start("--app-dir", APPS, "--threads", "1", "runnerapp:app", fd3=listener)
        second = spawner.start("--app-dir", APPS, "--threads", "1", "runnerapp:app", fd3=listener)
        bodies: list[bytes] = []
        lock = threading.Lock()

        def slow() -> None:
            status, body, _ = get(str(path), "/slow?seconds=0.5")
            with lock:
                bodies.append(body if status == 200 else b"failed")

        clients = [threading.Thread(target=slow) for _ in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(20)
        assert 4 == len(bodies)
        assert {f"slept {first.pid}".encode(), f"slept {second.pid}".encode()} == set(bodies)
        for runner in (first, second):
            runner.signal(signal.SIGTERM)
        assert [0, 0] == [first.wait(10), second.wait(10)]


def test_the_variables_are_not_passed_on_to_the_app(spawner: Spawner, workdir: Path) -> None:
    """LISTEN_* are unset before the app is imported, so its children cannot misread them."""
    path = workdir / "env.sock"
    with listening_unix_socket(path) as listener:
        spawner.start("--app-dir", APPS, "envapp:app", fd3=listener)
        status, body, _ = get(str(path), "/")
    assert 200 == status
    assert b"[]" == body
    assert os.environ.get("LISTEN_PID") is None
