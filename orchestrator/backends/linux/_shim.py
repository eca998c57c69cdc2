"""The exec shim: the few steps between fork and exec that put a worker in its place.

Run as ``python -I -S _shim.py`` by the controller with a JSON spec in ``ORCH_SHIM``; it imports only
the standard library so that it starts fast and trusts nothing from the environment. In this order
(notes/linux-isolation.md §1.1): own session, join the cgroups, arrange the fds (queue at 3, close the
rest), rlimits, umask, drop the capability bounding set, setgroups → setresgid → setresuid,
``PR_SET_PDEATHSIG`` after the uid change (then re-check the parent), ``PR_SET_NO_NEW_PRIVS``, check
the ids, set ``LISTEN_PID`` to its own pid, enter the working directory, restrict itself with
Landlock, load the seccomp filter last, report what it applied on the report pipe, and exec.
``preexec_fn`` would run after Python's own uid switch and is unsafe with threads, hence this
program.

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
import stat
import struct
import sys

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
BOOT_FAILURE = 3

# Landlock (linux/landlock.h). The syscall numbers are the same on x86-64 and arm64.
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH, LANDLOCK_RULE_NET_PORT = 1, 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
#: Rights that apply to a file (the rest only to directories: a file rule with them is EINVAL).
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.prctl.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long


def fail(message: str) -> None:
    """Report on stderr and exit with the cannot-boot code."""
    sys.stderr.write(f"orchestrator: {message}\n")
    sys.stderr.flush()
    os._exit(BOOT_FAILURE)


def prctl(option: int, arg: int, arg3: int = 0) -> None:
    """prctl(2), raising OSError on failure."""
    if _libc.prctl(option, arg, arg3, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def arrange_fds(pairs: list[list[int]], keep: int | None = None) -> None:
    """Put each source fd at its target number (3, 4, ...) and close every other fd above 2
    (but ``keep``, the report pipe, moved high beforehand)."""
    # Copy every source above the targets first, so that no dup2 overwrites a source still needed.
    high = [fcntl.fcntl(src, fcntl.F_DUPFD, 256) for src, _ in pairs]
    targets = []
    for (_, dst), src in zip(pairs, high, strict=True):
        os.dup2(src, dst, inheritable=True)
        targets.append(dst)
    first = 3 + len(targets)
    if sorted(targets) != list(range(3, first)):
        fail("queue fds must be contiguous from 3")
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if keep is None:
        os.closerange(first, limit)
    else:
        os.closerange(first, keep)
        os.closerange(keep + 1, limit)


def handled_fs(abi: int) -> int:
    """Every filesystem right the kernel's Landlock ABI knows (all of them are restricted)."""
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def landlock_call(number: int, *args: object) -> int:
    """A Landlock system call, raising OSError on failure."""
    result = int(_libc.syscall(number, *args))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def landlock(spec: dict[str, object], required: bool) -> dict[str, object]:
    """Restrict this process (and what it will exec) to ``spec``'s paths and TCP ports; what
    happened, for the report. Without Landlock, or with too old an ABI for a part of the spec,
    only a ``required`` sandbox stops the process from starting."""
    abi = int(_libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION))
    if abi < 1:
        if required:
            fail("the sandbox is required but this kernel has no Landlock")
        return {"abi": 0, "applied": False, "why": "this kernel has no Landlock"}
    notes: list[str] = []
    fs = handled_fs(abi) if spec.get("filesystem") else 0
    net = 0
    ports = spec.get("connect")
    if isinstance(ports, list):
        if abi >= 4:
            net = NET_CONNECT_TCP
        elif required:
            fail(f"the sandbox is required but Landlock ABI {abi} has no network rules (4 has)")
        else:
            notes.append(f"network.connect not enforced: Landlock ABI {abi} has no TCP rules")
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET if fs and abi >= 6 else 0
    if not (fs or net):
        return {"abi": abi, "applied": False, "why": "; ".join(notes) or "nothing to restrict"}
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    attr = ctypes.create_string_buffer(struct.pack("<QQQ", fs, net, scoped)[:size], size)
    ruleset = landlock_call(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(size), 0)
    read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
    rights = {
        "ro": read,
        "rw": fs,
        "dev": FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV,
    }
    paths = spec.get("paths")
    for path, access in paths if fs and isinstance(paths, list) else []:
        try:
            parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a listed path that does not exist grants nothing
        try:
            allowed = rights[access] & fs
            if not stat.S_ISDIR(os.fstat(parent).st_mode):
                allowed &= FS_FILE_RIGHTS
            rule = ctypes.create_string_buffer(struct.pack("<Qi", allowed, parent), 12)
            landlock_call(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0)
        finally:
            os.close(parent)
    for port in ports if net and isinstance(ports, list) else []:
        rule = ctypes.create_string_buffer(struct.pack("<QQ", NET_CONNECT_TCP, int(port)), 16)
        landlock_call(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_NET_PORT, rule, 0)
    landlock_call(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    os.close(ruleset)
    return {
        "abi": abi,
        "applied": True,
        "filesystem": bool(fs),
        "network": bool(net),
        "why": "; ".join(notes),
    }


def load_seccomp(program: bytes) -> None:
    """Load the filter (``struct sock_fprog`` over the packed instructions)."""
    code = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("<HxxxxxxQ", len(program) // 8, ctypes.addressof(code))
    buffer = ctypes.create_string_buffer(fprog, len(fprog))
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(buffer))


def apply_sandbox(spec: dict[str, object]) -> dict[str, object]:
    """Landlock, then seccomp (last: after it, the shim itself makes no denied call)."""
    required = bool(spec.get("required"))
    report: dict[str, object] = {}
    rules = spec.get("landlock")
    if isinstance(rules, dict):
        try:
            report["landlock"] = landlock(rules, required)
        except OSError as exc:
            if required:
                fail(f"cannot apply the Landlock sandbox: {exc.strerror}")
            report["landlock"] = {"applied": False, "why": f"error: {exc.strerror}"}
    program = spec.get("seccomp")
    if isinstance(program, str):
        try:
            load_seccomp(bytes.fromhex(program))
            report["seccomp"] = "filter"
        except OSError as exc:
            if required:
                fail(f"cannot load the seccomp filter: {exc.strerror}")
            report["seccomp"] = f"error: {exc.strerror}"
    elif required and spec.get("seccomp_wanted"):
        fail("the sandbox is required but no seccomp filter exists for this machine")
    return report


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
    report_fd = spec.get("report_fd")
    if report_fd is not None:  # out of the way of the queue fds, closed by exec
        moved = fcntl.fcntl(int(report_fd), fcntl.F_DUPFD_CLOEXEC, 200)
        os.close(int(report_fd))
        report_fd = moved
    arrange_fds(spec.get("fds", []), report_fd)
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
    sandbox = spec.get("sandbox")
    report = apply_sandbox(sandbox) if isinstance(sandbox, dict) else {}
    if report_fd is not None:
        try:
            os.write(report_fd, json.dumps(report).encode())
        except OSError:
            pass  # the controller stopped listening: the report is only for status
        os.close(report_fd)
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
