"""Starting a process in its place: the exec shim, a clean environment and explicit fds.

Owns: ``ProcessSpec``, ``worker_environment`` and ``spawn``. The controller's main thread spawns
(``PR_SET_PDEATHSIG`` follows the thread that forked), through ``_shim.py`` run with the controller's
own interpreter in isolated mode; the shim joins the cgroups, drops privileges and execs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.backends.linux.cgroups import Cgroup
from orchestrator.backends.linux.identity import Identity

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
    """Start the process (it inherits the controller's stderr for its stdout and stderr)."""
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
    }
    return subprocess.Popen(
        [sys.executable, "-I", "-S", SHIM],
        env={"ORCH_SHIM": json.dumps(shim_spec)},
        pass_fds=tuple(spec.fds),
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),
        stderr=sys.stderr.fileno(),
        start_new_session=True,
        close_fds=True,
    )
