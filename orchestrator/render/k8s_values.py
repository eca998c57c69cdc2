"""Values for the Kubernetes renderer: names, quantities, durations, and the fields with no equivalent.

Owns: ``NO_EQUIVALENT`` (why each manifest field that cannot carry over is not rendered; the table in
docs/kubernetes.md quotes it), DNS-1123 names, Kubernetes quantities and Gateway API durations, the
fixed uid of a pool, the portable runner's command shape, and a field's value in manifest spelling for
warning details. ``render.kubernetes`` builds the objects from these.

Pure: standard library, ``orchestrator.model`` and ``orchestrator.errors``. Must not import os, socket,
subprocess, threading, logging, time or asyncio.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.errors import Diagnostic, Location
from orchestrator.model.desired import KubernetesPool, Sandbox, SeccompMode, WorkerPool
from orchestrator.model.units import format_duration, format_size

#: Every container serves HTTP here (the runner's ``--listen``); Services send their port 80 to it.
CONTAINER_PORT = 8080
SERVICE_PORT = 80
LISTEN_ARG = f"0.0.0.0:{CONTAINER_PORT}"

GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"
MANAGED_BY = ("app.kubernetes.io/managed-by", "orchestrator")
#: Label keys the renderer owns (selectors depend on them); a manifest may not set them.
RESERVED_PREFIX = "orchestrator/"
L_SESSION, L_QUEUE, L_POOL, L_GROUP = (
    "orchestrator/session",
    "orchestrator/queue",
    "orchestrator/pool",
    "orchestrator/url-group",
)
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"

#: Kinds in the order they are printed: what others refer to comes first, for ``kubectl apply -f -``.
KIND_ORDER = ("ServiceAccount", "Service", "NetworkPolicy", "Deployment", "Gateway", "HTTPRoute")

#: ``queues.NAME.maxLength``'s default (the schema's); only another value is warned about.
DEFAULT_MAX_LENGTH = 1000
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
WINDOWS_PATH = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")


_GATEWAY_SANDBOX = "the Gateway implementation's pods are its own (and so is their sandbox)"

#: Why a field has no equivalent, by (section, manifest path). The summary of each warning is
#: "no Kubernetes equivalent, not rendered: WHY" (docs/kubernetes.md quotes these).
NO_EQUIVALENT: dict[tuple[str, str], str] = {
    ("session", "backend"): "the cluster, not a backend, runs the objects",
    ("session", "runDir"): "there are no controller sockets in a cluster",
    ("session", "stateDir"): "there is no controller state in a cluster",
    ("session", "timeouts.entityBody"): "the Gateway implementation sets its own body timeout",
    ("session", "timeouts.drainEntityBody"): "the Gateway implementation drains bodies itself",
    ("session", "timeouts.idleConnection"): (
        "the Gateway implementation sets its own idle connection timeout"
    ),
    ("session", "timeouts.headerWait"): (
        "the Gateway implementation sets its own header timeout (the slowloris guard)"
    ),
    ("session", "timeouts.minSendRate"): "the Gateway API has no minimum send rate",
    ("session", "limits.maxConnections"): "the Gateway API has no connection limit",
    ("session", "limits.maxRequestHeaderBytes"): "the Gateway API has no request head limit",
    ("session", "limits.maxUrlBytes"): "the Gateway API has no URL length limit",
    ("session", "limits.maxBodyBytes"): "the Gateway API has no request body limit",
    ("session", "limits.maxHeaderFields"): "the Gateway API has no header count limit",
    ("session", "listener.user"): "the Gateway implementation's pods are its own",
    ("session", "listener.group"): "the Gateway implementation's pods are its own",
    ("session", "listener.processes"): (
        "the Gateway implementation's pods are its own (scale them with its own settings)"
    ),
    ("session", "listener.openFiles"): "the Gateway implementation's pods are its own",
    ("session", "listener.accessLog"): "the Gateway implementation writes its own access log",
    (
        "session",
        "listener.sandbox.seccomp",
    ): _GATEWAY_SANDBOX,
    (
        "session",
        "listener.sandbox.filesystem.default",
    ): _GATEWAY_SANDBOX,
    (
        "session",
        "listener.sandbox.filesystem.readOnly",
    ): _GATEWAY_SANDBOX,
    (
        "session",
        "listener.sandbox.filesystem.readWrite",
    ): _GATEWAY_SANDBOX,
    (
        "session",
        "listener.sandbox.network.connect",
    ): _GATEWAY_SANDBOX,
    (
        "session",
        "listener.sandbox.required",
    ): _GATEWAY_SANDBOX,
    ("session", "metrics.address"): (
        "the controller's metrics do not exist in a cluster; the Gateway implementation has its own"
    ),
    ("session", "dashboard.address"): (
        "the controller's dashboard does not exist in a cluster; use the cluster's own consoles"
    ),
    ("session", "adminGroup"): "there is no admin API in a cluster (use Kubernetes RBAC)",
    ("queues", "maxLength"): (
        "a Service has no queue length; requests wait in the Gateway and the pods instead"
    ),
    ("queues", "verbosity503"): "the Gateway implementation decides what a refused client sees",
    ("urlGroups", "maxConnections"): "the Gateway API has no connection limit per route",
    ("urlGroups", "timeouts.entityBody"): "HTTPRoute timeouts cover only the whole request",
    ("urlGroups", "timeouts.drainEntityBody"): "HTTPRoute timeouts cover only the whole request",
    ("urlGroups", "timeouts.idleConnection"): "HTTPRoute timeouts cover only the whole request",
    ("urlGroups", "timeouts.headerWait"): "HTTPRoute timeouts cover only the whole request",
    ("urlGroups", "timeouts.minSendRate"): "the Gateway API has no minimum send rate",
    ("workers", "user"): "each pool runs as its own fixed uid (kubernetes.runAsUser)",
    ("workers", "group"): "each pool runs as its own fixed gid (kubernetes.runAsUser)",
    ("workers", "groups"): "pods get no supplementary groups",
    ("workers", "sandbox.filesystem.default"): (
        "a pod's file system is its image, mounted read-only (readOnlyRootFilesystem); "
        "Landlock rules are not rendered"
    ),
    ("workers", "sandbox.filesystem.readOnly"): (
        "a pod's file system is its image, mounted read-only (readOnlyRootFilesystem); "
        "Landlock rules are not rendered"
    ),
    ("workers", "sandbox.filesystem.readWrite"): (
        "a pod's file system is its image, mounted read-only (readOnlyRootFilesystem); "
        "Landlock rules are not rendered"
    ),
    ("workers", "sandbox.network.connect"): (
        "limit the pods' egress with a NetworkPolicy of your own; Landlock rules are not rendered"
    ),
    ("workers", "sandbox.required"): (
        "the container runtime applies the pod's seccomp profile or does not start it"
    ),
    ("workers", "allowRoot"): "pods never run as root (runAsNonRoot: true)",
    ("workers", "restart.initialBackoff"): "the kubelet's restart backoff is fixed",
    ("workers", "restart.maxBackoff"): "the kubelet's restart backoff is fixed",
    ("workers", "restart.resetAfter"): "the kubelet's restart backoff is fixed",
    ("workers", "recycling.requests"): "Kubernetes does not recycle pods after N requests",
    ("workers", "recycling.memory"): (
        "Kubernetes does not recycle pods by memory (limits.memory kills instead)"
    ),
    ("workers", "recycling.schedule"): (
        "Kubernetes does not recycle pods on a schedule (a CronJob running "
        "'kubectl rollout restart' can)"
    ),
    ("workers", "limits.pids"): "a pod's process limit is a node setting (podPidsLimit)",
    ("workers", "limits.openFiles"): "a container's descriptor limit is the runtime's",
}


def default_uid(pool: str) -> int:
    """The fixed uid of a pool that names none: 100000 plus a stable hash of its name (< 900000).

    A hash, not a position, so adding or removing another pool never changes a pool's uid.
    """
    return 100_000 + zlib.crc32(pool.encode()) % 900_000


def no_where(section: str, name: str | None, *path: str | int) -> Location:
    parts = [section] + ([name] if name else []) + [str(p) for p in path]
    return Location("<manifest>", path=".".join(parts))


def dns_label(text: str, *, letter_first: bool = False) -> str:
    """``text`` as a DNS-1123 label (a DNS-1035 label when ``letter_first``): lowercase letters,
    digits and ``-``, at most 63 characters; a longer name keeps a hash of the whole."""
    label = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "x"
    if letter_first and not label[0].isalpha():
        label = "x-" + label
    if len(label) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        label = label[:54].rstrip("-") + "-" + digest
    return label


def whole_seconds(value: float) -> int:
    return max(1, math.ceil(value))


def gateway_duration(seconds: float) -> str:
    """A Gateway API duration (``1h2m3s500ms``; at most 5 digits per unit)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def quantity_bytes(value: int) -> str:
    """A byte count as a Kubernetes quantity (``256Mi``, or plain bytes)."""
    for suffix, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value % size == 0 and value >= size:
            return f"{value // size}{suffix}"
    return str(value)


def quantity_cpu(value: float) -> str:
    """CPUs as a Kubernetes quantity (``2``, ``500m``)."""
    millis = round(value * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def changed_paths(obj: object, default: object, prefix: str = "") -> Iterable[str]:
    """Dotted manifest paths of the leaf fields of ``obj`` that differ from ``default``."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        name = str(f.metadata.get("manifest") or f.name)
        path = f"{prefix}.{name}" if prefix else name
        mine, theirs = getattr(obj, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(mine) and not isinstance(mine, type):
            yield from changed_paths(mine, theirs, path)
        elif mine != theirs:
            yield path


def seccomp_profile(sandbox: Sandbox) -> str:
    """The pod's ``seccompProfile.type``: the runtime's default profile is the nearest to ours,
    and ``seccomp: off`` is ``Unconfined``."""
    return "Unconfined" if sandbox.seccomp is SeccompMode.OFF else "RuntimeDefault"


def runner_args(command: tuple[str, ...]) -> list[str] | None:
    """The arguments after ``orchestrator worker`` (or ``python -m orchestrator worker``), or
    ``None`` when ``command`` is not the portable runner."""
    program = re.split(r"[\\/]", command[0])[-1].lower()
    if program in ("orchestrator", "orchestrator.exe") and command[1:2] == ("worker",):
        return list(command[2:])
    if program.startswith("python") and command[1:4] == ("-m", "orchestrator", "worker"):
        return list(command[4:])
    return None


def show_value(obj: object, path: str) -> str:
    """A field's value in manifest spelling (``10s``, ``1MiB``), for warning details."""
    value: object = obj
    holder: object = obj
    unit = ""
    for part in path.split("."):
        for f in dataclasses.fields(holder):  # type: ignore[arg-type]
            if (f.metadata.get("manifest") or f.name) == part:
                value = getattr(holder, f.name)
                unit = str(f.metadata.get("unit") or "")
                break
        holder = value
    if unit == "duration" and isinstance(value, int | float):
        return format_duration(float(value))
    if unit == "size" and isinstance(value, int):
        return format_size(value)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normpath(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def host_word(host: str) -> str:
    return {"+": "all", "*": "any", "0.0.0.0": "all", "[::]": "all"}.get(host, host)


def listener_name(key: tuple[str, int, str | None]) -> str:
    scheme, port, host = key
    return f"{scheme}-{port}" if host is None else f"{scheme}-{port}-{host}"


def path_value(path: str) -> str:
    # The Gateway API ignores a PathPrefix's trailing slash ("/app/" and "/app" both match "/app" and
    # "/app/x", never "/apple"); the conventional spelling has none.
    return path if path == "/" else path.rstrip("/")


def ordered_diagnostics(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Warnings by file, line, column and summary (the order they print in)."""

    def order(d: Diagnostic) -> tuple[str, int, int, str]:
        loc = d.location
        return (loc.file, loc.line, loc.column, d.summary) if loc else ("", 0, 0, d.summary)

    return sorted(diags, key=order)


@dataclass(slots=True)
class PoolSettings:
    """One pool with its effective Kubernetes settings (the session's defaults under its overrides)."""

    pool: WorkerPool
    k: KubernetesPool
    namespace: str
    uid: int
    labels: dict[str, str]
    annotations: dict[str, str]
    service_account: str
