"""Resources and the desired state: what the manifest says should exist, normalised.

Owns: the frozen resource dataclasses (``Session``, ``RequestQueue``, ``UrlGroup``, ``WorkerPool`` and
their parts), their replace rules, and ``DesiredState``. Every value is normalised at load (defaults
applied, durations in seconds, sizes in bytes, URL prefixes canonical, collections sorted), so desired and
live state compare by plain equality.
Pure: standard library and ``orchestrator.model`` only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Literal

from orchestrator.model.ids import Key, Kind


def _m(name: str, unit: str = "", implicit: bool = False) -> dict[str, object]:
    """Field metadata: the manifest spelling, the unit (``duration``/``size``), implicit fields."""
    return {"manifest": name, "unit": unit, "implicit": implicit}


class Backend(enum.StrEnum):
    """Which backend drives the session."""

    AUTO = "auto"
    LINUX = "linux"
    HTTPSYS = "httpsys"


class State(enum.StrEnum):
    """Administrative state of a queue or URL group (http.sys ``HttpServerStateProperty``)."""

    ENABLED = "enabled"
    DISABLED = "disabled"


class Verbosity503(enum.StrEnum):
    """What a client sees when a queue cannot take its request (``Http503Verbosity``)."""

    BASIC = "basic"  # reset the connection, no 503
    LIMITED = "limited"  # 503 Service Unavailable
    FULL = "full"  # 503 with the reason


class PrincipalKind(enum.StrEnum):
    """Kinds of principal an ACL can name."""

    USER = "user"
    GROUP = "group"
    SID = "sid"
    ACCOUNT = "account"


class ReplaceStyle(enum.StrEnum):
    """How an object that cannot change in place is replaced."""

    DESTROY_FIRST = "destroy_first"  # -/+
    CREATE_FIRST = "create_first"  # +/-


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Connection timers (http.sys ``HTTP_TIMEOUT_LIMIT_INFO``), seconds, and MinSendRate in B/s."""

    entity_body_s: float = field(default=120.0, metadata=_m("entityBody", "duration"))
    drain_entity_body_s: float = field(default=120.0, metadata=_m("drainEntityBody", "duration"))
    request_queue_s: float = field(default=120.0, metadata=_m("requestQueue", "duration"))
    idle_connection_s: float = field(default=120.0, metadata=_m("idleConnection", "duration"))
    header_wait_s: float = field(default=120.0, metadata=_m("headerWait", "duration"))
    min_send_rate: int = field(default=150, metadata=_m("minSendRate"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutOverrides:
    """A URL group's timers; ``None`` inherits the session's value."""

    entity_body_s: float | None = field(default=None, metadata=_m("entityBody", "duration"))
    drain_entity_body_s: float | None = field(
        default=None, metadata=_m("drainEntityBody", "duration")
    )
    request_queue_s: float | None = field(default=None, metadata=_m("requestQueue", "duration"))
    idle_connection_s: float | None = field(default=None, metadata=_m("idleConnection", "duration"))
    header_wait_s: float | None = field(default=None, metadata=_m("headerWait", "duration"))
    min_send_rate: int | None = field(default=None, metadata=_m("minSendRate"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLimits:
    """Request and connection limits; ``max_connections`` 0 means unlimited."""

    max_connections: int = field(default=0, metadata=_m("maxConnections"))
    max_request_header_bytes: int = field(
        default=16384, metadata=_m("maxRequestHeaderBytes", "size")
    )
    max_url_bytes: int = field(default=8192, metadata=_m("maxUrlBytes", "size"))
    max_body_bytes: int = field(default=30_000_000, metadata=_m("maxBodyBytes", "size"))
    max_header_fields: int = field(default=100, metadata=_m("maxHeaderFields"))


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class TlsBinding:
    """A certificate bound to an ``host:port`` address."""

    address: str = field(metadata=_m("address"))
    cert_file: str = field(metadata=_m("certFile"))
    key_file: str = field(metadata=_m("keyFile"))


class SeccompMode(enum.StrEnum):
    """The seccomp filter of a sandbox: the default deny-list, or none."""

    DEFAULT = "default"
    OFF = "off"


class FilesystemDefault(enum.StrEnum):
    """What a sandboxed process may reach outside its listed paths (Landlock)."""

    DENY = "deny"
    ALLOW = "allow"


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesystemSandbox:
    """Landlock filesystem rules; ``default`` ``None``: deny for the listener and for pools
    whose user is ``auto``, allow otherwise (``orchestrator.sandbox.policy`` decides)."""

    default: FilesystemDefault | None = field(default=None, metadata=_m("default"))
    read_only: tuple[str, ...] = field(default=(), metadata=_m("readOnly"))
    read_write: tuple[str, ...] = field(default=(), metadata=_m("readWrite"))


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSandbox:
    """TCP ``host:port`` addresses the process may connect to; ``None``: any."""

    connect: tuple[str, ...] | None = field(default=None, metadata=_m("connect"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sandbox:
    """Defence in depth for a process the controller starts (seccomp and Landlock);
    ``required``: refuse to start it where the kernel cannot apply all of it."""

    seccomp: SeccompMode = field(default=SeccompMode.DEFAULT, metadata=_m("seccomp"))
    filesystem: FilesystemSandbox = field(
        default_factory=FilesystemSandbox, metadata=_m("filesystem")
    )
    network: NetworkSandbox = field(default_factory=NetworkSandbox, metadata=_m("network"))
    required: bool = field(default=False, metadata=_m("required"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerSettings:
    """The Linux listener process: its identity, how many processes share the ports, how many
    descriptors each may hold (``None``: the controller's hard limit), and its access log
    (``on``: the controller's stderr, ``off``, or a file's absolute path)."""

    user: str = field(default="auto", metadata=_m("user"))
    group: str | None = field(default=None, metadata=_m("group"))
    #: A count, or "auto": one per CPU the controller may run on, capped (the backend decides).
    processes: int | Literal["auto"] = field(default=1, metadata=_m("processes"))
    open_files: int | None = field(default=None, metadata=_m("openFiles"))
    access_log: str = field(default="on", metadata=_m("accessLog"))
    sandbox: Sandbox = field(default_factory=Sandbox, metadata=_m("sandbox"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """Where the Prometheus endpoint listens; ``None`` turns it off."""

    address: str | None = field(default=None, metadata=_m("address"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardAuth:
    """Who may see the dashboard: a bearer token file or an HTTP basic password file (one)."""

    token_file: str | None = field(default=None, metadata=_m("tokenFile"))
    basic_file: str | None = field(default=None, metadata=_m("basicFile"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Dashboard:
    """Where the controller's read-only dashboard listens (``None``: off), and its auth."""

    address: str | None = field(default=None, metadata=_m("address"))
    auth: DashboardAuth | None = field(default=None, metadata=_m("auth"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """The server session: front-end settings shared by every URL group."""

    REPLACE_FIELDS: ClassVar[frozenset[str]] = frozenset({"backend", "run_dir", "state_dir"})
    REPLACE_STYLE: ClassVar[ReplaceStyle] = ReplaceStyle.DESTROY_FIRST

    key: Key = field(metadata=_m("name"))
    backend: Backend = field(default=Backend.AUTO, metadata=_m("backend"))
    run_dir: str | None = field(default=None, metadata=_m("runDir"))
    state_dir: str | None = field(default=None, metadata=_m("stateDir"))
    timeouts: Timeouts = field(default_factory=Timeouts, metadata=_m("timeouts"))
    limits: SessionLimits = field(default_factory=SessionLimits, metadata=_m("limits"))
    tls: tuple[TlsBinding, ...] = field(default=(), metadata=_m("tls"))
    listener: ListenerSettings = field(default_factory=ListenerSettings, metadata=_m("listener"))
    metrics: Metrics = field(default_factory=lambda: Metrics(), metadata=_m("metrics"))
    dashboard: Dashboard = field(default_factory=lambda: Dashboard(), metadata=_m("dashboard"))
    admin_group: str | None = field(default=None, metadata=_m("adminGroup"))

    def refs(self) -> frozenset[Key]:
        """A session references nothing."""
        return frozenset()


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Principal:
    """One entry of a queue ACL: a user, a group, a Windows SID or a ``DOMAIN\\user`` account."""

    kind: PrincipalKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestQueue:
    """A named request queue and who may open it."""

    REPLACE_FIELDS: ClassVar[frozenset[str]] = frozenset({"session"})
    REPLACE_STYLE: ClassVar[ReplaceStyle] = ReplaceStyle.DESTROY_FIRST

    key: Key
    session: Key = field(metadata=_m("session", implicit=True))
    max_length: int = field(default=1000, metadata=_m("maxLength"))
    state: State = field(default=State.ENABLED, metadata=_m("state"))
    verbosity503: Verbosity503 = field(default=Verbosity503.LIMITED, metadata=_m("verbosity503"))
    # None: only the identities of the pools serving the queue may open it (resolved at run time).
    acl: tuple[Principal, ...] | None = field(default=None, metadata=_m("acl"))

    def refs(self) -> frozenset[Key]:
        """The session the queue lives in."""
        return frozenset({self.session})


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlGroup:
    """URL prefixes routed to one queue."""

    REPLACE_FIELDS: ClassVar[frozenset[str]] = frozenset({"session"})
    REPLACE_STYLE: ClassVar[ReplaceStyle] = ReplaceStyle.DESTROY_FIRST

    key: Key
    session: Key = field(metadata=_m("session", implicit=True))
    queue: Key | None = field(default=None, metadata=_m("queue"))
    urls: tuple[str, ...] = field(default=(), metadata=_m("urls"))
    state: State = field(default=State.ENABLED, metadata=_m("state"))
    timeouts: TimeoutOverrides = field(default_factory=TimeoutOverrides, metadata=_m("timeouts"))
    max_connections: int | None = field(default=None, metadata=_m("maxConnections"))

    def refs(self) -> frozenset[Key]:
        """The session, and the queue when one is bound."""
        return frozenset({self.session} | ({self.queue} if self.queue else set()))


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class EnvVar:
    """One environment variable of a worker; ``secret`` values are masked in every output."""

    name: str
    value: str
    secret: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """The HTTP probe sent through the queue; ``path`` ``None`` means process liveness only."""

    path: str | None = field(default=None, metadata=_m("path"))
    interval_s: float = field(default=30.0, metadata=_m("interval", "duration"))
    timeout_s: float = field(default=5.0, metadata=_m("timeout", "duration"))
    unhealthy_threshold: int = field(default=3, metadata=_m("unhealthyThreshold"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Exponential restart backoff, reset after a stable period."""

    initial_backoff_s: float = field(default=0.1, metadata=_m("initialBackoff", "duration"))
    max_backoff_s: float = field(default=30.0, metadata=_m("maxBackoff", "duration"))
    reset_after_s: float = field(default=30.0, metadata=_m("resetAfter", "duration"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RapidFail:
    """IIS rapid-fail protection: ``max_crashes`` within ``interval_s`` stops the pool."""

    enabled: bool = field(default=True, metadata=_m("enabled"))
    max_crashes: int = field(default=5, metadata=_m("maxCrashes"))
    interval_s: float = field(default=300.0, metadata=_m("interval", "duration"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Recycling:
    """Periodic overlapped recycling; zero disables a trigger."""

    time_s: float = field(default=104_400.0, metadata=_m("time", "duration"))
    requests: int = field(default=0, metadata=_m("requests"))
    memory_bytes: int = field(default=0, metadata=_m("memory", "size"))
    schedule: tuple[str, ...] = field(default=(), metadata=_m("schedule"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceLimits:
    """Per-pool resource limits (cgroups and rlimits); ``None`` means no limit."""

    memory_bytes: int | None = field(default=None, metadata=_m("memory", "size"))
    pids: int | None = field(default=None, metadata=_m("pids"))
    cpu: float | None = field(default=None, metadata=_m("cpu"))
    open_files: int | None = field(default=None, metadata=_m("openFiles"))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerPool:
    """A pool of identical worker processes serving one queue."""

    REPLACE_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "session",
            "queue",
            "command",
            "env",
            "cwd",
            "user",
            "group",
            "groups",
            "allow_root",
            "limits",
            "sandbox",
        }
    )
    REPLACE_STYLE: ClassVar[ReplaceStyle] = ReplaceStyle.CREATE_FIRST

    key: Key
    session: Key = field(metadata=_m("session", implicit=True))
    queue: Key = field(metadata=_m("queue"))
    command: tuple[str, ...] = field(metadata=_m("command"))
    env: tuple[EnvVar, ...] = field(default=(), metadata=_m("env"))
    cwd: str | None = field(default=None, metadata=_m("cwd"))
    user: str = field(default="auto", metadata=_m("user"))
    group: str | None = field(default=None, metadata=_m("group"))
    groups: tuple[str, ...] = field(default=(), metadata=_m("groups"))
    allow_root: bool = field(default=False, metadata=_m("allowRoot"))
    processes: int = field(default=1, metadata=_m("processes"))
    startup_time_limit_s: float = field(default=90.0, metadata=_m("startupTimeLimit", "duration"))
    shutdown_time_limit_s: float = field(default=90.0, metadata=_m("shutdownTimeLimit", "duration"))
    health: Health = field(default_factory=Health, metadata=_m("health"))
    restart: RestartPolicy = field(default_factory=RestartPolicy, metadata=_m("restart"))
    rapid_fail: RapidFail = field(default_factory=RapidFail, metadata=_m("rapidFailProtection"))
    recycling: Recycling = field(default_factory=Recycling, metadata=_m("recycling"))
    limits: ResourceLimits = field(default_factory=ResourceLimits, metadata=_m("limits"))
    sandbox: Sandbox = field(default_factory=Sandbox, metadata=_m("sandbox"))

    def refs(self) -> frozenset[Key]:
        """The session and the queue the pool serves."""
        return frozenset({self.session, self.queue})


Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesPool:
    """A pool's ``kubernetes:`` overrides for ``render kubernetes``; ``None`` inherits the session's.

    ``cwd_as_written`` is the pool's ``cwd`` before it was resolved against the manifest's directory:
    a container's working directory is a path in the image, not on this host.
    """

    image: str | None = None
    namespace: str | None = None
    service_account_prefix: str | None = None
    command: tuple[str, ...] | None = None
    labels: Pairs | None = None
    annotations: Pairs | None = None
    run_as_user: int | None = None
    cwd_as_written: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesSettings:
    """``session.kubernetes`` and every ``workers.NAME.kubernetes``: what only the Kubernetes renderer
    reads.

    Kept beside the resources, not in them, on purpose: the plan diffs resources, so a change of only
    these settings plans nothing and restarts no worker on the linux or httpsys backends.
    """

    image: str | None = None
    namespace: str = "default"
    gateway_class_name: str | None = None
    service_account_prefix: str = "orch-"
    labels: Pairs = ()
    annotations: Pairs = ()
    gateway_namespace: str | None = None
    gateway_labels: Pairs | None = None
    tls_secrets: Pairs = ()
    app_root: str = "/app"
    pools: tuple[tuple[str, KubernetesPool], ...] = ()

    def pool(self, name: str) -> KubernetesPool:
        """The overrides of one pool (all ``None`` when it has no ``kubernetes:``)."""
        for pool_name, settings in self.pools:
            if pool_name == name:
                return settings
        return KubernetesPool()


Resource = Session | RequestQueue | UrlGroup | WorkerPool

RESOURCE_TYPES: dict[Kind, type[Session | RequestQueue | UrlGroup | WorkerPool]] = {
    Kind.SESSION: Session,
    Kind.QUEUE: RequestQueue,
    Kind.URLGROUP: UrlGroup,
    Kind.WORKER: WorkerPool,
}


def _freeze(resources: Mapping[Key, Resource]) -> Mapping[Key, Resource]:
    return MappingProxyType(dict(sorted(resources.items(), key=lambda kv: kv[0].sort_key())))


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What the manifest asks for: resources keyed by ``Key``, and the manifest's hash."""

    resources: Mapping[Key, Resource]
    manifest_sha256: str = ""
    #: Read by the Kubernetes renderer only; never diffed (see ``KubernetesSettings``).
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings, compare=False)

    @staticmethod
    def of(
        resources: Mapping[Key, Resource],
        manifest_sha256: str = "",
        kubernetes: KubernetesSettings | None = None,
    ) -> DesiredState:
        """Build a desired state with a read-only, ordered mapping."""
        return DesiredState(_freeze(resources), manifest_sha256, kubernetes or KubernetesSettings())

    @property
    def session(self) -> Session | None:
        """The one session, if the manifest has one."""
        for res in self.resources.values():
            if isinstance(res, Session):
                return res
        return None

    def of_kind(self, kind: Kind) -> list[Resource]:
        """Every resource of one kind, in name order."""
        return [r for k, r in self.resources.items() if k.kind is kind]
