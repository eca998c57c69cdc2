"""Sandboxes on this host: what the kernel offers, the paths a runtime needs, what was applied.

Owns: ``KernelSupport`` and ``kernel_support`` (the Landlock ABI, from
``landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)``, and whether a seccomp
filter can be built for this machine), ``runtime_paths`` and ``listener_paths`` (the directories an
interpreter and its packages live in, found from the command and its ``#!`` line), ``shim_sandbox``
(the part of the exec shim's spec that asks for the sandbox), and ``observed`` (the sandbox as read
back: ``/proc/PID/status`` for seccomp, the shim's own report for Landlock). The pure decisions are
``orchestrator.sandbox``'s; the system calls that apply them are the shim's (``_shim.py``).
Must not import the controller.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import functools
import glob
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from orchestrator.backends.linux.spawn import SYSTEM_PATH, ProcessSpec, spawn_captured
from orchestrator.backends.output import OutputSink
from orchestrator.model import DesiredState, Kind, Sandbox, Session, WorkerPool
from orchestrator.sandbox import seccomp
from orchestrator.sandbox.policy import LANDLOCK_NET_ABI, Effective, effective

SYS_LANDLOCK_CREATE_RULESET = {"x86_64": 444, "aarch64": 444}
LANDLOCK_CREATE_RULESET_VERSION = 1


@dataclass(frozen=True, slots=True)
class KernelSupport:
    """What this kernel can enforce: the Landlock ABI (0: none) and seccomp filters (with the
    audit architecture the filter is built for, ``None``: cannot)."""

    landlock_abi: int
    seccomp_arch: int | None

    @property
    def seccomp(self) -> bool:
        """A seccomp filter can be loaded."""
        return self.seccomp_arch is not None

    def to_json(self) -> dict[str, object]:
        """For ``status``."""
        return {
            "landlock_abi": self.landlock_abi,
            "landlock_network": self.landlock_abi >= LANDLOCK_NET_ABI,
            "seccomp": self.seccomp,
        }


@functools.cache
def kernel_support() -> KernelSupport:
    """Ask the kernel once (the answer does not change while the controller runs)."""
    machine = platform.machine().lower()
    abi = 0
    number = SYS_LANDLOCK_CREATE_RULESET.get(machine)
    if number is not None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = max(0, int(libc.syscall(number, None, 0, LANDLOCK_CREATE_RULESET_VERSION)))
    arch = seccomp.MACHINES.get(machine)
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            has_seccomp = any(line.startswith("Seccomp:") for line in fh)
    except OSError:
        has_seccomp = False
    return KernelSupport(landlock_abi=abi, seccomp_arch=arch if has_seccomp else None)


def _which(name: str, path: str, cwd: str | None) -> str | None:
    if "/" in name:
        full = name if os.path.isabs(name) else os.path.join(cwd or "/", name)
        return full if os.path.exists(full) else None
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _interpreter(path: str, search: str, cwd: str | None) -> str | None:
    """The program a ``#!`` line names (through ``/usr/bin/env``), or ``None``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env" and len(words) > 1:
        return _which(words[1], search, cwd)
    return words[0]


def _prefix(program: str) -> str:
    """The installation a program belongs to: ``/x`` for ``/x/bin/prog``, its directory
    otherwise."""
    directory = os.path.dirname(program)
    if os.path.basename(directory) == "bin":
        return os.path.dirname(directory)
    return directory


def _venv_extras(prefix: str) -> list[str]:
    """Directories a virtual environment imports from outside itself: absolute lines of its
    ``.pth`` files, and the source trees of editable installs (setuptools' finder maps)."""
    out: list[str] = []
    for site in glob.glob(os.path.join(prefix, "lib", "python*", "site-packages")):
        for pth in glob.glob(os.path.join(site, "*.pth")):
            with (
                contextlib.suppress(OSError, UnicodeDecodeError),
                open(pth, encoding="utf-8") as fh,
            ):
                out += [line.strip() for line in fh if line.startswith("/")]
        for finder in glob.glob(os.path.join(site, "__editable__*finder.py")):
            with (
                contextlib.suppress(OSError, UnicodeDecodeError),
                open(finder, encoding="utf-8") as fh,
            ):
                for line in fh:
                    if line.startswith(("MAPPING", "NAMESPACES")) and "=" in line:
                        with contextlib.suppress(ValueError, SyntaxError):
                            value = ast.literal_eval(line.split("=", 1)[1].strip())
                            for item in value.values() if isinstance(value, dict) else ():
                                out += item if isinstance(item, list) else [item]
    return [p for p in out if isinstance(p, str) and os.path.isdir(p)]


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})


def _commands(argv: Sequence[str]) -> list[str]:
    """The programs a command line runs: its first word; through ``env``, the first word that
    is not an option or an assignment; through ``sh -c SCRIPT``, every word of the script (those
    that are not executable files on ``PATH`` are dropped by the caller), as in
    ``sh -c 'test -e ready && exec gunicorn app:app'``."""
    if not argv:
        return []
    out = [argv[0]]
    base = os.path.basename(argv[0])
    if base == "env":
        out += [w for w in argv[1:] if not w.startswith("-") and "=" not in w][:1]
    elif base in _SHELLS and "-c" in argv[1:-1]:
        script = argv[argv.index("-c", 1) + 1]
        try:
            words = shlex.split(script, comments=True)
        except ValueError:
            words = script.split()
        out += [w for w in words if w and not w.startswith("-") and "=" not in w]
    return out


def runtime_paths(argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> list[str]:
    """The installations a command needs to read: its programs' (``_commands``), and their
    interpreters' (from the ``#!`` line), each under its symlink's name and its real name, plus
    what a virtual environment imports from elsewhere. System directories are left out (the
    policy lists them)."""
    search = env.get("PATH", "")
    programs: list[str] = []
    for name in _commands(argv):
        found = _which(name, search, cwd)
        if found and os.access(found, os.X_OK) and os.path.isfile(found):
            programs.append(found)
            interpreter = _interpreter(found, search, cwd)
            if interpreter:
                programs.append(interpreter)
    out: list[str] = []
    for program in programs:
        for candidate in (program, os.path.realpath(program)):
            prefix = _prefix(candidate)
            out.append(prefix)
            if os.path.exists(os.path.join(prefix, "pyvenv.cfg")):
                out += _venv_extras(prefix)
    return _unique(out)


def listener_paths() -> list[str]:
    """What the listener (this controller's own interpreter, ``-m orchestrator...``) reads: the
    interpreter's installations and every directory on the controller's import path."""
    out = [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    out.append(_prefix(os.path.realpath(sys.executable)))
    out += [p for p in sys.path if p and os.path.isdir(p)]
    # Where the orchestrator package itself is (a source tree, for an editable install).
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out.append(os.path.dirname(package))
    return _unique(p for p in out if not p.endswith(".zip"))


def _unique(paths: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for p in paths:
        if p not in seen:
            seen.append(p)
    return seen


def shim_sandbox(effective: Effective, support: KernelSupport) -> dict[str, object]:
    """The exec shim's ``sandbox`` entry: the filter's bytes and the Landlock rules."""
    out: dict[str, object] = {"required": effective.required}
    if effective.seccomp and support.seccomp_arch is not None:
        out["seccomp"] = seccomp.program(support.seccomp_arch).hex()
    if effective.landlock:
        out["landlock"] = {
            "paths": [[rule.path, rule.access] for rule in effective.paths],
            "filesystem": effective.filesystem,
            "connect": list(effective.connect_ports)
            if effective.connect_ports is not None
            else None,
        }
    return out


_SECCOMP_MODES = {"0": "off", "1": "strict", "2": "filter"}


def observed(pid: int, report: Mapping[str, object] | None) -> dict[str, object]:
    """A process's sandbox as it is: the seccomp mode from ``/proc/PID/status`` and what the
    shim reported of Landlock (``report``, ``None`` when it has not been read)."""
    mode = None
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Seccomp:"):
                mode = _SECCOMP_MODES.get(line.split()[1], line.split()[1])
                break
    landlock = report.get("landlock") if report else None
    return {"seccomp": mode, "landlock": landlock}


def parse_report(data: bytes) -> dict[str, object] | None:
    """What the shim wrote on its report pipe before ``exec`` (``None``: nothing, it failed
    before)."""
    with contextlib.suppress(ValueError):
        value = json.loads(data.decode("utf-8", "replace"))
        if isinstance(value, dict):
            return value
    return None


@dataclass(slots=True)
class ShimReport:
    """What the exec shim applied to one process, as it wrote it on its report pipe (in one
    piece, just before ``exec``): read once, when it is there."""

    fd: int | None
    value: dict[str, object] | None = None

    def read(self) -> dict[str, object] | None:
        """The report, once written (``None`` before, or when the shim failed first: an empty
        end of file)."""
        if self.fd is not None:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return None  # not yet
            except OSError:
                data = b""
            self.value = parse_report(data)
            self.close()
        return self.value

    def close(self) -> None:
        """Close the pipe (read or not)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def spawn_reporting(
    spec: ProcessSpec, sink: OutputSink | None, pool: str | None
) -> tuple[subprocess.Popen[bytes], ShimReport]:
    """``spawn_captured``, with a pipe the shim reports its sandbox on: the write end goes to the
    shim only (close-on-exec there too), the read end is non-blocking."""
    read, write = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(read, False)
    try:
        popen = spawn_captured(replace(spec, report_fd=write), sink, pool)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return popen, ShimReport(read)


class TmpDirs:
    """Each pool's private ``TMPDIR``: ``<runDir>/tmp/POOL``, 0700 and owned by the pool's user
    (as root), read-write in its sandbox; removed when the pool is deleted or the controller
    stops (like systemd's ``PrivateTmp``, nothing in it outlives the pool)."""

    def __init__(self, root: str, as_root: bool) -> None:
        self.root = root
        self.as_root = as_root

    def path(self, pool: str) -> str:
        """Where pool ``pool``'s tmp dir is."""
        return os.path.join(self.root, pool)

    def ensure(self, pool: str, uid: int, gid: int) -> str:
        """Create it (again, empty, when another user owns it: a new identity starts clean)."""
        # 0711: a worker reaches its own directory, and cannot list the others'.
        os.makedirs(self.root, mode=0o711 if self.as_root else 0o700, exist_ok=True)
        path = self.path(pool)
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(path)
            if (self.as_root and (st.st_uid, st.st_gid) != (uid, gid)) or not os.path.isdir(path):
                self.remove(pool)
        os.makedirs(path, mode=0o700, exist_ok=True)
        if self.as_root:
            os.chown(path, uid, gid)
        os.chmod(path, 0o700)
        return path

    def remove(self, pool: str) -> None:
        """Delete it and what is in it (never following a link out of it)."""
        path = self.path(pool)
        if os.path.islink(path):
            os.unlink(path)
            return
        shutil.rmtree(path, ignore_errors=True)

    def remove_all(self) -> None:
        """Delete every pool's tmp dir (the controller is stopping)."""
        shutil.rmtree(self.root, ignore_errors=True)


def listener_sandbox(sandbox: Sandbox, allow_degraded: bool) -> dict[str, object]:
    """The shim's sandbox entry for listener processes: filesystem ``deny`` unless the manifest
    says otherwise, and the controller's own interpreter and import path its runtime."""
    wanted = effective(sandbox, user_auto=True, cwd=None, tmp_dir=None, runtime=listener_paths())
    out = shim_sandbox(wanted, kernel_support())
    if allow_degraded:
        out["required"] = False
    return out


def explain(desired: DesiredState, run_dir: str) -> dict[str, object]:
    """``validate --explain``: the kernel's support and the effective sandbox of the listener and
    of each pool, with the runtime paths found on this host (as a start here would find them)."""
    support = kernel_support()
    out: dict[str, object] = {"kernel": support.to_json()}
    sessions = [r for r in desired.of_kind(Kind.SESSION) if isinstance(r, Session)]
    if sessions:
        out["listener"] = effective(
            sessions[0].listener.sandbox,
            user_auto=True,
            cwd=None,
            tmp_dir=None,
            runtime=listener_paths(),
        ).to_json()
    pools: dict[str, object] = {}
    default_path = f"{os.path.dirname(sys.executable)}:{SYSTEM_PATH}"
    for pool in desired.of_kind(Kind.WORKER):
        assert isinstance(pool, WorkerPool)
        env = {"PATH": default_path, **{e.name: e.value for e in pool.env}}
        pools[pool.key.name] = effective(
            pool.sandbox,
            user_auto=pool.user == "auto",
            cwd=pool.cwd,
            tmp_dir=os.path.join(run_dir, "tmp", pool.key.name),
            runtime=runtime_paths(pool.command, env, pool.cwd),
        ).to_json()
    out["workers"] = pools
    return out
