"""Starting a process in its place: the exec shim, a clean environment and explicit fds.

Owns: ``ProcessSpec``, ``worker_environment``, ``spawn``, and ``spawn_captured`` with its
``output_pipes`` (stdout and stderr through pipes of the process's own to the controller's
``OutputSink``). The controller's main thread spawns (``PR_SET_PDEATHSIG`` follows the thread that
forked), through ``_shim.py`` run with the controller's own interpreter in isolated mode; the shim
joins the cgroups, drops privileges and execs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from orchestrator.backends.linux.cgroups import Cgroup
from orchestrator.backends.linux.identity import Identity
from orchestrator.backends.output import OutputSink

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_shim.py")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """Everything needed to start one process."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    identity: Identity
    drop: bool  # change identity and drop capabilities (only as root)
    fds: Sequence[int] = ()  # placed at 3, 4, ... in order
    listen_names: Sequence[str] = ()  # LISTEN_FDNAMES; empty: no socket-activation variables
    cgroup: Cgroup | None = None
    rlimits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    umask: int = 0o077
    #: The write ends of its stdout and stderr pipes (``output_pipes``); ``None``: the
    #: controller's own stderr.
    stdout: int | None = None
    stderr: int | None = None
    #: The shim's ``sandbox`` entry (``sandbox.shim_sandbox``); ``None``: no sandbox.
    sandbox: Mapping[str, object] | None = None
    #: The write end of the pipe the shim reports what it applied on (``sandbox.spawn_reporting``).
    report_fd: int | None = None


#: Asked for each output pipe: room for a burst while the controller's reader is busy. The
#: kernel may give less (``fs.pipe-max-size``, the user's pipe quota): best effort.
PIPE_BYTES = 256 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def output_pipes() -> tuple[tuple[int, int], tuple[int, int]]:
    """Two pipes, ``(read, write)`` each, for a process's stdout and stderr: close-on-exec (the
    spawn puts the write ends at 1 and 2 of that process only), sized to ``PIPE_BYTES``."""
    pipes = []
    for _ in range(2):
        read, write = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            fcntl.fcntl(write, F_SETPIPE_SZ, PIPE_BYTES)
        pipes.append((read, write))
    return pipes[0], pipes[1]


def worker_environment(identity: Identity, extra: Mapping[str, str]) -> dict[str, str]:
    """A clean, explicit environment: nothing of the controller's leaks in except its bin directory.

    The directory of the controller's interpreter comes first on ``PATH`` so that ``orchestrator``,
    ``gunicorn`` and ``uvicorn`` from the same virtual environment are found.
    """
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:{SYSTEM_PATH}",
        "HOME": identity.home if identity.home and identity.home != "/nonexistent" else "/",
        "USER": identity.user,
        "LOGNAME": identity.user,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def spawn(spec: ProcessSpec) -> subprocess.Popen[bytes]:
    """Start the process: its stdout and stderr are the spec's pipes, or else the controller's
    stderr."""
    shim_spec = {
        "argv": list(spec.argv),
        "env": dict(spec.env),
        "cwd": spec.cwd,
        "uid": spec.identity.uid,
        "gid": spec.identity.gid,
        "groups": list(spec.identity.groups),
        "drop": spec.drop,
        "fds": [[fd, 3 + i] for i, fd in enumerate(spec.fds)],
        "listen_names": list(spec.listen_names),
        "cgroup_procs": spec.cgroup.procs_files() if spec.cgroup else [],
        "rlimits": {k: list(v) for k, v in spec.rlimits.items()},
        "umask": spec.umask,
        "parent_pid": os.getpid(),
        "sandbox": dict(spec.sandbox) if spec.sandbox is not None else None,
        "report_fd": spec.report_fd,
    }
    extra = () if spec.report_fd is None else (spec.report_fd,)
    return subprocess.Popen(
        [sys.executable, "-I", "-S", SHIM],
        env={"ORCH_SHIM": json.dumps(shim_spec)},
        pass_fds=(*spec.fds, *extra),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno() if spec.stdout is None else spec.stdout,
        stderr=sys.stderr.fileno() if spec.stderr is None else spec.stderr,
        start_new_session=True,
        close_fds=True,
    )


def spawn_captured(
    spec: ProcessSpec, sink: OutputSink | None, pool: str | None
) -> subprocess.Popen[bytes]:
    """``spawn`` with the process's stdout and stderr going to ``sink`` (tagged with ``pool``,
    ``None`` for the listener) through pipes of its own; without a sink, as ``spawn``."""
    if sink is None:
        return spawn(spec)
    (out_read, out_write), (err_read, err_write) = output_pipes()
    try:
        popen = spawn(replace(spec, stdout=out_write, stderr=err_write))
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        # Only the child holds the write ends now: its exit is the pipes' end of file.
        os.close(out_write)
        os.close(err_write)
    sink.attach(pool, popen.pid, "stdout", out_read)
    sink.attach(pool, popen.pid, "stderr", err_read)
    return popen
