"""Semantic checks that JSON Schema cannot express, all reported together.

Owns: cross-references (queues named by URL groups and pools exist), the http.sys URL prefix grammar,
duplicate prefixes after canonicalisation, TLS coverage of https prefixes, ACLs that refuse their own
pool, the ``user: root`` guard, the dashboard's address and auth, the host checks (users and groups,
TLS files, the dashboard's auth file, a pool's ``cwd`` and ``command[0]``: what ``nginx -t`` would
catch), and ``Gaps``: what the schema errors left out, so that no check reports what only follows
from an object that was dropped.
Must not import the loader or the schema module; reads the host only through ``Identities``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.errors import Diagnostic, Location, Severity
from orchestrator.manifest.identities import Identities
from orchestrator.model.desired import (
    Backend,
    PrincipalKind,
    RequestQueue,
    Resource,
    Sandbox,
    Session,
    State,
    UrlGroup,
    WorkerPool,
)
from orchestrator.model.ids import Key, Kind
from orchestrator.model.urlprefix import UrlPrefix, UrlPrefixError, parse_prefix
from orchestrator.sandbox.policy import connect_port, default_denies

Where = Callable[..., Location]

#: useradd refuses longer names.
USER_NAME_MAX = 32
AUTO_USER_PREFIX = "orch-"


def auto_user(pool: str) -> str:
    """The dedicated user created for ``user: auto`` pools (as root)."""
    return AUTO_USER_PREFIX + pool


@dataclass(frozen=True, slots=True)
class Gaps:
    """What the checked resources lack because of earlier errors (schema, YAML), so that checks
    skip what would only follow from them rather than report a second, false error.

    ``dropped`` holds ``(section, name)`` of every object that failed; ``queues_wanted`` the queues
    the dropped URL groups and pools named (``None``: one of them named none readable, so it may
    have named any); ``unreadable``: some file, section or name could not be read at all, so any
    name may be missing; ``session``: the session failed or may be in what could not be read.
    """

    dropped: frozenset[tuple[str, str]] = frozenset()
    queues_wanted: frozenset[str] | None = frozenset()
    unreadable: bool = False
    session: bool = False

    def may_define(self, section: str, name: str) -> bool:
        """Whether ``section.name`` may exist in what was dropped or could not be read."""
        return self.unreadable or (section, name) in self.dropped

    def may_use(self, queue: str) -> bool:
        """Whether something dropped or unread may route to or serve ``queue``."""
        return self.unreadable or self.queues_wanted is None or queue in self.queues_wanted


def _mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def check(
    resources: Mapping[Key, Resource],
    raw: Mapping[str, object],
    where: Where,
    *,
    identities: Identities | None = None,
    strict_identities: bool = False,
    gaps: Gaps | None = None,
) -> list[Diagnostic]:
    """Return every semantic problem.

    Args:
        resources: the built resources.
        raw: the merged manifest data as written (for list positions and error text).
        where: ``where(section, name, *path)`` → the location of that manifest path.
        identities: the host's users, groups, files and commands; ``None`` skips the host checks.
        strict_identities: host problems are errors (``apply``/``run``), else warnings.
        gaps: what earlier errors dropped; checks that could only fail because of it are skipped.
    """
    gaps = gaps or Gaps()
    out: list[Diagnostic] = []
    queues = {k.name: r for k, r in resources.items() if isinstance(r, RequestQueue)}
    groups = {k.name: r for k, r in resources.items() if isinstance(r, UrlGroup)}
    pools = {k.name: r for k, r in resources.items() if isinstance(r, WorkerPool)}
    session = next((r for r in resources.values() if isinstance(r, Session)), None)
    queue_names = sorted(queues)

    def err(summary: str, loc: Location, detail: str = "") -> None:
        out.append(Diagnostic(summary, detail, loc))

    # references
    for name, g in groups.items():
        if g.queue and g.queue.name not in queues and not gaps.may_define("queues", g.queue.name):
            err(
                f'unknown queue "{g.queue.name}"{_mean(g.queue.name, queue_names)}',
                where("urlGroups", name, "queue"),
                f"Define it under queues, or route the group to one of: {', '.join(queue_names)}"
                if queue_names
                else "Define it under queues.",
            )
    for name, p in pools.items():
        if p.queue.name not in queues and not gaps.may_define("queues", p.queue.name):
            err(
                f'unknown queue "{p.queue.name}"{_mean(p.queue.name, queue_names)}',
                where("workers", name, "queue"),
                "Define it under queues.",
            )

    # URL prefixes: grammar, duplicates, TLS
    seen: dict[UrlPrefix, tuple[str, Location]] = {}
    schemes_by_port: dict[int, tuple[str, Location]] = {}
    for name in groups:
        for i, raw_url in enumerate(_raw_list(raw, "urlGroups", name, "urls")):
            loc = where("urlGroups", name, "urls", i)
            try:
                prefix = parse_prefix(str(raw_url))
            except UrlPrefixError as exc:
                err(f'invalid URL prefix "{raw_url}": {exc}', loc)
                continue
            if (
                prefix.port == 0
                and session is not None
                and not gaps.session
                and session.backend is Backend.HTTPSYS
            ):
                err(
                    f'URL prefix "{raw_url}" asks for port 0, which http.sys cannot bind',
                    loc,
                    "Port 0 (any free port, reported by status) is for the linux backend. "
                    "Name a port from 1 to 65535.",
                )
            if prefix in seen:
                owner, first = seen[prefix]
                if owner == name:
                    err(
                        f'URL prefix "{raw_url}" is listed twice in urlGroups.{name}',
                        loc,
                        f"It is the same as the one at {first} (host and path compare "
                        "case-insensitively).",
                    )
                else:
                    err(
                        f'URL prefix "{prefix}" is already registered by urlGroups.{owner}',
                        loc,
                        f"First registered at {first} (host and path compare case-insensitively). "
                        "A prefix may belong to one URL group only.",
                    )
                continue
            seen[prefix] = (name, loc)
            # Port 0 is not one port: each scheme's address gets a free port of its own.
            other = schemes_by_port.setdefault(prefix.port, (prefix.scheme, loc))
            if other[0] != prefix.scheme and prefix.port != 0:
                err(
                    f"port {prefix.port} is used for both http and https",
                    loc,
                    f"The {other[0]} prefix is at {other[1]}. Use a separate port for each scheme.",
                )
            if prefix.scheme == "https" and not gaps.session and not _tls_covers(session, prefix):
                err(
                    f'https prefix "{prefix}" has no TLS certificate for port {prefix.port}',
                    loc,
                    f"Add session.tls: [{{address: '0.0.0.0:{prefix.port}', certFile: ..., "
                    "keyFile: ...}].",
                )
    if session is not None:
        addresses: dict[str, Location] = {}
        for i, item in enumerate(_raw_list(raw.get("session") or {}, "tls")):
            address = str(item.get("address", "")).lower() if isinstance(item, dict) else ""
            loc = where("session", None, "tls", i, "address")
            _check_port(address, loc, err)
            if address in addresses:
                err(
                    f'TLS address "{address}" is bound twice',
                    loc,
                    f"It is already bound at {addresses[address]}.",
                )
            addresses.setdefault(address, loc)
        if session.metrics.address:
            loc = where("session", None, "metrics", "address")
            _check_port(session.metrics.address, loc, err)
            _, _, port = session.metrics.address.rpartition(":")
            if port.isdigit() and int(port) != 0 and int(port) in schemes_by_port:
                err(f"metrics port {port} is also used by a URL prefix", loc)
        _check_dashboard(session, schemes_by_port, where, err)

    # sandboxes
    backend = session.backend if session and not gaps.session else Backend.AUTO
    boxes: list[tuple[str, str | None, Sandbox, bool]] = [
        ("workers", name, p.sandbox, p.user == "auto") for name, p in pools.items()
    ]
    if session is not None and not gaps.session:
        boxes.append(("session", None, session.listener.sandbox, True))
    for box_section, box_name, box, user_auto in boxes:
        out += _sandbox_checks(box_section, box_name, box, user_auto, backend, where)

    # queues nobody serves
    served = {p.queue.name for p in pools.values()}
    routed: dict[str, str] = {}
    for name, g in groups.items():
        if g.queue:
            routed.setdefault(g.queue.name, name)
    for qname, queue in queues.items():
        if gaps.may_use(qname):
            continue
        # A disabled queue answers 503 by itself (a site taken offline): it needs no pool.
        if qname in routed and qname not in served and queue.state is not State.DISABLED:
            err(
                f'queue "{qname}" receives requests from urlGroups.{routed[qname]} but no worker '
                "pool serves it",
                where("queues", qname),
                "Add a pool under workers with this queue, route the group elsewhere, or set the"
                " queue's state to disabled to answer 503.",
            )
        elif qname not in routed and qname not in served:
            out.append(
                Diagnostic(
                    f'queue "{qname}" is not used by any URL group or worker pool',
                    location=where("queues", qname),
                    severity=Severity.WARNING,
                )
            )

    # identities
    backend = session.backend if session and not gaps.session else Backend.AUTO
    for name, p in pools.items():
        user = auto_user(name) if p.user == "auto" else p.user
        if p.user == "auto" and len(user) > USER_NAME_MAX:
            err(
                f'pool name "{name}" is too long for a dedicated user ("{user}" has more than '
                f"{USER_NAME_MAX} characters)",
                where("workers", name),
                f"Use a pool name of at most {USER_NAME_MAX - len(AUTO_USER_PREFIX)} characters, "
                "or name an existing user.",
            )
        if p.user == "root" and not p.allow_root:
            err(
                "workers may not run as root; set allowRoot: true to allow it",
                where("workers", name, "user"),
                "A root worker defeats process isolation: a compromise of the app owns the host.",
            )
        q = queues.get(p.queue.name)
        if q is not None and q.acl is not None and not _acl_allows(q, user, p, identities):
            err(
                f'queue "{q.key.name}" ACL does not allow pool "{name}" (runs as "{user}")',
                where("workers", name, "queue"),
                f"Add {{user: {user}}} to queues.{q.key.name}.acl.",
            )
    for qname in queues:
        for i, item in enumerate(_raw_list(raw, "queues", qname, "acl")):
            kind = next(iter(item)) if isinstance(item, dict) and item else ""
            if kind in ("sid", "account") and backend is Backend.LINUX:
                err(
                    f"{kind} principals apply to the httpsys backend only",
                    where("queues", qname, "acl", i),
                    "Name a user or group for the linux backend.",
                )

    if identities is not None:
        out.extend(_identity_checks(resources, raw, where, identities, strict_identities, gaps))
        out.extend(_file_checks(resources, raw, where, identities, strict_identities, backend))
    return out


def _raw_list(raw: object, *path: str) -> list[object]:
    """The list at ``path`` in the data as written ([] when it is not there)."""
    node = raw
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, list) else []


def _raw_dict(raw: object, *path: str) -> Mapping[str, object]:
    """The mapping at ``path`` in the data as written ({} when it is not there)."""
    node = raw
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _check_port(address: str, loc: Location, err: Callable[[str, Location], None]) -> None:
    _, _, port = address.rpartition(":")
    if port.isdigit() and not 0 <= int(port) <= 65535:
        err(f"port {port} must be from 0 to 65535 (0: any free port)", loc)


def _sandbox_checks(
    section: str, name: str | None, box: Sandbox, user_auto: bool, backend: Backend, where: Where
) -> list[Diagnostic]:
    """Ports that cannot be, lists that a filesystem ``allow`` ignores, a sandbox on http.sys."""
    base = ("listener", "sandbox") if section == "session" else ("sandbox",)
    out: list[Diagnostic] = []
    for i, address in enumerate(box.network.connect or ()):
        if connect_port(address) is None:
            out.append(
                Diagnostic(
                    f'"{address}" has no port from 1 to 65535',
                    "Write host:port, e.g. 127.0.0.1:5432 ([::1]:5432 for IPv6).",
                    where(section, name, *base, "network", "connect", i),
                )
            )
    listed = box.filesystem.read_only or box.filesystem.read_write
    if listed and not default_denies(box, user_auto=user_auto):
        out.append(
            Diagnostic(
                "filesystem.readOnly and readWrite are ignored: the filesystem default is allow",
                "Set sandbox.filesystem.default: deny to restrict the process to the listed paths"
                + ("" if user_auto else " (a pool with a named user defaults to allow)")
                + ".",
                where(section, name, *base, "filesystem"),
                Severity.WARNING,
            )
        )
    if backend is Backend.HTTPSYS and box != Sandbox():
        out.append(
            Diagnostic(
                "the httpsys backend has no sandbox: seccomp and Landlock are Linux's",
                "The setting applies when the same manifest runs on the linux backend.",
                where(section, name, *base),
                Severity.WARNING,
            )
        )
    return out


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_dashboard(
    session: Session,
    ports: Mapping[int, object],
    where: Where,
    err: Callable[[str, Location, str], None],
) -> None:
    """The dashboard: its port, and auth wherever anyone but this host can reach it."""
    dashboard = session.dashboard
    auth = dashboard.auth
    if auth is not None and (auth.token_file is None) == (auth.basic_file is None):
        err(
            "session.dashboard.auth must name exactly one of tokenFile and basicFile",
            where("session", None, "dashboard", "auth"),
            "tokenFile: a bearer token; basicFile: user:HASH lines for HTTP basic "
            "(docs/dashboard.md).",
        )
    address = dashboard.address
    if not address:
        return
    loc = where("session", None, "dashboard", "address")
    _check_port(address, loc, lambda summary, at: err(summary, at, ""))
    host, _, port = address.rpartition(":")
    if port.isdigit() and int(port) != 0:
        if int(port) in ports:
            err(f"dashboard port {port} is also used by a URL prefix", loc, "")
        _, _, metrics_port = (session.metrics.address or "").rpartition(":")
        if metrics_port == port:
            err(f"dashboard port {port} is also the metrics port", loc, "")
    if auth is None and not _is_loopback(host):
        err(
            f'dashboard address "{address}" is not loopback and has no auth',
            loc,
            "Anyone who reaches it would see the whole session. Add session.dashboard.auth "
            "(tokenFile or basicFile), or listen on 127.0.0.1 (docs/dashboard.md).",
        )


def _tls_covers(session: Session | None, prefix: UrlPrefix) -> bool:
    if session is None:
        return False
    for binding in session.tls:
        host, _, port = binding.address.rpartition(":")
        if int(port) != prefix.port:
            continue
        if host in ("+", "*", "0.0.0.0", "[::]", prefix.host):
            return True
    return False


def _acl_allows(
    queue: RequestQueue, user: str, pool: WorkerPool, identities: Identities | None
) -> bool:
    users = {p.name for p in queue.acl or () if p.kind is PrincipalKind.USER}
    groups = {p.name for p in queue.acl or () if p.kind is PrincipalKind.GROUP}
    if user in users:
        return True
    member_of = set(pool.groups) | ({pool.group} if pool.group else set())
    if identities is not None:
        info = identities.user(user)
        if info is not None:
            member_of |= info.groups
    return bool(member_of & groups)


def _identity_checks(
    resources: Mapping[Key, Resource],
    raw: Mapping[str, object],
    where: Where,
    ids: Identities,
    strict: bool,
    gaps: Gaps,
) -> list[Diagnostic]:
    severity = Severity.ERROR if strict else Severity.WARNING
    # A dropped pool may be ``user: auto``: its dedicated user is no stranger to an ACL.
    auto_users = _auto_users(resources) | {auto_user(n) for s, n in gaps.dropped if s == "workers"}
    out: list[Diagnostic] = []

    def unknown(what: str, name: str, loc: Location) -> None:
        out.append(
            Diagnostic(
                f'unknown {what} "{name}" on this host',
                "Create it (useradd/groupadd), or use user: auto for a dedicated user."
                if what == "user"
                else "Create it with groupadd.",
                loc,
                severity,
            )
        )

    for key, res in resources.items():
        if isinstance(res, WorkerPool):
            if res.user != "auto" and ids.user(res.user) is None:
                unknown("user", res.user, where("workers", key.name, "user"))
            if res.group and ids.group(res.group) is None:
                unknown("group", res.group, where("workers", key.name, "group"))
            for i, g in enumerate(_raw_list(raw, "workers", key.name, "groups")):
                if ids.group(str(g)) is None:
                    unknown("group", str(g), where("workers", key.name, "groups", i))
        elif isinstance(res, RequestQueue):
            for i, item in enumerate(_raw_list(raw, "queues", key.name, "acl")):
                if not isinstance(item, dict) or len(item) != 1:
                    continue
                ((kind, pname),) = item.items()
                loc = where("queues", key.name, "acl", i)
                known = ids.user(str(pname)) is not None or str(pname) in auto_users
                if kind == "user" and not known:
                    unknown("user", str(pname), loc)
                if kind == "group" and ids.group(str(pname)) is None:
                    unknown("group", str(pname), loc)
        elif isinstance(res, Session):
            if res.listener.user != "auto" and ids.user(res.listener.user) is None:
                unknown("user", res.listener.user, where("session", None, "listener", "user"))
            if res.listener.group and ids.group(res.listener.group) is None:
                unknown("group", res.listener.group, where("session", None, "listener", "group"))
            if res.admin_group and ids.group(res.admin_group) is None:
                unknown("group", res.admin_group, where("session", None, "adminGroup"))
    return out


def _file_checks(
    resources: Mapping[Key, Resource],
    raw: Mapping[str, object],
    where: Where,
    host: Identities,
    strict: bool,
    backend: Backend,
) -> list[Diagnostic]:
    """TLS files, working directories and commands that this host does not have.

    Warnings for ``validate`` (CI may run away from the target host), errors for ``run`` and
    ``apply``: a worker whose ``cwd`` or ``command`` is missing could only crash-loop, and the
    listener could not serve https without its certificate.
    """
    severity = Severity.ERROR if strict else Severity.WARNING
    out: list[Diagnostic] = []
    relative = "A relative path is relative to the directory of the manifest file that names it."
    for i, item in enumerate(_raw_list(raw.get("session") or {}, "tls")):
        if not isinstance(item, dict):
            continue
        for field, what in (("certFile", "certificate"), ("keyFile", "key")):
            path = item.get(field)
            if isinstance(path, str) and not host.is_file(path):
                out.append(
                    Diagnostic(
                        f'TLS {what} file "{path}" does not exist on this host',
                        f"Install it there, or fix the path. {relative}",
                        where("session", None, "tls", i, field),
                        severity,
                    )
                )
    auth = _raw_dict(raw, "session", "dashboard", "auth")
    for field, what in (("tokenFile", "token"), ("basicFile", "password")):
        path = auth.get(field)
        if isinstance(path, str) and not host.is_file(path):
            out.append(
                Diagnostic(
                    f'dashboard {what} file "{path}" does not exist on this host',
                    f"Create it (docs/dashboard.md), or fix the path. {relative}",
                    where("session", None, "dashboard", "auth", field),
                    severity,
                )
            )
    for key, res in sorted(resources.items()):
        if not isinstance(res, WorkerPool):
            continue
        if res.cwd is not None and not host.is_dir(res.cwd):
            out.append(
                Diagnostic(
                    f'working directory "{res.cwd}" does not exist on this host',
                    f"Create it, or fix the pool's cwd. {relative}",
                    where("workers", key.name, "cwd"),
                    severity,
                )
            )
            if "/" in res.command[0] and not os.path.isabs(res.command[0]):
                continue  # relative to a directory that is missing: already said
        env_path = next((e.value for e in res.env if e.name == "PATH"), None)
        search = env_path if env_path is not None else host.worker_path(str(backend))
        command = res.command[0]
        found = host.find_command(command, search, res.cwd or "/")
        if found is not False:
            continue
        if "/" in command:
            summary = f'command "{command}" is not an executable file on this host'
            detail = (
                "A command with a '/' is a path; a relative one is relative to the pool's cwd "
                f"({res.cwd or '/'})."
            )
        else:
            summary = f'command "{command}" is not found on PATH on this host'
            origin = "the pool's env" if env_path is not None else "the worker's default"
            detail = (
                f"Searched PATH={search} ({origin}). Install it, give its full path, or set PATH "
                "in the pool's env."
            )
        out.append(Diagnostic(summary, detail, where("workers", key.name, "command", 0), severity))
    return out


def _auto_users(resources: Mapping[Key, Resource]) -> set[str]:
    return {
        auto_user(k.name)
        for k, r in resources.items()
        if k.kind is Kind.WORKER and isinstance(r, WorkerPool) and r.user == "auto"
    }
