"""Worker processes and health probes: the seams the backend starts and checks its workers through.

Owns: ``LaunchSpec`` (what to start), the ``WorkerProcess`` protocol (what the supervisor drives),
``Launcher`` and its default ``launch_process`` (``subprocess.Popen`` in a new process group, wrapped as
``PopenProcess``: CTRL_BREAK/SIGTERM, kill, a pidfd on Linux), and the default HTTP health probe
(``ProbeTarget``, ``http_probe``, run by ``run_on_thread``) that goes through http.sys to a URL routed
to the pool's queue. Also the worker's side of the contract: ``worker_environment`` names its queue
(``ORCHESTRATOR_QUEUE``) and, where names do not work (Wine), the handle it inherits
(``ORCHESTRATOR_QUEUE_HANDLE``), as ``runner.httpsys_source`` reads them. ``PoolLauncher`` is the
shared pool driver's launcher on this backend (``supervise.driver.Launcher``): it starts processes
through the ``Launcher`` seam and finds their exits by polling (or a pidfd where there is one).
Tests replace both seams (``HttpSysBackend(launcher=..., probe=...)``).
Imports the standard library, ``orchestrator.model`` and ``orchestrator.supervise.driver`` only; no
ctypes.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from orchestrator.model.desired import WorkerPool
from orchestrator.supervise.driver import ExitStatus, Inspection, Process, StartDeferred

__all__ = [
    "ENV_QUEUE",
    "ENV_QUEUE_HANDLE",
    "LaunchSpec",
    "Launcher",
    "PoolLauncher",
    "PopenProcess",
    "ProbeFn",
    "ProbeTarget",
    "WorkerProcess",
    "http_probe",
    "launch_process",
    "run_on_thread",
    "worker_environment",
]

#: Queue names in the environment of every worker.
ENV_QUEUE = "ORCHESTRATOR_QUEUE"
ENV_QUEUE_HANDLE = "ORCHESTRATOR_QUEUE_HANDLE"


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What to start: command, environment, directory, and a queue handle the child must inherit."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None = None
    inherit_handle: int | None = None


class WorkerProcess(Protocol):
    """A started worker process, as the supervisor drives it."""

    @property
    def pid(self) -> int:
        """The process id."""
        ...

    def poll(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal, on POSIX), else ``None``."""
        ...

    def terminate(self) -> None:
        """Ask it to stop (Windows: CTRL_BREAK to its process group; POSIX: SIGTERM to its group)."""
        ...

    def kill(self) -> None:
        """Stop it now (Windows: TerminateProcess; POSIX: SIGKILL to its group)."""
        ...

    def exit_fd(self) -> int | None:
        """A descriptor that becomes readable when it exits (Linux pidfd), or ``None`` (poll it)."""
        ...

    def release(self) -> None:
        """Free what watching it needed (after it exited)."""
        ...


Launcher = Callable[[LaunchSpec], WorkerProcess]


class PopenProcess:
    """``WorkerProcess`` over ``subprocess.Popen``."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self._fd: int | None = None
        if sys.platform == "linux":
            with contextlib.suppress(OSError):
                self._fd = os.pidfd_open(popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def terminate(self) -> None:
        if sys.platform == "win32":
            # CTRL_BREAK reaches the child's process group (CREATE_NEW_PROCESS_GROUP) as SIGBREAK.
            with contextlib.suppress(OSError):
                self.popen.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def kill(self) -> None:
        if sys.platform == "win32":
            with contextlib.suppress(OSError):
                self.popen.kill()
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def exit_fd(self) -> int | None:
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def launch_process(spec: LaunchSpec) -> WorkerProcess:
    """Start a worker with ``subprocess.Popen``: its own process group, stdin from the null device.

    On Windows a handle to inherit (Wine) needs ``close_fds=False``, which passes every inheritable
    handle; the controller makes only queue handles inheritable, and only under Wine.

    Raises:
        OSError: the command cannot be started (not found, not executable, bad directory).
    """
    if sys.platform == "win32":
        popen = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            close_fds=spec.inherit_handle is None,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
        )
    else:
        popen = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    return PopenProcess(popen)


class PoolLauncher:
    """The pool driver's launcher on http.sys (``supervise.driver.Launcher``).

    Every process runs as the controller's account (no per-pool identity), so a generation shares
    nothing and its context is ``None``. Exits are found by ``exits``, which the backend's event
    pump calls: Windows has no pidfd, so running processes are polled.

    Args:
        launch: starts one process (``launch_process``, or a test's).
        prepare: what to start for a pool definition, or ``None`` while its queue is being
            re-created (the start is deferred, not counted as a crash).
        user: the account the processes run as (reported by ``status``).
    """

    def __init__(
        self, launch: Launcher, prepare: Callable[[WorkerPool], LaunchSpec | None], user: str
    ) -> None:
        self.launch = launch
        self.prepare = prepare
        self.user = user
        self.running: dict[int, WorkerProcess] = {}

    # -- supervise.driver.Launcher ---------------------------------------------------------------
    def open_generation(self, pool: str, number: int, spec: WorkerPool) -> object:
        return None

    def close_generation(self, context: object) -> None:
        return None

    def start(self, pool: str, context: object, slot: int, spec: WorkerPool) -> Process:
        launch = self.prepare(spec)
        if launch is None:
            raise StartDeferred(f"queue/{spec.queue.name} is being re-created")
        process = self.launch(launch)
        self.running[process.pid] = process
        return process

    def terminate(self, process: Process) -> None:
        running = self.running.get(process.pid)
        if running is not None:
            running.terminate()

    def kill(self, process: Process) -> None:
        running = self.running.get(process.pid)
        if running is not None:
            running.kill()

    def inspect(self, process: Process) -> Inspection | None:
        return None  # no portable view of a Windows process's memory or stop state here

    def who(self, context: object) -> tuple[int | None, str]:
        return None, self.user

    def confinement(self, process: Process) -> dict[str, object] | None:
        return None  # seccomp and Landlock are Linux's; a Job object limits, it does not confine

    # -- exits -----------------------------------------------------------------------------------
    def exit_fds(self) -> tuple[list[int], bool]:
        """Descriptors that become readable when a process exits, and whether some processes have
        none (they must be polled)."""
        fds: list[int] = []
        polled = False
        for process in self.running.values():
            fd = process.exit_fd()
            if fd is None:
                polled = True
            else:
                fds.append(fd)
        return fds, polled

    def exits(self) -> list[tuple[int, ExitStatus]]:
        """The processes that have exited since the last call, with how they ended."""
        ended: list[tuple[int, ExitStatus]] = []
        for pid, process in list(self.running.items()):
            code = process.poll()
            if code is None:
                continue
            del self.running[pid]
            process.release()
            # POSIX (tests, Wine's host side): a negative code is the signal that ended it.
            ended.append(
                (pid, ExitStatus(code=code, signal=None) if code >= 0 else ExitStatus(signal=-code))
            )
        return ended

    def kill_all(self, timeout_s: float, monotonic: Callable[[], float]) -> None:
        """Kill every process and wait (up to ``timeout_s``) for each to end."""
        for process in self.running.values():
            process.kill()
        deadline = monotonic() + timeout_s
        for process in self.running.values():
            while process.poll() is None and monotonic() < deadline:
                time.sleep(0.01)
            process.release()
        self.running.clear()


def worker_environment(spec: WorkerPool, queue: str, handle: int | None) -> dict[str, str]:
    """A worker's environment: the controller's, the pool's ``env``, the name of its queue and, where
    names do not work (Wine), the value of the queue ``handle`` it inherits."""
    env = dict(os.environ)
    env.pop(ENV_QUEUE_HANDLE, None)
    env.update({e.name: e.value for e in spec.env})
    env[ENV_QUEUE] = queue
    if handle is not None:
        env[ENV_QUEUE_HANDLE] = str(handle)
    return env


# --- health probes -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where a pool's health probe goes: through http.sys, to a URL routed to the pool's queue."""

    scheme: str
    connect_host: str
    port: int
    host_header: str
    path: str
    timeout_s: float


ProbeFn = Callable[[ProbeTarget], tuple[bool, str]]


def http_probe(target: ProbeTarget) -> tuple[bool, str]:
    """GET the probe path; 2xx and 3xx are healthy. Never raises."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a local liveness probe, not a trust decision
        conn = http.client.HTTPSConnection(
            target.connect_host, target.port, timeout=target.timeout_s, context=context
        )
    else:
        conn = http.client.HTTPConnection(
            target.connect_host, target.port, timeout=target.timeout_s
        )
    try:
        conn.request(
            "GET", target.path, headers={"Host": target.host_header, "User-Agent": "orchestrator"}
        )
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return False, f"probe failed: {exc or type(exc).__name__}"
    finally:
        conn.close()
    return 200 <= response.status < 400, f"HTTP {response.status}"


def run_on_thread(fn: Callable[[], None]) -> None:
    """Run a probe job on a daemon thread (the backend's default ``run_probe``)."""
    threading.Thread(target=fn, name="httpsys-probe", daemon=True).start()
