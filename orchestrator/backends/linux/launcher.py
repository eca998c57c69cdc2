"""How worker processes start, stop and end on Linux: the launcher the shared pool driver uses.

Owns: ``LinuxLauncher`` (``supervise.driver.Launcher``) and ``LinuxProcess``. A generation shares an
identity and a cgroup (with the pool's limits); each process gets a leaf cgroup below it, the queue
as fd 3, its identity through the exec shim (``spawn``), its stdout and stderr as pipes to the
controller's output sink when there is one (``spawn_captured``), and a pidfd, so its exit is seen at once
(the backend's event pump waits on ``pidfds`` and reaps with ``waitpid``; ``reaped`` decodes the
status, an OOM kill included, and clears what the process leaves behind). Stopping is SIGTERM (and
SIGCONT, for a stopped process); killing takes the whole cgroup and process group. Everything here
runs on the controller's main thread: ``PR_SET_PDEATHSIG`` follows the thread that forked.

Must not import another backend, ``reconcile``, ``controller`` or ``cli``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.backends.linux.cgroups import Cgroup, CgroupManager
from orchestrator.backends.linux.identity import Identity
from orchestrator.backends.linux.sandbox import (
    ShimReport,
    TmpDirs,
    kernel_support,
    observed,
    runtime_paths,
    shim_sandbox,
    spawn_reporting,
)
from orchestrator.backends.linux.spawn import ProcessSpec
from orchestrator.backends.output import OutputSink
from orchestrator.model.desired import WorkerPool
from orchestrator.sandbox.policy import effective
from orchestrator.supervise.driver import ExitStatus, Inspection, Process


@dataclass(slots=True)
class _GenerationContext:
    """What every process of one generation shares."""

    identity: Identity
    cgroup: Cgroup | None
    oom_kills: int = 0  # OOM kills already accounted for
    #: The exec shim's ``sandbox`` entry (``sandbox.shim_sandbox``): the same for each process.
    sandbox: dict[str, object] | None = None


@dataclass(slots=True)
class LinuxProcess:
    """One worker process: its pid, its pidfd and its leaf cgroup."""

    pid: int
    popen: subprocess.Popen[bytes]
    pidfd: int
    cgroup: Cgroup | None
    context: _GenerationContext
    #: What the exec shim applied (read once it is there, by ``inspect``).
    report: ShimReport


class LinuxLauncher:
    """Starts worker processes through the exec shim, in cgroups, as their pool's identity.

    Args:
        cgroups: the controller's cgroup namespace.
        identity_for: the identity a pool runs as (resolved by the backend when it applies it).
        queue_fd: the listening socket of a queue, by name (handed to each process as fd 3).
        environment: a process's environment, from its definition and identity.
        drop: change identity and drop privileges (the controller runs as root).
    """

    def __init__(
        self,
        cgroups: CgroupManager,
        identity_for: Callable[[str], Identity],
        queue_fd: Callable[[str], int],
        environment: Callable[[WorkerPool, Identity], dict[str, str]],
        drop: bool,
        tmp_dirs: TmpDirs,
    ) -> None:
        self.cgroups = cgroups
        self.tmp_dirs = tmp_dirs
        #: ``--allow-degraded``: a required sandbox the kernel cannot apply does not stop a start.
        self.allow_degraded = False
        self.identity_for = identity_for
        self.queue_fd = queue_fd
        self.environment = environment
        self.drop = drop
        self.by_pid: dict[int, LinuxProcess] = {}
        self._leaves = itertools.count(1)
        #: Where the processes' stdout and stderr go (``None``: the controller's stderr).
        self.output: OutputSink | None = None

    # -- supervise.driver.Launcher -----------------------------------------------------------
    def open_generation(self, pool: str, number: int, spec: WorkerPool) -> object:
        cgroup = self.cgroups.create(
            f"{pool}/g{number}",
            memory_bytes=spec.limits.memory_bytes,
            pids=spec.limits.pids,
            cpu=spec.limits.cpu,
        )
        identity = self.identity_for(pool)
        self.tmp_dirs.ensure(pool, identity.uid, identity.gid)
        return _GenerationContext(identity, cgroup, sandbox=self._sandbox(pool, spec, identity))

    def _sandbox(self, pool: str, spec: WorkerPool, identity: Identity) -> dict[str, object]:
        """The shim's sandbox entry for a generation (its runtime paths found once)."""
        env = self.environment(spec, identity)
        wanted = effective(
            spec.sandbox,
            user_auto=spec.user == "auto",
            cwd=spec.cwd,
            tmp_dir=self.tmp_dirs.path(pool),
            runtime=runtime_paths(spec.command, env, spec.cwd),
        )
        out = shim_sandbox(wanted, kernel_support())
        if self.allow_degraded:
            out["required"] = False
        return out

    def close_generation(self, context: object) -> None:
        assert isinstance(context, _GenerationContext)
        if context.cgroup is not None:
            self.cgroups.kill(context.cgroup)
            self.cgroups.remove(context.cgroup)

    def start(self, pool: str, context: object, slot: int, spec: WorkerPool) -> Process:
        assert isinstance(context, _GenerationContext)
        leaf = None
        if context.cgroup is not None:
            leaf = self.cgroups.create(f"{context.cgroup.name}/i{next(self._leaves)}")
        rlimits: dict[str, tuple[int, int]] = {"CORE": (0, 0)}
        if spec.limits.open_files is not None:
            rlimits["NOFILE"] = (spec.limits.open_files, spec.limits.open_files)
        process = ProcessSpec(
            argv=spec.command,
            env=self.environment(spec, context.identity),
            cwd=spec.cwd,
            identity=context.identity,
            drop=self.drop,
            fds=(self.queue_fd(spec.queue.name),),
            listen_names=(spec.queue.name,),
            cgroup=leaf,
            rlimits=rlimits,
            sandbox=context.sandbox,
        )
        try:
            popen, report = spawn_reporting(process, self.output, pool)
        except OSError:
            if leaf is not None:
                self.cgroups.remove(leaf, timeout_s=0.5)
            raise
        started = LinuxProcess(popen.pid, popen, os.pidfd_open(popen.pid), leaf, context, report)
        self.by_pid[popen.pid] = started
        return started

    def terminate(self, process: Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
            os.kill(process.pid, signal.SIGCONT)  # a stopped (hung) process must run to see TERM

    def kill(self, process: Process) -> None:
        assert isinstance(process, LinuxProcess)
        if process.cgroup is not None:
            self.cgroups.kill(process.cgroup)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)

    def inspect(self, process: Process) -> Inspection | None:
        assert isinstance(process, LinuxProcess)
        process.report.read()
        try:
            with open(f"/proc/{process.pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return Inspection(
            stopped=fields[0] == "T", rss_bytes=int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        )

    def confinement(self, process: Process) -> dict[str, object] | None:
        assert isinstance(process, LinuxProcess)
        return observed(process.pid, process.report.read())

    def who(self, context: object) -> tuple[int | None, str]:
        assert isinstance(context, _GenerationContext)
        return context.identity.uid, context.identity.user

    # -- exits (the backend's pump) ----------------------------------------------------------
    def pidfds(self) -> list[int]:
        """Fds that become readable when a process exits (the backend then reaps)."""
        return [p.pidfd for p in self.by_pid.values()]

    def reaped(self, pid: int, status: int) -> ExitStatus | None:
        """A child was reaped with wait status ``status``: how it ended, if it was one of ours
        (``None`` otherwise). Its pidfd is closed and what it left in its cgroup is killed."""
        process = self.by_pid.pop(pid, None)
        if process is None:
            return None
        os.close(process.pidfd)
        process.report.close()
        process.popen.returncode = os.waitstatus_to_exitcode(status)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        oom = False
        context = process.context
        if process.cgroup is not None:
            # The limit sits on the generation's group, so that is where the kernel counts an OOM
            # kill (v1 memory.oom_control); the process's own leaf may count it too (v2).
            kills = process.cgroup.oom_kills() + (
                context.cgroup.oom_kills() if context.cgroup else 0
            )
            oom = sig == signal.SIGKILL and kills > context.oom_kills
            context.oom_kills = kills
            # Leftovers of this process (a double-forked daemon) go with it.
            self.cgroups.kill(process.cgroup)
            self.cgroups.remove(process.cgroup, timeout_s=0.5)
        return ExitStatus(code=code, signal=sig, oom=oom)

    def reap_now(self, process: Process) -> None:
        """Wait for a killed process to end and forget it (the controller is exiting)."""
        assert isinstance(process, LinuxProcess)
        if self.by_pid.pop(process.pid, None) is None:
            return
        process.report.close()
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(process.pid, 0)
            process.popen.returncode = os.waitstatus_to_exitcode(status)
        if process.popen.returncode is None:
            process.popen.returncode = -9  # reaped elsewhere: tell Popen it is gone
        os.close(process.pidfd)
        if process.cgroup is not None:
            self.cgroups.remove(process.cgroup, timeout_s=0.5)
