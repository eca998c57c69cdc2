"""Guarantees a manifest asks for that this controller cannot give: the "no silent downgrade" rule.

Owns: ``Guarantee`` (identities, ACL subjects, cgroup limits, sandboxes), ``HostGuarantees`` (what a
backend can give here, reported by ``Backend.guarantees``), ``Dropped`` (one guarantee that would
be dropped: what, on which object, where in the manifest, and why) and ``dropped_guarantees`` (the
decision). A ``required`` dropped guarantee stops ``run`` and refuses a reload unless the controller
was started with ``--allow-degraded``; the others (a sandbox that is not ``required``) are only
warnings. Pure: the host's facts come in as a value; the controller renders and acts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.model.desired import (
    DesiredState,
    FilesystemDefault,
    PrincipalKind,
    RequestQueue,
    Sandbox,
    SeccompMode,
    Session,
    WorkerPool,
)
from orchestrator.model.ids import Key, Kind
from orchestrator.sandbox.policy import LANDLOCK_NET_ABI

#: The dedicated user of a ``user: auto`` pool (``manifest.checks.auto_user``).
AUTO_USER_PREFIX = "orch-"
#: The cgroup limits of a pool (``limits.openFiles`` is an rlimit: always given).
CGROUP_LIMITS = ("memory", "pids", "cpu")


class Guarantee(enum.StrEnum):
    """The kinds of guarantee a manifest can ask for and a host may not give."""

    IDENTITIES = "identities"
    ACL_SUBJECTS = "acl subjects"
    CGROUP_LIMITS = "cgroup limits"
    SANDBOX = "sandbox"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostGuarantees:
    """What a backend can give on this host. A reason string is empty when it can give it.

    ``user`` and ``groups``: the account every process runs as when identities cannot change (the
    invoking user) and the names of its groups. ``sandboxes``: the backend has sandboxes at all
    (a backend without them drops only ``required`` ones; the defaults are not requests there).
    """

    user: str = ""
    groups: frozenset[str] = frozenset()
    #: Why processes cannot run as other users ("": they can).
    no_identities: str = ""
    #: Why a queue ACL cannot name other users and groups ("": it can).
    no_acl_subjects: str = ""
    #: The cgroup limits that can be applied (of ``memory``, ``pids``, ``cpu``).
    cgroup_limits: frozenset[str] = frozenset(CGROUP_LIMITS)
    #: Why the others cannot.
    no_cgroups: str = ""
    sandboxes: bool = True
    #: The kernel's Landlock ABI (0: none).
    landlock_abi: int = 0
    seccomp: bool = False
    #: Whether the backend runs a listener process of its own (``session.listener``).
    listener: bool = True

    def to_json(self) -> dict[str, object]:
        """For ``status``."""
        return {
            "user": self.user,
            "identities": not self.no_identities,
            "acl_subjects": not self.no_acl_subjects,
            "cgroup_limits": sorted(self.cgroup_limits),
            "sandboxes": self.sandboxes,
            "landlock_abi": self.landlock_abi,
            "seccomp": self.seccomp,
        }


#: Everything given (the fake backend's default; a backend that can give it all).
FULL = HostGuarantees(landlock_abi=LANDLOCK_NET_ABI, seccomp=True)


@dataclass(frozen=True, slots=True, order=True)
class Dropped:
    """One guarantee the manifest asks for and this controller cannot give.

    ``path`` is where in the object the request is written (``("limits", "memory")``), for the
    manifest's line; ``asked`` says it in the manifest's words; ``required``: refused unless the
    controller runs with ``--allow-degraded`` (``False``: a warning only).
    """

    key: Key
    guarantee: Guarantee
    path: tuple[str, ...]
    asked: str
    why: str
    required: bool = field(default=True, compare=False)

    @property
    def section(self) -> str:
        """The manifest section the object is in (``workers``, ``queues``, ``session``)."""
        return {Kind.WORKER: "workers", Kind.QUEUE: "queues"}.get(self.key.kind, "session")

    def summary(self) -> str:
        """``worker/hello: cannot guarantee cgroup limits (limits.memory: 256MiB)``."""
        return f"{self.key}: cannot guarantee {self.guarantee} ({self.asked})"

    def to_json(self) -> dict[str, object]:
        """For ``status --json`` and the ``guarantee_dropped`` event."""
        return {
            "guarantee": str(self.guarantee),
            "object": str(self.key),
            "field": ".".join(self.path),
            "asked": self.asked,
            "why": self.why,
            "required": self.required,
        }


def dropped_guarantees(
    desired: DesiredState,
    host: HostGuarantees,
    *,
    exists: Callable[[PrincipalKind, str], bool] | None = None,
) -> list[Dropped]:
    """Every guarantee ``desired`` asks for that ``host`` cannot give, by object address, then
    in ``Guarantee`` order.

    ``exists`` tells whether a user or group is known on the host (``None``: do not ask); a queue
    ACL that names one that is not (and is no ``user: auto`` pool's dedicated user) cannot be
    enforced either.
    """
    pools = [r for r in desired.resources.values() if isinstance(r, WorkerPool)]
    auto_users = {AUTO_USER_PREFIX + p.key.name: p for p in pools if p.user == "auto"}
    out: list[Dropped] = []
    for res in desired.resources.values():
        if isinstance(res, WorkerPool):
            out += _identities(res.key, (), res.user, res.group, res.groups, host)
            out += _limits(res, host)
            out += _sandbox(res.key, ("sandbox",), res.sandbox, res.user == "auto", host)
        elif isinstance(res, RequestQueue):
            out += _acl(res, host, auto_users, exists)
        elif isinstance(res, Session) and host.listener:
            listener = res.listener
            out += _identities(res.key, ("listener",), listener.user, listener.group, (), host)
            out += _sandbox(res.key, ("listener", "sandbox"), listener.sandbox, True, host)
    order = list(Guarantee)
    return sorted(out, key=lambda d: (d.key, order.index(d.guarantee), d.path, d.asked))


def refused(dropped: list[Dropped]) -> list[Dropped]:
    """The dropped guarantees that stop a controller without ``--allow-degraded``."""
    return [d for d in dropped if d.required]


def _identities(
    key: Key,
    base: tuple[str, ...],
    user: str,
    group: str | None,
    groups: tuple[str, ...],
    host: HostGuarantees,
) -> list[Dropped]:
    """``user``/``group``/``groups`` other than the invoking user's own, without identities.
    ``user: auto`` is no request here: without root it means the invoking user, by design."""
    if not host.no_identities:
        return []
    out = []
    if user not in ("auto", host.user):
        out.append(
            Dropped(key, Guarantee.IDENTITIES, (*base, "user"), f"user: {user}", host.no_identities)
        )
    if group is not None and group not in host.groups:
        out.append(
            Dropped(
                key, Guarantee.IDENTITIES, (*base, "group"), f"group: {group}", host.no_identities
            )
        )
    others = [g for g in groups if g not in host.groups]
    if others:
        out.append(
            Dropped(
                key,
                Guarantee.IDENTITIES,
                (*base, "groups"),
                f"groups: [{', '.join(others)}]",
                host.no_identities,
            )
        )
    return out


def _acl(
    queue: RequestQueue,
    host: HostGuarantees,
    auto_users: dict[str, WorkerPool],
    exists: Callable[[PrincipalKind, str], bool] | None,
) -> list[Dropped]:
    out = []
    for principal in queue.acl or ():
        kind, name = principal.kind, principal.name
        if kind not in (PrincipalKind.USER, PrincipalKind.GROUP):
            continue
        own = name == host.user if kind is PrincipalKind.USER else name in host.groups
        pool = auto_users.get(name) if kind is PrincipalKind.USER else None
        why = ""
        if host.no_acl_subjects and not own:
            why = host.no_acl_subjects
            if pool is not None:
                why = (
                    f"{name} is the dedicated user of {pool.key}, made only by a controller "
                    f"running as root; {why}"
                )
        elif exists is not None and pool is None and not own and not exists(kind, name):
            why = f"no {kind} {name} exists on this host: nobody can be admitted as it"
        if why:
            out.append(
                Dropped(queue.key, Guarantee.ACL_SUBJECTS, ("acl",), f"{{{kind}: {name}}}", why)
            )
    return out


def _limits(pool: WorkerPool, host: HostGuarantees) -> list[Dropped]:
    asked = {
        "memory": pool.limits.memory_bytes,
        "pids": pool.limits.pids,
        "cpu": pool.limits.cpu,
    }
    return [
        Dropped(
            pool.key,
            Guarantee.CGROUP_LIMITS,
            ("limits", name),
            f"limits.{name}: {_size(value) if name == 'memory' else _number(value)}",
            host.no_cgroups or f"no usable {name} cgroup controller on this host",
        )
        for name, value in asked.items()
        if value is not None and name not in host.cgroup_limits
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _size(value: float) -> str:
    """Bytes in the manifest's largest exact unit (``268435456`` → ``256MiB``)."""
    number = int(value)
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if number and number % scale == 0:
            return f"{number // scale}{unit}"
    return str(number)


def _sandbox(
    key: Key, base: tuple[str, ...], sandbox: Sandbox, user_auto: bool, host: HostGuarantees
) -> list[Dropped]:
    """The parts of a sandbox the kernel cannot apply. Not ``required``: warnings, and none at all
    on a backend without sandboxes (its defaults are no request)."""
    if not host.sandboxes and not sandbox.required:
        return []
    required = sandbox.required
    out = []

    def drop(path: tuple[str, ...], asked: str, why: str) -> None:
        out.append(Dropped(key, Guarantee.SANDBOX, (*base, *path), asked, why, required))

    if not host.sandboxes:
        drop((), "sandbox: required", "this backend has no sandboxes")
        return out
    if sandbox.seccomp is SeccompMode.DEFAULT and not host.seccomp:
        drop(("seccomp",), "seccomp: default", "this kernel cannot load a seccomp filter")
    default = sandbox.filesystem.default
    restricted = default is FilesystemDefault.DENY if default is not None else user_auto
    if restricted and host.landlock_abi < 1:
        drop(
            ("filesystem",),
            "filesystem.default: deny",
            "this kernel has no Landlock: the filesystem stays open",
        )
    if sandbox.network.connect is not None and host.landlock_abi < LANDLOCK_NET_ABI:
        why = (
            "this kernel has no Landlock"
            if host.landlock_abi < 1
            else f"this kernel's Landlock ABI is {host.landlock_abi}"
        )
        drop(
            ("network", "connect"),
            "network.connect",
            f"{why}; TCP connect rules need ABI {LANDLOCK_NET_ABI}",
        )
    return out
