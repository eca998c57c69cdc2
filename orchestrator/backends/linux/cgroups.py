"""cgroups without systemd: one group per pool generation, limits, kill, and "empty" detection.

Owns: ``CgroupManager`` and ``Cgroup``. On hybrid hosts (v1 controllers, v2 without controllers)
limits go to v1 (``memory`` nested under the controller's own memory cgroup, ``pids``, ``cpu``) and
tracking and ``cgroup.kill`` to v2; on pure-v2 hosts everything is v2. A child joins its groups itself,
before it drops root and execs (see ``_shim``), so everything it forks later is inside. Without root
nothing here is available and pools are tracked by process group instead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from dataclasses import dataclass

from orchestrator.backends.linux.host import HostFacts

CPU_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True)
class Cgroup:
    """The directories of one group: v2 (may be "") and v1 by controller."""

    name: str
    v2: str
    v1: dict[str, str]

    def procs_files(self) -> list[str]:
        """Every ``cgroup.procs`` a process must join (v2 first)."""
        dirs = ([self.v2] if self.v2 else []) + list(self.v1.values())
        return [os.path.join(d, "cgroup.procs") for d in dirs]

    def pids(self) -> list[int]:
        """Processes in the group (from v2 when there, else from any v1 controller)."""
        for directory in [self.v2, *self.v1.values()]:
            if not directory:
                continue
            try:
                with open(os.path.join(directory, "cgroup.procs"), encoding="ascii") as fh:
                    return [int(line) for line in fh if line.strip()]
            except OSError:
                continue
        return []

    def populated(self) -> bool:
        """Whether any process is left (v2 ``cgroup.events``; else the procs list)."""
        if self.v2:
            try:
                with open(os.path.join(self.v2, "cgroup.events"), encoding="ascii") as fh:
                    for line in fh:
                        key, _, value = line.partition(" ")
                        if key == "populated":
                            return value.strip() == "1"
            except OSError:
                pass
        return bool(self.pids())

    def oom_kills(self) -> int:
        """How many OOM kills the group's memory controller counted."""
        candidates = []
        if "memory" in self.v1:
            candidates.append((os.path.join(self.v1["memory"], "memory.oom_control"), "oom_kill"))
        if self.v2:
            candidates.append((os.path.join(self.v2, "memory.events"), "oom_kill"))
        for path, key in candidates:
            try:
                with open(path, encoding="ascii") as fh:
                    for line in fh:
                        name, _, value = line.partition(" ")
                        if name == key:
                            return int(value)
            except OSError:
                continue
        return 0


def namespace_for(run_dir: str) -> str:
    """The top-level cgroup folder of the controller whose run directory is ``run_dir``: one per
    run directory, so controllers side by side (and tests) never share a tree."""
    return "orch-" + hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:8]


class CgroupManager:
    """Creates, limits, kills and removes the groups of one controller."""

    def __init__(self, host: HostFacts, namespace: str) -> None:
        self.host = host
        self.namespace = namespace  # e.g. "orch-1a2b3c" (one per run directory)
        self.enabled = host.root and bool(host.cgroup_v2 or host.v1)

    def _dirs(self, name: str) -> tuple[str, dict[str, str]]:
        rel = os.path.join(self.namespace, name)
        v2 = ""
        if self.host.cgroup_v2:
            base = self.host.own.get("", "/").lstrip("/") if self.host.pure_v2 else ""
            v2 = os.path.join(self.host.cgroup_v2, base, rel)
        v1 = {}
        for controller, mount in self.host.v1.items():
            own = self.host.own.get(controller, "/").lstrip("/") if controller == "memory" else ""
            v1[controller] = os.path.join(mount, own, rel)
        return v2, v1

    def create(
        self,
        name: str,
        *,
        memory_bytes: int | None = None,
        pids: int | None = None,
        cpu: float | None = None,
    ) -> Cgroup | None:
        """Create the group ``name`` (e.g. ``api/g3``) with its limits; ``None`` when unavailable."""
        if not self.enabled:
            return None
        v2, v1 = self._dirs(name)
        for directory in [v2, *v1.values()]:
            if directory:
                os.makedirs(directory, exist_ok=True)
        group = Cgroup(name, v2, v1)
        self._limit(group, memory_bytes, pids, cpu)
        return group

    def _write(self, path: str, value: str) -> bool:
        try:
            with open(path, "w", encoding="ascii") as fh:
                fh.write(value)
        except OSError:
            return False
        return True

    def _limit(
        self, group: Cgroup, memory_bytes: int | None, pids: int | None, cpu: float | None
    ) -> None:
        if self.host.pure_v2:
            if memory_bytes is not None:
                self._write(os.path.join(group.v2, "memory.max"), str(memory_bytes))
                self._write(os.path.join(group.v2, "memory.swap.max"), "0")
            if pids is not None:
                self._write(os.path.join(group.v2, "pids.max"), str(pids))
            if cpu is not None:
                self._write(
                    os.path.join(group.v2, "cpu.max"), f"{int(cpu * CPU_PERIOD_US)} {CPU_PERIOD_US}"
                )
            return
        if memory_bytes is not None and "memory" in group.v1:
            mem = group.v1["memory"]
            self._write(os.path.join(mem, "memory.limit_in_bytes"), str(memory_bytes))
            # Without a swap limit, a hog swaps instead of being OOM-killed inside its group.
            self._write(os.path.join(mem, "memory.memsw.limit_in_bytes"), str(memory_bytes))
        if pids is not None and "pids" in group.v1:
            self._write(os.path.join(group.v1["pids"], "pids.max"), str(pids))
        if cpu is not None and "cpu" in group.v1:
            self._write(os.path.join(group.v1["cpu"], "cpu.cfs_period_us"), str(CPU_PERIOD_US))
            self._write(
                os.path.join(group.v1["cpu"], "cpu.cfs_quota_us"), str(int(cpu * CPU_PERIOD_US))
            )

    def kill(self, group: Cgroup) -> None:
        """Kill every process in the group (``cgroup.kill``, else SIGKILL to each member)."""
        if group.v2 and self._write(os.path.join(group.v2, "cgroup.kill"), "1"):
            return
        for _ in range(10):  # members may fork while we kill; repeat until none is left
            pids = group.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, 9)

    def remove(self, group: Cgroup, timeout_s: float = 2.0) -> bool:
        """Remove the group's directories once it is empty; returns whether it is gone."""
        deadline = time.monotonic() + timeout_s
        while group.populated() and time.monotonic() < deadline:
            time.sleep(0.01)
        gone = True
        for directory in [group.v2, *group.v1.values()]:
            if not directory:
                continue
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    gone = False
        for directory in [group.v2, *group.v1.values()]:
            # Remove empty parents (the pool's folder) left behind, up to the namespace.
            parent = os.path.dirname(directory) if directory else ""
            while parent and os.path.basename(parent) != self.namespace:
                try:
                    os.rmdir(parent)
                except OSError:
                    break
                parent = os.path.dirname(parent)
        return gone

    def namespace_dirs(self) -> list[str]:
        """The controller's top-level folders, one per hierarchy (v2, and each v1 controller)."""
        v2, v1 = self._dirs("")
        return [d.rstrip("/") for d in [v2, *v1.values()] if d]

    def remove_namespace(self, timeout_s: float = 2.0) -> bool:
        """Remove the controller's whole tree, deepest groups first, at shutdown: groups whose
        owner never removed them (the generations of pools still running at shutdown, leaves of a
        process reaped elsewhere) and any process still inside them (killed). Returns whether
        everything is gone."""
        if not self.enabled:
            return True
        v2_top = self._dirs("")[0].rstrip("/")
        gone = True
        for top in self.namespace_dirs():
            if not os.path.isdir(top):
                continue
            # Bottom-up: a cgroup directory can only be removed once it has no child group.
            for directory, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                name = os.path.relpath(directory, top)
                v2, v1 = (directory, {}) if top == v2_top else ("", {"v1": directory})
                group = Cgroup(name, v2, v1)
                if group.pids():
                    self.kill(group)
                    deadline = time.monotonic() + timeout_s
                    while group.pids() and time.monotonic() < deadline:
                        time.sleep(0.01)
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    continue
                except OSError:
                    gone = False
        return gone
