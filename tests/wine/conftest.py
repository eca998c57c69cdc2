"""Fixtures of the Wine tier: a prepared Wine prefix, Windows python.exe runs, and an HTTP client.

``wine_env`` (session) runs ``scripts/wine-setup.sh`` (idempotent: installs nothing when Wine and the
cache are there) and ends with ``wineserver -k``. ``windows_python`` starts scenario scripts under
Wine through ``boot.py``, always with stdout as a PIPE (python.exe dies on a regular file) and reads
their JSON lines with timeouts. ``http_request`` is the Linux-side client: 127.0.0.1, a Host header
with the port (a port-less Host crashes Wine's http.sys), and a timeout on every call (unmatched
requests hang under Wine; a timeout is this tier's "no route").
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.wine.evidence import accept_stalled

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SETUP_TIMEOUT_S = 600  # first run installs Wine (about 16 s) and boots a prefix (about 9 s)
DEFAULT_TIMEOUT_S = 30.0


def to_wine_path(path: Path) -> str:
    """Linux ``/x/y`` is ``Z:\\x\\y`` inside Wine."""
    return "Z:" + str(path).replace("/", "\\")


@dataclass(frozen=True)
class WineEnv:
    """Where the Windows interpreter is and the environment to run Wine with."""

    python_exe: Path
    prefix: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def wine_env() -> Iterator[WineEnv]:
    """Prepare Wine once per session; kill the prefix's wineserver at the end."""
    env = dict(os.environ)
    env.setdefault("ORCH_WINE_CACHE", "/var/cache/orchestrator-wine")
    env["WINEDEBUG"] = "-all"
    env.pop("DISPLAY", None)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "wine-setup.sh")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/wine-setup.sh failed:\n{result.stdout}\n{result.stderr}")
    paths = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    env["WINEPREFIX"] = paths["WINEPREFIX"]
    _start_wineserver(env)
    print(f"wine setup took {time.monotonic() - started:.1f}s")
    yield WineEnv(Path(paths["ORCH_WINE_PYTHON"]), Path(paths["WINEPREFIX"]), env)
    subprocess.run(["wineserver", "-k"], env=env, check=False, timeout=60, stdin=subprocess.DEVNULL)


def _start_wineserver(env: dict[str, str]) -> None:
    """Start the wineserver (kept until the end) and the prefix's services (http.sys among them)
    from here, with null stdio: started by the first scenario instead, they would hold its stdout
    pipe open after it."""
    for argv in (["wineserver", "-p"], ["wine", "cmd", "/c", "exit", "0"]):
        subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=60,
        )


@dataclass
class WindowsProcess:
    """A python.exe under Wine whose stdout is read as JSON lines by a background thread."""

    proc: subprocess.Popen[str]
    reader: threading.Thread | None = None
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    events: list[dict[str, object]] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)

    def start_reader(self) -> None:
        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)

        self.reader = threading.Thread(target=pump, daemon=True)
        self.reader.start()

    def close(self) -> None:
        """Kill the process group and every process still holding our stdout pipe, then release
        the pipes.

        Workers the backend starts with ``CREATE_NEW_PROCESS_GROUP`` get their own session under
        Wine (its process spawn calls ``setsid``), so ``killpg`` misses them; they inherit the
        scenario's stdout, so the reader would never see EOF. Closing the pipe under a reader
        blocked in ``read`` waits for the buffer's lock in C, where no signal reaches it and
        pytest-timeout cannot end the test: the reader must have ended first.
        """
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        killed: set[int] = set()
        if self.reader is not None and self.proc.stdout is not None and not self.proc.stdout.closed:
            inode = os.fstat(self.proc.stdout.fileno()).st_ino
            for _ in range(10):
                # The wineserver holds a copy of every handle's fd until the process owning the
                # handle dies: it is left alone (the session's other tests need it).
                for pid in set(_pipe_holders(inode)) - killed:
                    if _comm(pid).startswith("wineserver"):
                        continue
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                self.reader.join(1)
                if not self.reader.is_alive():
                    break
            else:
                # Leave the pipe open (the daemon thread dies with the session) rather than block.
                raise RuntimeError(f"stdout of {self.proc.args} still open; killed {killed}")
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def next_event(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, object] | None:
        """The next JSON event (``None`` at end of output); other lines are kept as noise."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no event within {timeout}s; output so far: {self.transcript()}"
                )
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                return None
            try:
                event = json.loads(line)
            except ValueError:
                self.noise.append(line)
                continue
            self.events.append(event)
            if event.get("event") == "error":
                raise AssertionError(f"Windows side failed:\n{event.get('traceback')}")
            return event

    def expect(self, *names: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, object]:
        """Read events until one named as one of ``names`` arrives."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                raise AssertionError(f"output ended before {names!r}: {self.transcript()}")
            if event["event"] in names:
                return event

    def send(self, command: str) -> None:
        """Write one command line to the script's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = DEFAULT_TIMEOUT_S) -> int:
        """Close stdin, read the remaining events and wait for the exit code."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        while self.next_event(timeout) is not None:
            pass
        return self.proc.wait(timeout)

    def transcript(self) -> str:
        return json.dumps({"events": self.events, "noise": self.noise[-40:]}, indent=1)


def _comm(pid: int) -> str:
    """The process's name, or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pipe_holders(inode: int) -> list[int]:
    """Processes other than this one with an fd on the pipe ``inode`` (read from ``/proc``)."""
    target = f"pipe:[{inode}]"
    holders = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                holders.append(int(proc.name))
    return holders


@pytest.fixture
def windows_python(wine_env: WineEnv) -> Iterator[Callable[..., WindowsProcess]]:
    """Start ``tests/wine/scenarios/NAME.py ARGS...`` under Wine; kill leftovers at teardown."""
    started: list[WindowsProcess] = []

    def start(name: str, *args: object) -> WindowsProcess:
        script = HERE / "scenarios" / f"{name}.py"
        proc = subprocess.Popen(
            [
                "wine",
                str(wine_env.python_exe),
                to_wine_path(HERE / "boot.py"),
                to_wine_path(REPO),
                to_wine_path(script),
                *map(str, args),
            ],
            env=wine_env.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # never a file: python.exe dies with WinError 6 on one
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        process = WindowsProcess(proc)
        process.start_reader()
        started.append(process)
        return process

    yield start
    # A scenario still running, or one that gave up on a stuck http.sys call (exit code 3), may
    # have left Wine's http.sys driver unable to answer: the next test gets a fresh wineserver.
    wedged = any(p.proc.poll() in (None, 3) for p in started)
    for process in started:
        process.close()
    if wedged:
        subprocess.run(
            ["wineserver", "-k"],
            env=wine_env.env,
            check=False,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        _start_wineserver(wine_env.env)


def _free_port() -> int:
    # Wine's http.sys binds 0.0.0.0, so probe that; a high port keeps clear of services.
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", 0))
            port = int(sock.getsockname()[1])
        if port >= 20000:
            return port
    raise RuntimeError("no free high port")


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a fresh high TCP port per call."""
    return _free_port


@dataclass(frozen=True)
class Reply:
    """What the Linux-side client saw: a response, or a timeout (Wine's "no route")."""

    status: int | None
    reason: str
    headers: dict[str, str]
    body: bytes
    #: Every header line as received, repeats included (``headers`` keeps the last of each name).
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def timed_out(self) -> bool:
        return self.status is None

    def json(self) -> dict[str, object]:
        return dict(json.loads(self.body))


def _request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    host: str | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Host": f"{host or '127.0.0.1'}:{port}"}  # always with the port (see module doc)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        fields = tuple(response.getheaders())
        return Reply(response.status, response.reason, dict(fields), response.read(), fields)
    except TimeoutError:
        stalled = accept_stalled(port)
        if stalled:
            # Not a fault of the code under test: Wine's driver no longer accepts on this port
            # (tests/wine/evidence.py), and nothing on the Windows side can wake it.
            pytest.xfail(f"Wine's http.sys stopped accepting connections: {stalled}")
        return Reply(None, "", {}, b"")
    finally:
        conn.close()


@pytest.fixture
def http_request() -> Callable[..., Reply]:
    """``http_request(port, path, method=, host=, body=, timeout=)`` from Linux, on 127.0.0.1."""
    return _request
