"""Facts about this host that the Linux backend adapts to, read once.

Owns: ``HostFacts`` (root or not, ``somaxconn``, the cgroup layout and mount points, the controller's
own cgroups) and ``read_host_facts``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the host offers.

    Attributes:
        root: the controller runs as root (full isolation).
        uid, gid: the controller's identity.
        somaxconn: ``net.core.somaxconn`` (listen backlogs above it are clamped).
        cgroup_v2: the mount point of the v2 hierarchy, or "" (tracking and ``cgroup.kill``).
        pure_v2: the v2 hierarchy has the controllers (no v1 mounts are needed for limits).
        v1: v1 controller name → its mount point (limits on hybrid hosts).
        own: controller name ("" for v2) → the controller's own cgroup path.
    """

    root: bool
    uid: int
    gid: int
    somaxconn: int
    cgroup_v2: str = ""
    pure_v2: bool = False
    v1: dict[str, str] = field(default_factory=dict)
    own: dict[str, str] = field(default_factory=dict)


def _read(path: str, default: str = "") -> str:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return default


def read_host_facts() -> HostFacts:
    """Read the host's facts (a handful of small files)."""
    somaxconn = int(_read("/proc/sys/net/core/somaxconn", "4096") or 4096)
    pure_v2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    v2 = CGROUP_ROOT if pure_v2 else ""
    unified = os.path.join(CGROUP_ROOT, "unified")
    if not v2 and os.path.exists(os.path.join(unified, "cgroup.procs")):
        v2 = unified
    v1: dict[str, str] = {}
    if not pure_v2:
        for name in ("memory", "pids", "cpu"):
            mount = os.path.join(CGROUP_ROOT, name)
            if os.path.exists(os.path.join(mount, "cgroup.procs")):
                v1[name] = mount
    own: dict[str, str] = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            own[""] = path
        for name in controllers.split(","):
            if name in ("memory", "pids", "cpu", "cpu,cpuacct"):
                own[name] = path
        if "cpu" in controllers.split(","):
            own["cpu"] = path
    return HostFacts(
        root=os.geteuid() == 0,
        uid=os.geteuid(),
        gid=os.getegid(),
        somaxconn=somaxconn,
        cgroup_v2=v2,
        pure_v2=pure_v2,
        v1=v1,
        own=own,
    )


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (``PR_SET_CHILD_SUBREAPER``), so that the
    controller reaps double-forked children instead of PID 1. Returns whether it worked."""
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)) == 0
