"""The effective sandbox of a worker pool or of the listener: the manifest's settings, defaults
resolved and the runtime's needs added.

Owns: ``LANDLOCK_NET_ABI``, ``SYSTEM_READ_ONLY`` and ``DEVICES`` (what every restricted process may
read or use), ``Rule``, ``Effective``, ``effective`` and ``connect_port``. Rules are symbolic
(``ro``: read and execute; ``rw``: also write, create and remove; ``dev``: read and write a device
file); the exec shim turns them into Landlock access rights for the ABI the kernel has. The
directories of a process's interpreter and packages are found by the caller (they need the
filesystem) and passed in as ``runtime``. Pure: must not import ``os``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.model import FilesystemDefault, Sandbox, SeccompMode

#: Landlock's TCP rules (``network.connect``) came with ABI 4 (Linux 6.7).
LANDLOCK_NET_ABI = 4
#: Read-only for every process whose filesystem default is ``deny``: the system's programs and
#: libraries (the interpreter's own prefix on a distribution Python), and ``/etc`` for the name
#: service, time zones and TLS roots. The rest of the tree (``/home``, ``/srv``, ``/opt``,
#: ``/var``, ``/tmp``, other apps' directories) is closed unless listed.
SYSTEM_READ_ONLY: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
#: Device files a runtime uses; ``/proc/self`` (its own process's entries) read-only.
DEVICES: tuple[tuple[str, str], ...] = (
    ("/dev/null", "dev"),
    ("/dev/zero", "ro"),
    ("/dev/urandom", "ro"),
    ("/dev/random", "ro"),
    ("/proc/self", "ro"),
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A path a restricted process may reach, with ``access`` ``ro``, ``rw`` or ``dev``, and why
    (``validate --explain`` says it)."""

    path: str
    access: str
    why: str


@dataclass(frozen=True, slots=True)
class Effective:
    """The sandbox to apply.

    ``filesystem``: Landlock restricts the filesystem to ``paths``; ``connect_ports``: the TCP
    ports it may connect to (``None``: any; Landlock rules are per port, not per host).
    """

    seccomp: bool
    filesystem: bool
    paths: tuple[Rule, ...]
    connect: tuple[str, ...] | None
    connect_ports: tuple[int, ...] | None
    required: bool

    @property
    def landlock(self) -> bool:
        """Landlock has something to enforce."""
        return self.filesystem or self.connect_ports is not None

    def to_json(self) -> dict[str, object]:
        """For ``validate --explain --json`` and ``status``."""
        return {
            "seccomp": "default" if self.seccomp else "off",
            "filesystem": {
                "default": "deny" if self.filesystem else "allow",
                "paths": [{"path": r.path, "access": r.access, "why": r.why} for r in self.paths],
            },
            "network": {"connect": list(self.connect) if self.connect is not None else None},
            "required": self.required,
        }


def connect_port(address: str) -> int | None:
    """The port of ``host:port`` (``[v6]:port`` too), or ``None`` when it has none or it is not
    a number from 1 to 65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    value = int(port)
    return value if 1 <= value <= 65535 else None


def default_denies(sandbox: Sandbox, *, user_auto: bool) -> bool:
    """Whether the filesystem is restricted: as written, else deny for ``user: auto`` pools and
    the listener (pass ``user_auto=True`` for it), allow for named users."""
    if sandbox.filesystem.default is not None:
        return sandbox.filesystem.default is FilesystemDefault.DENY
    return user_auto


def effective(
    sandbox: Sandbox,
    *,
    user_auto: bool,
    cwd: str | None,
    tmp_dir: str | None,
    runtime: Iterable[str] = (),
) -> Effective:
    """The sandbox of one process: ``cwd`` is read-only (unless it is ``/``, which would open
    everything), ``tmp_dir`` (the pool's own ``TMPDIR``) is read-write, ``runtime`` (the
    interpreter's and packages' directories) read-only, then the manifest's lists."""
    restricted = default_denies(sandbox, user_auto=user_auto)
    rules: list[Rule] = []
    if restricted:
        rules += [Rule(p, "ro", "system") for p in SYSTEM_READ_ONLY]
        rules += [Rule(p, access, "runtime") for p, access in DEVICES]
        rules += [Rule(p, "ro", "interpreter and packages") for p in runtime]
        if cwd and cwd.rstrip("/"):
            rules.append(Rule(cwd, "ro", "working directory"))
        if tmp_dir:
            rules.append(Rule(tmp_dir, "rw", "private tmp dir (TMPDIR)"))
        rules += [Rule(p, "ro", "filesystem.readOnly") for p in sandbox.filesystem.read_only]
        rules += [Rule(p, "rw", "filesystem.readWrite") for p in sandbox.filesystem.read_write]
    connect = sandbox.network.connect
    ports = None
    if connect is not None:
        ports = tuple(sorted({p for p in (connect_port(a) for a in connect) if p is not None}))
    return Effective(
        seccomp=sandbox.seccomp is SeccompMode.DEFAULT,
        filesystem=restricted,
        paths=_dedupe(rules),
        connect=connect,
        connect_ports=ports,
        required=sandbox.required,
    )


def _dedupe(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """One rule per path, ``rw`` winning over ``ro``, and no ``ro`` rule below a directory that
    already grants as much (Landlock adds the rights of every rule above a file, so the rules
    left out change nothing; they only made ``--explain`` longer)."""
    by_path: dict[str, Rule] = {}
    for rule in rules:
        path = rule.path.rstrip("/") or "/"
        old = by_path.get(path)
        if old is None or (old.access == "ro" and rule.access != "ro"):
            by_path[path] = Rule(path, rule.access, rule.why)

    def covered(rule: Rule) -> bool:
        return rule.access in ("ro", "rw") and any(
            other.path != rule.path
            and (rule.path + "/").startswith(other.path.rstrip("/") + "/")
            and (other.access == "rw" or rule.access == other.access)
            for other in by_path.values()
        )

    return tuple(r for r in by_path.values() if not covered(r))
