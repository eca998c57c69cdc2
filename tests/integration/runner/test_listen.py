"""``orchestrator worker --listen HOST:PORT``, the container mode, against real runner processes.

A pod has no controller to hand over a queue socket: the runner binds the TCP address itself, answers
the kubelet's ``httpGet`` probes there, and drains on SIGTERM as it does under the controller.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from orchestrator.runner.main import EXIT_BOOT_ERROR, EXIT_ERROR, EXIT_USAGE
from tests.integration.runner.harness import (
    APPS,
    RunnerProcess,
    Spawner,
    listening_unix_socket,
    wait_until,
)

pytestmark = pytest.mark.integration

QUICKSTART_APPS = str(Path(__file__).parents[3] / "examples" / "quickstart" / "apps")


def _port(runner: RunnerProcess, host: str) -> int:
    """The port the runner picked for ``HOST:0``, from its ``listening on HOST:PORT`` log line."""
    prefix = f"listening on {host}:"
    line = next(ln for ln in runner.stderr.splitlines() if prefix in ln)
    return int(line.split(prefix)[1].split()[0])


def _get(host: str, port: int, target: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _one_line(runner: RunnerProcess) -> str:
    """The runner's whole stderr, which must be exactly one line and no traceback."""
    lines = runner.stderr.strip().splitlines()
    assert 1 == len(lines), runner.stderr
    assert "Traceback" not in runner.stderr
    return lines[0]


def test_listen_serves_the_quickstart_app_and_its_health_path(spawner: Spawner) -> None:
    """No inherited socket, no --bind: the app and ``/healthz`` (the probe's path) answer over TCP."""
    runner = spawner.start("--listen", "127.0.0.1:0", "--app-dir", QUICKSTART_APPS, "hello:app")
    port = _port(runner, "127.0.0.1")
    status, body = _get("127.0.0.1", port, "/hello")
    assert 200 == status
    document = json.loads(body)
    assert ("hello", "/hello", runner.pid) == (document["app"], document["path"], document["pid"])
    assert (200, b"ok\n") == _get("127.0.0.1", port, "/healthz")


def test_listen_takes_a_bracketed_ipv6_address(spawner: Spawner) -> None:
    """``[::1]:0`` binds the IPv6 loopback, logged in the same bracketed form."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python build")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    runner = spawner.start("--listen", "[::1]:0", "--app-dir", QUICKSTART_APPS, "hello:app")
    assert (200, b"ok\n") == _get("::1", _port(runner, "[::1]"), "/healthz")


def test_sigterm_finishes_the_in_flight_request_then_exits_0_within_the_grace(
    spawner: Spawner, workdir: Path
) -> None:
    """What Kubernetes does at pod deletion: SIGTERM, then SIGKILL after the grace period."""
    mark = workdir / "started"
    runner = spawner.start(
        "--listen", "127.0.0.1:0", "--graceful-timeout", "10", "--app-dir", APPS, "runnerapp:app"
    )
    port = _port(runner, "127.0.0.1")
    result: dict[str, tuple[int, bytes]] = {}

    def slow_request() -> None:
        result["response"] = _get("127.0.0.1", port, f"/slow?seconds=1&mark={mark}")

    client = threading.Thread(target=slow_request)
    client.start()
    wait_until(mark.exists, 10, "the slow request to start")
    stopped_at = time.monotonic()
    runner.signal(signal.SIGTERM)
    assert b"STOPPING=1" == runner.next_notification(10)
    client.join(15)
    assert (200, f"slept {runner.pid}".encode()) == result["response"]
    assert 0 == runner.wait(10)
    assert time.monotonic() - stopped_at < 10
    with pytest.raises(ConnectionRefusedError):  # the port went with the process
        _get("127.0.0.1", port, "/hello")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nope", "argument --listen: 'nope' is not HOST:PORT"),
        ("127.0.0.1:65536", "port 65536 is out of range (0-65535)"),
        ("127.0.0.1:-1", "'127.0.0.1:-1' is not HOST:PORT"),
        (":8080", "the host is missing"),
        ("::1:8080", "put an IPv6 address in brackets"),
        ("unix:/tmp/x.sock", "--listen takes a TCP HOST:PORT (use --bind for unix:PATH)"),
    ],
)
def test_a_bad_listen_value_is_a_one_line_usage_error(
    spawner: Spawner, value: str, message: str
) -> None:
    """Exit code 2 and one line naming the option, not argparse's usage block or a traceback."""
    runner = spawner.start(
        "--listen", value, "--app-dir", QUICKSTART_APPS, "hello:app", wait_ready=False
    )
    assert EXIT_USAGE == runner.wait(15)
    line = _one_line(runner)
    assert line.startswith("orchestrator worker: error: ")
    assert message in line


def test_listen_with_bind_is_a_usage_error(spawner: Spawner) -> None:
    """--listen means that address only; adding --bind would contradict it."""
    runner = spawner.start(
        "--listen", "127.0.0.1:0", "--bind", "127.0.0.1:0", "hello:app", wait_ready=False
    )
    assert EXIT_USAGE == runner.wait(15)
    assert "not allowed with argument" in _one_line(runner)


def test_an_address_in_use_exits_1_with_one_line(spawner: Spawner) -> None:
    """Another process holds the port: a plain error (exit 1, may be transient), naming the address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        runner = spawner.start(
            "--listen", address, "--app-dir", QUICKSTART_APPS, "hello:app", wait_ready=False
        )
        assert EXIT_ERROR == runner.wait(15)
    line = _one_line(runner)
    assert line.startswith(f"orchestrator worker: error: cannot listen on {address}: ")
    assert "in use" in line


def test_listen_refuses_a_queue_the_controller_also_passed(spawner: Spawner, workdir: Path) -> None:
    """An inherited queue with --listen cannot boot (exit 3): ignoring it would leave it unserved."""
    path = workdir / "queue.sock"
    with listening_unix_socket(path) as queue:
        runner = spawner.start(
            "--listen",
            "127.0.0.1:0",
            "--app-dir",
            QUICKSTART_APPS,
            "hello:app",
            fd3=queue,
            names="api",
            wait_ready=False,
        )
        assert EXIT_BOOT_ERROR == runner.wait(15)
        line = _one_line(runner)
        assert line.startswith("orchestrator worker: cannot boot: --listen 127.0.0.1:0 ")
        assert "the queue api" in line
        assert "remove --listen" in line
        # It closed only its own copy: the controller's queue still accepts connections.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))
