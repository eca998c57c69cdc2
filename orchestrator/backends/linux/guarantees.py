"""What the Linux backend can guarantee on this host, for the controller's "no silent downgrade" rule.

Owns: ``host_guarantees`` (``HostFacts``, the cgroup manager's verdict and the kernel's sandbox
support → ``plan.guarantees.HostGuarantees``). The decision is ``plan.guarantees``'s; this only
reads the host.
"""

from __future__ import annotations

import grp
import os
import pwd

from orchestrator.backends.linux.host import HostFacts
from orchestrator.backends.linux.sandbox import kernel_support
from orchestrator.plan.guarantees import CGROUP_LIMITS, HostGuarantees


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_names(gids: set[int]) -> frozenset[str]:
    names = set()
    for gid in gids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.add(str(gid))
    return frozenset(names)


def _cgroup_limits(host: HostFacts) -> frozenset[str]:
    """The limits a root controller can set: on pure v2 the controllers of the root's
    ``cgroup.controllers``, on hybrid hosts the v1 controllers mounted."""
    if host.pure_v2:
        try:
            with open(os.path.join(host.cgroup_v2, "cgroup.controllers"), encoding="ascii") as fh:
                offered = set(fh.read().split())
        except OSError:
            offered = set()
        return frozenset(c for c in CGROUP_LIMITS if c in offered)
    return frozenset(c for c in CGROUP_LIMITS if c in host.v1)


def host_guarantees(host: HostFacts, cgroups_enabled: bool) -> HostGuarantees:
    """What a controller with ``host``'s facts can give (``cgroups_enabled``: the cgroup
    manager's verdict, ``CgroupManager.enabled``)."""
    user = _user_name(host.uid)
    groups = _group_names({host.gid, *os.getgroups()})
    not_root = "" if host.root else f"the controller is not root: every process runs as {user}"
    if not host.root:
        limits: frozenset[str] = frozenset()
        no_cgroups = "the controller is not root: it cannot create cgroups"
    elif not cgroups_enabled:
        limits = frozenset()
        no_cgroups = "no usable cgroup hierarchy under /sys/fs/cgroup"
    else:
        limits = _cgroup_limits(host)
        no_cgroups = ""
    kernel = kernel_support()
    return HostGuarantees(
        user=user,
        groups=groups,
        no_identities=not_root,
        no_acl_subjects=(
            f"{not_root}, so the broker and the socket modes can admit no other user"
            if not_root
            else ""
        ),
        cgroup_limits=limits,
        no_cgroups=no_cgroups,
        sandboxes=True,
        landlock_abi=kernel.landlock_abi,
        seccomp=kernel.seccomp,
        listener=True,
    )
