"""The exec shim: the few steps between fork and exec that put a worker in its place.

Run as ``python -I -S _shim.py`` by the controller with a JSON spec in ``ORCH_SHIM``; it imports only
the standard library so that it starts fast and trusts nothing from the environment. In this order
(notes/linux-isolation.md §1.1): own session, join the cgroups, arrange the fds (queue at 3, close the
rest), rlimits, umask, drop the capability bounding set, setgroups → setresgid → setresuid,
``PR_SET_PDEATHSIG`` after the uid change (then re-check the parent), ``PR_SET_NO_NEW_PRIVS``, check
the ids, set ``LISTEN_PID`` to its own pid, and exec. ``preexec_fn`` would run after Python's own uid
switch and is unsafe with threads, hence this program.

Exit codes when it cannot exec: 3 (cannot boot: the pool's rapid-fail protection stops it at once).
Must not import anything outside the standard library.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
BOOT_FAILURE = 3

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.prctl.restype = ctypes.c_int


def fail(message: str) -> None:
    """Report on stderr and exit with the cannot-boot code."""
    sys.stderr.write(f"orchestrator: {message}\n")
    sys.stderr.flush()
    os._exit(BOOT_FAILURE)


def prctl(option: int, arg: int) -> None:
    """prctl(2), raising OSError on failure."""
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def arrange_fds(pairs: list[list[int]]) -> None:
    """Put each source fd at its target number (3, 4, ...) and close every other fd above 2."""
    # Copy every source above the targets first, so that no dup2 overwrites a source still needed.
    high = [fcntl.fcntl(src, fcntl.F_DUPFD, 256) for src, _ in pairs]
    targets = []
    for (_, dst), src in zip(pairs, high, strict=True):
        os.dup2(src, dst, inheritable=True)
        targets.append(dst)
    first = 3 + len(targets)
    if sorted(targets) != list(range(3, first)):
        fail("queue fds must be contiguous from 3")
    os.closerange(first, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def main() -> None:
    """Apply the spec and exec."""
    spec = json.loads(os.environ["ORCH_SHIM"])
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader (start_new_session)
    for path in spec.get("cgroup_procs", []):
        try:
            with open(path, "w", encoding="ascii") as fh:
                fh.write("0")
        except OSError as exc:
            fail(f"cannot join cgroup {path}: {exc.strerror}")
    arrange_fds(spec.get("fds", []))
    for name, (soft, hard) in spec.get("rlimits", {}).items():
        try:
            resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (soft, hard))
        except (ValueError, OSError) as exc:
            fail(f"cannot set RLIMIT_{name}: {exc}")
    os.umask(int(spec.get("umask", 0o077)))
    if spec.get("drop"):
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            last = int(fh.read())
        for cap in range(last + 1):
            prctl(PR_CAPBSET_DROP, cap)
        try:
            _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        except OSError:
            pass
        uid, gid = int(spec["uid"]), int(spec["gid"])
        os.setgroups([int(g) for g in spec.get("groups", [])])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
            fail("identity change did not take")
    # PDEATHSIG is cleared by any uid change, so it is set after it; if the controller died in
    # between, the signal would never come: check and leave.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(spec["parent_pid"]):
        os._exit(1)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    env = dict(spec.get("env", {}))
    names = spec.get("listen_names")
    if names:
        env["LISTEN_FDS"] = str(len(names))
        env["LISTEN_FDNAMES"] = ":".join(names)
        env["LISTEN_PID"] = str(os.getpid())
    cwd = spec.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as exc:
        fail(f"cannot enter the working directory {cwd}: {exc.strerror}")
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        fail(f"command not found: {argv[0]} (PATH={env.get('PATH', '')})")
    except PermissionError:
        fail(
            f"permission denied executing {argv[0]}: the program and its interpreter must be "
            "readable and executable by the worker's user"
        )
    except OSError as exc:
        fail(f"cannot execute {argv[0]}: {exc.strerror}")


if __name__ == "__main__":
    main()
