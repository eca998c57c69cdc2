"""Starting runner processes for integration tests: fd 3 placement, readiness, bounded waits, cleanup."""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

APPS = str(Path(__file__).parent / "apps")
# `$$` is the shell's pid, which `exec` keeps: the only way to know the child's pid before it runs.
LISTEN_PID_SHIM = 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"'


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


class RunnerProcess:
    """A runner started with posix_spawn in its own session; killed (whole group) on close()."""

    def __init__(self, pid: int, stderr_path: Path, notify: socket.socket | None) -> None:
        self.pid = pid
        self.stderr_path = stderr_path
        self.notify = notify
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout_s: float) -> int:
        wait_until(lambda: self.poll() is not None, timeout_s, f"runner {self.pid} to exit")
        assert self.returncode is not None
        return self.returncode

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def next_notification(self, timeout_s: float) -> bytes:
        """The next sd_notify datagram, waiting at most ``timeout_s``."""
        assert self.notify is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.notify], [], [], 0.05)
            if readable:
                return self.notify.recv(4096)
            if self.poll() is not None:
                raise AssertionError(f"runner exited with {self.returncode}:\n{self.stderr}")
        raise AssertionError(f"no notification within {timeout_s}s:\n{self.stderr}")

    def close(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.wait(10)
        if self.notify is not None:
            self.notify.close()


class Spawner:
    """Starts runners in a short temporary directory and cleans every one of them up."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[RunnerProcess] = []

    def start(
        self,
        *args: str,
        fd3: socket.socket | None = None,
        listen_pid: str = "self",
        names: str = "api",
        wait_ready: bool = True,
    ) -> RunnerProcess:
        """Start ``python -m orchestrator.runner ARGS``.

        Args:
            args: runner arguments (the app spec is added as --app-dir APPS by the caller's choice).
            fd3: a listening socket to place at fd 3 with LISTEN_FDS=1 and LISTEN_FDNAMES=names.
            listen_pid: "self" (the child's pid, set by a shell shim) or a literal value.
            wait_ready: wait for READY=1 on the NOTIFY_SOCKET the spawner provides.
        """
        n = len(self.processes)
        notify_path = self.workdir / f"notify{n}.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
        env["NOTIFY_SOCKET"] = str(notify_path)
        env["PYTHONUNBUFFERED"] = "1"
        argv = [sys.executable, "-m", "orchestrator.runner", *args]
        stderr_path = self.workdir / f"stderr{n}.txt"
        err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, err, 2)]
        dup = None
        try:
            if fd3 is not None:
                source = fd3.fileno()
                if source == 3:  # dup2 onto the same number would keep FD_CLOEXEC set
                    dup = source = os.dup(source)
                actions.append((os.POSIX_SPAWN_DUP2, source, 3))
                env["LISTEN_FDS"] = "1"
                env["LISTEN_FDNAMES"] = names
                if listen_pid == "self":
                    argv = ["/bin/sh", "-c", LISTEN_PID_SHIM, *argv]
                else:
                    env["LISTEN_PID"] = listen_pid
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        finally:
            os.close(err)
            if dup is not None:
                os.close(dup)
        process = RunnerProcess(pid, stderr_path, notify)
        self.processes.append(process)
        if wait_ready:
            assert b"READY=1" == process.next_notification(15)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.close()


def listening_unix_socket(path: Path) -> socket.socket:
    """What the controller does: bind and listen; workers inherit it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(128)
    return sock


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a Unix socket, as the front end talks to a queue."""

    def __init__(self, path: str, timeout: float = 15.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@contextlib.contextmanager
def connection(path: str, timeout: float = 15.0) -> Iterator[UnixHTTPConnection]:
    conn = UnixHTTPConnection(path, timeout)
    try:
        yield conn
    finally:
        conn.close()


def get(path: str, target: str, **headers: str) -> tuple[int, bytes, http.client.HTTPResponse]:
    """One request on a fresh connection."""
    with connection(path) as conn:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), response


def raw_exchange(path: str, data: bytes, timeout_s: float = 10.0) -> bytes:
    """Send raw bytes and read until the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(path)
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)
