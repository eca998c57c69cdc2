"""The manifest as Kubernetes and Gateway API objects: ``render_kubernetes``.

Owns: the mapping of docs/kubernetes.md (session and listener → one ``Gateway``; URL group →
``HTTPRoute``; queue → ``Service`` and ``NetworkPolicy``; worker pool → ``ServiceAccount`` and
``Deployment``), object naming (DNS-1123 labels, collisions are errors), the adaptation of the portable
runner's command, and every warning about an http.sys behaviour that does not carry over. Documents are
plain dicts in a fixed order (golden files compare them byte for byte).

What is warned about: only fields a manifest sets to something other than their default (a default
that cannot be carried over would make every render noisy), each warning on the field it is about.
The table in docs/kubernetes.md lists every field and its warning; the tests hold the two together.

Names, quantities and the no-equivalent table are in ``render.k8s_values``.

Pure: standard library, ``orchestrator.model``, ``orchestrator.routing`` (through ``precedence``) and
``orchestrator.errors``. Must not import os, socket, subprocess, threading, logging, time or asyncio, nor
any backend: a renderer never talks to a host or a cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import Diagnostic, Location, ManifestError, Severity
from orchestrator.model.desired import (
    Backend,
    DesiredState,
    KubernetesSettings,
    ListenerSettings,
    RapidFail,
    Recycling,
    RequestQueue,
    RestartPolicy,
    Sandbox,
    Session,
    SessionLimits,
    State,
    Timeouts,
    UrlGroup,
    Verbosity503,
    WorkerPool,
)
from orchestrator.model.ids import Kind
from orchestrator.model.units import format_duration
from orchestrator.model.urlprefix import HostKind, UrlPrefix, UrlPrefixError, parse_prefix
from orchestrator.render.k8s_values import (
    CONTAINER_PORT,
    DEFAULT_MAX_LENGTH,
    DNS_LABEL,
    GATEWAY_API,
    GATEWAY_GROUP,
    GATEWAY_NAME_LABEL,
    KIND_ORDER,
    L_GROUP,
    L_POOL,
    L_QUEUE,
    L_SESSION,
    LISTEN_ARG,
    MANAGED_BY,
    NO_EQUIVALENT,
    RESERVED_PREFIX,
    SERVICE_PORT,
    WINDOWS_PATH,
    PoolSettings,
    changed_paths,
    default_uid,
    dns_label,
    gateway_duration,
    host_word,
    listener_name,
    no_where,
    normpath,
    ordered_diagnostics,
    path_value,
    quantity_bytes,
    quantity_cpu,
    runner_args,
    seccomp_profile,
    show_value,
    whole_seconds,
)
from orchestrator.render.precedence import RoutedPrefix, divergences

__all__ = [
    "CONTAINER_PORT",
    "SERVICE_PORT",
    "Rendering",
    "Where",
    "default_uid",
    "render_kubernetes",
]

Where = Callable[..., Location]
Doc = dict[str, object]


@dataclass(frozen=True, slots=True)
class Rendering:
    """The documents of one render, in print order, and the warnings (with locations)."""

    documents: tuple[Doc, ...]
    warnings: tuple[Diagnostic, ...]


@dataclass(slots=True)
class _Renderer:
    desired: DesiredState
    where: Where
    namespace_override: str | None
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    names: dict[tuple[str, str, str], str] = field(default_factory=dict)
    docs: list[Doc] = field(default_factory=list)

    # -- diagnostics -----------------------------------------------------------------------------

    def error(self, summary: str, loc: Location, detail: str = "") -> None:
        self.errors.append(Diagnostic(summary, detail, loc))

    def warn(self, summary: str, loc: Location, detail: str = "") -> None:
        self.warnings.append(Diagnostic(summary, detail, loc, Severity.WARNING))

    def no_equivalent(self, section: str, name: str | None, path: str, value: object) -> None:
        why = NO_EQUIVALENT[(section, path)]
        self.warn(
            f"no Kubernetes equivalent, not rendered: {why}",
            self.where(section, name, *path.split(".")),
            f"{path} is {value}.",
        )

    def claim(self, kind: str, namespace: str, name: str, origin: str, loc: Location) -> None:
        """Record an object name; two objects of one kind and namespace with one name is an error."""
        key = (kind, namespace, name)
        first = self.names.get(key)
        if first is not None:
            self.error(
                f'{kind} name "{name}" in namespace "{namespace}" is taken by {first} as well',
                loc,
                f"{origin} and {first} render to the same object name; rename one of them.",
            )
            return
        self.names[key] = origin

    # -- settings --------------------------------------------------------------------------------

    @property
    def k(self) -> KubernetesSettings:
        return self.desired.kubernetes

    @property
    def session(self) -> Session:
        session = self.desired.session
        assert session is not None
        return session

    @property
    def default_namespace(self) -> str:
        return self.namespace_override or self.k.namespace

    def common_labels(self) -> dict[str, str]:
        labels = dict(self.k.labels)
        labels.update({MANAGED_BY[0]: MANAGED_BY[1], L_SESSION: self.session.key.name})
        return labels

    def _checked(
        self, pairs: Iterable[tuple[str, str]], what: str, loc: Location
    ) -> dict[str, str]:
        out = {}
        for key, value in pairs:
            if key.startswith(RESERVED_PREFIX) or key == MANAGED_BY[0]:
                self.error(
                    f'{what} "{key}" is set by the renderer',
                    loc,
                    f"Labels and annotations under {RESERVED_PREFIX} and {MANAGED_BY[0]} select "
                    "the rendered objects; choose another key.",
                )
                continue
            out[key] = value
        return out

    def metadata(
        self,
        name: str,
        namespace: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
    ) -> Doc:
        meta: Doc = {"name": name, "namespace": namespace, "labels": dict(sorted(labels.items()))}
        chosen = dict(self.k.annotations) if annotations is None else dict(annotations)
        if chosen:
            meta["annotations"] = dict(sorted(chosen.items()))
        return meta

    # -- the session -----------------------------------------------------------------------------

    def check_session(self) -> None:
        s = self.session
        name = None
        self._checked(self.k.labels, "label", self.where("session", name, "kubernetes", "labels"))
        self._checked(
            self.k.annotations,
            "annotation",
            self.where("session", name, "kubernetes", "annotations"),
        )
        if s.backend is not Backend.AUTO:
            self.no_equivalent("session", name, "backend", s.backend.value)
        if s.run_dir is not None:
            self.no_equivalent("session", name, "runDir", s.run_dir)
        if s.state_dir is not None:
            self.no_equivalent("session", name, "stateDir", s.state_dir)
        for path in changed_paths(s.timeouts, Timeouts(), "timeouts"):
            if path != "timeouts.requestQueue":
                self.no_equivalent("session", name, path, show_value(s, path))
        for part, default in (("limits", SessionLimits()), ("listener", ListenerSettings())):
            for path in changed_paths(getattr(s, part), default, part):
                self.no_equivalent("session", name, path, show_value(s, path))
        for path, address in (
            ("metrics.address", s.metrics.address),
            ("dashboard.address", s.dashboard.address),
        ):
            if address is not None:
                self.no_equivalent("session", name, path, address)
        if s.admin_group is not None:
            self.no_equivalent("session", name, "adminGroup", s.admin_group)

    # -- pools -----------------------------------------------------------------------------------

    def pools(self) -> dict[str, PoolSettings]:
        out: dict[str, PoolSettings] = {}
        uids: dict[int, str] = {}
        for res in self.desired.of_kind(Kind.WORKER):
            assert isinstance(res, WorkerPool)
            name = res.key.name
            pk = self.k.pool(name)
            loc_k = self.where("workers", name, "kubernetes")
            uid = pk.run_as_user if pk.run_as_user is not None else default_uid(name)
            if uid in uids:
                self.error(
                    f'pool "{name}" runs as uid {uid}, like pool "{uids[uid]}"',
                    self.where("workers", name, "kubernetes", "runAsUser")
                    if pk.run_as_user is not None
                    else loc_k,
                    "Each pool needs its own uid; set workers.NAME.kubernetes.runAsUser to a "
                    "free one.",
                )
            uids[uid] = name
            labels = self.common_labels()
            labels.update(
                self._checked(
                    pk.labels or (), "label", self.where("workers", name, "kubernetes", "labels")
                )
            )
            labels.update({L_POOL: name, L_QUEUE: res.queue.name})
            annotations = dict(self.k.annotations)
            annotations.update(
                self._checked(
                    pk.annotations or (),
                    "annotation",
                    self.where("workers", name, "kubernetes", "annotations"),
                )
            )
            prefix = (
                pk.service_account_prefix
                if pk.service_account_prefix is not None
                else self.k.service_account_prefix
            )
            out[name] = PoolSettings(
                pool=res,
                k=pk,
                namespace=pk.namespace or self.default_namespace,
                uid=uid,
                labels=labels,
                annotations=annotations,
                service_account=dns_label(prefix + name),
            )
        return out

    def container_command(self, p: PoolSettings) -> list[str] | None:
        name = p.pool.key.name
        if p.k.command is not None:
            return list(p.k.command)
        args = runner_args(p.pool.command)
        loc = self.where("workers", name, "command")
        if args is None:
            self.error(
                "command cannot be adapted to a container: it is not the portable runner "
                "(orchestrator worker MODULE:APP)",
                loc,
                "A pod has no inherited queue socket, so the renderer can only give the runner "
                f"--listen {LISTEN_ARG}. Set workers.{name}.kubernetes.command to a command that "
                f"serves HTTP on port {CONTAINER_PORT}.",
            )
            return None
        for arg in args:
            option = arg.split("=", 1)[0]
            if option in ("--listen", "--bind"):
                self.error(
                    f"command cannot be adapted to a container: it already passes {option}",
                    loc,
                    f"The renderer gives the runner --listen {LISTEN_ARG}, the pod's only "
                    f"address. Remove {option}, or set workers.{name}.kubernetes.command.",
                )
                return None
        return ["orchestrator", "worker", *args, "--listen", LISTEN_ARG]

    def working_dir(self, p: PoolSettings) -> str | None:
        written = p.k.cwd_as_written
        if p.pool.cwd is None:
            return None
        if written is None:
            written = p.pool.cwd
        if WINDOWS_PATH.match(written):
            self.error(
                f"cwd {written!r} is a Windows path, which a Linux container cannot use",
                self.where("workers", p.pool.key.name, "cwd"),
                "Write cwd relative to the manifest (it is then taken under "
                "session.kubernetes.appRoot in the image).",
            )
            return None
        if written.startswith("/"):
            return normpath(written)
        joined = normpath(self.k.app_root.rstrip("/") + "/" + written)
        if not joined.startswith(normpath(self.k.app_root)):
            self.error(
                f"cwd {written!r} climbs out of the manifest's directory",
                self.where("workers", p.pool.key.name, "cwd"),
                "In the image the manifest's directory is session.kubernetes.appRoot; a relative "
                "cwd must stay inside it. Write an absolute path instead.",
            )
            return None
        return joined

    def pool_documents(self, p: PoolSettings) -> None:
        pool, name = p.pool, p.pool.key.name
        loc = self.where("workers", name)
        image = p.k.image or self.k.image
        if image is None:
            self.error(
                f'pool "{name}" has no container image',
                loc,
                f"Set workers.{name}.kubernetes.image, or session.kubernetes.image for every pool.",
            )
        command = self.container_command(p)
        workdir = self.working_dir(p)
        self.pool_warnings(pool)
        deploy_name = dns_label(name)
        self.claim("ServiceAccount", p.namespace, p.service_account, f"workers.{name}", loc)
        self.claim("Deployment", p.namespace, deploy_name, f"workers.{name}", loc)
        if image is None or command is None:
            return
        self.docs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": self.metadata(p.service_account, p.namespace, p.labels, p.annotations),
                "automountServiceAccountToken": False,
            }
        )
        container: Doc = {"name": "worker", "image": image, "command": command}
        if workdir is not None:
            container["workingDir"] = workdir
        env = self.env(p)
        if env:
            container["env"] = env
        container["ports"] = [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}]
        limits: dict[str, str] = {}
        if pool.limits.cpu is not None:
            limits["cpu"] = quantity_cpu(pool.limits.cpu)
        if pool.limits.memory_bytes is not None:
            limits["memory"] = quantity_bytes(pool.limits.memory_bytes)
        if limits:
            container["resources"] = {"limits": limits}
        container.update(self.probes(pool))
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": p.uid,
            "runAsGroup": p.uid,
        }
        # A read-only root file system still needs somewhere to write temporary files.
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
        selector = {L_SESSION: self.session.key.name, L_POOL: name}
        pod_meta: Doc = {"labels": dict(sorted(p.labels.items()))}
        if p.annotations:
            pod_meta["annotations"] = dict(sorted(p.annotations.items()))
        self.docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": self.metadata(deploy_name, p.namespace, p.labels, p.annotations),
                "spec": {
                    "replicas": pool.processes,
                    "selector": {"matchLabels": dict(sorted(selector.items()))},
                    "template": {
                        "metadata": pod_meta,
                        "spec": {
                            "serviceAccountName": p.service_account,
                            "automountServiceAccountToken": False,
                            "terminationGracePeriodSeconds": math.ceil(pool.shutdown_time_limit_s),
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": p.uid,
                                "runAsGroup": p.uid,
                                "seccompProfile": {"type": seccomp_profile(pool.sandbox)},
                            },
                            "containers": [container],
                            "volumes": [{"name": "tmp", "emptyDir": {}}],
                        },
                    },
                },
            }
        )

    def env(self, p: PoolSettings) -> list[Doc]:
        out: list[Doc] = []
        secret_name = dns_label(p.pool.key.name + "-env")
        secrets = []
        for var in p.pool.env:
            if var.secret:
                secrets.append(var.name)
                out.append(
                    {
                        "name": var.name,
                        "valueFrom": {"secretKeyRef": {"name": secret_name, "key": var.name}},
                    }
                )
            else:
                out.append({"name": var.name, "value": var.value})
        if secrets:
            literal = " ".join(f"--from-literal={n}=..." for n in secrets)
            self.warn(
                f"secret environment variables ({', '.join(secrets)}) are read from Secret "
                f'"{secret_name}", which is not rendered',
                self.where("workers", p.pool.key.name, "env"),
                f"Create it: kubectl create secret generic {secret_name} {literal} "
                f"-n {p.namespace}",
            )
        return out

    def probes(self, pool: WorkerPool) -> Doc:
        out: Doc = {}
        h = pool.health
        if h.path is not None:
            probe: Doc = {
                "httpGet": {"path": h.path, "port": CONTAINER_PORT},
                "periodSeconds": whole_seconds(h.interval_s),
                "timeoutSeconds": whole_seconds(h.timeout_s),
                "failureThreshold": h.unhealthy_threshold,
            }
            out["readinessProbe"] = dict(probe)
            out["livenessProbe"] = dict(probe)
        if pool.startup_time_limit_s > 0:
            period = 5 if pool.startup_time_limit_s >= 10 else 1
            handler: Doc = (
                {"httpGet": {"path": h.path, "port": CONTAINER_PORT}}
                if h.path is not None
                else {"tcpSocket": {"port": CONTAINER_PORT}}
            )
            out["startupProbe"] = {
                **handler,
                "periodSeconds": period,
                "failureThreshold": max(1, math.ceil(pool.startup_time_limit_s / period)),
            }
        return out

    def pool_warnings(self, pool: WorkerPool) -> None:
        name = pool.key.name
        if pool.user != "auto":
            self.no_equivalent("workers", name, "user", pool.user)
        if pool.group is not None:
            self.no_equivalent("workers", name, "group", pool.group)
        if pool.groups:
            self.no_equivalent("workers", name, "groups", ", ".join(pool.groups))
        if pool.allow_root:
            self.no_equivalent("workers", name, "allowRoot", "true")
        for path in changed_paths(pool.restart, RestartPolicy(), "restart"):
            self.no_equivalent("workers", name, path, show_value(pool, path))
        if pool.rapid_fail != RapidFail() and pool.rapid_fail.enabled:
            rf = pool.rapid_fail
            self.warn(
                "no Kubernetes equivalent, not rendered: rapid-fail protection (Kubernetes "
                "restarts a crashing pod forever, with CrashLoopBackOff)",
                self.where("workers", name, "rapidFailProtection"),
                f"http.sys would stop the pool after {rf.max_crashes} crashes within "
                f"{format_duration(rf.interval_s)}; watch for CrashLoopBackOff instead.",
            )
        recycling = pool.recycling
        if recycling.time_s not in (Recycling().time_s, 0):
            self.warn(
                "no Kubernetes equivalent, not rendered: periodic recycling (run 'kubectl "
                f"rollout restart deployment/{dns_label(name)}' on a schedule, e.g. from a "
                "CronJob)",
                self.where("workers", name, "recycling", "time"),
                f"recycling.time is {format_duration(recycling.time_s)}.",
            )
        for path in changed_paths(recycling, Recycling(), "recycling"):
            if path != "recycling.time":
                self.no_equivalent("workers", name, path, show_value(pool, path))
        if pool.limits.pids is not None:
            self.no_equivalent("workers", name, "limits.pids", pool.limits.pids)
        if pool.limits.open_files is not None:
            self.no_equivalent("workers", name, "limits.openFiles", pool.limits.open_files)
        for path in changed_paths(pool.sandbox, Sandbox(), "sandbox"):
            if path != "sandbox.seccomp":  # rendered: the pod's seccompProfile
                self.no_equivalent("workers", name, path, show_value(pool, path))

    # -- queues ----------------------------------------------------------------------------------

    def queue_namespaces(self, pools: Mapping[str, PoolSettings]) -> dict[str, str]:
        out: dict[str, str] = {}
        first: dict[str, str] = {}
        for name, p in sorted(pools.items()):
            queue = p.pool.queue.name
            if queue in out and out[queue] != p.namespace:
                self.error(
                    f'pool "{name}" is in namespace "{p.namespace}", but pool "{first[queue]}", '
                    f'which serves the same queue "{queue}", is in "{out[queue]}"',
                    self.where("workers", name, "kubernetes", "namespace"),
                    "A queue's Service selects its pools' pods, so they must share a namespace.",
                )
                continue
            out.setdefault(queue, p.namespace)
            first.setdefault(queue, name)
        for res in self.desired.of_kind(Kind.QUEUE):
            out.setdefault(res.key.name, self.default_namespace)
        return out

    def queue_documents(self, queue: RequestQueue, namespace: str, gateway_ns: str) -> None:
        name = queue.key.name
        loc = self.where("queues", name)
        if queue.max_length != DEFAULT_MAX_LENGTH:
            self.no_equivalent("queues", name, "maxLength", queue.max_length)
        if queue.verbosity503 is not Verbosity503.LIMITED:
            self.no_equivalent("queues", name, "verbosity503", queue.verbosity503.value)
        if queue.state is State.DISABLED:
            self.warn(
                "no Kubernetes equivalent: a disabled queue (its URL groups are left out, so the "
                "Gateway answers 404 where http.sys answers 503)",
                self.where("queues", name, "state"),
            )
        service = dns_label(name, letter_first=True)
        self.claim("Service", namespace, service, f"queues.{name}", loc)
        self.claim("NetworkPolicy", namespace, service, f"queues.{name}", loc)
        labels = self.common_labels()
        labels[L_QUEUE] = name
        selector = {L_SESSION: self.session.key.name, L_QUEUE: name}
        self.docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": self.metadata(service, namespace, labels),
                "spec": {
                    "selector": dict(sorted(selector.items())),
                    "ports": [
                        {
                            "name": "http",
                            "port": SERVICE_PORT,
                            "targetPort": CONTAINER_PORT,
                            "protocol": "TCP",
                        }
                    ],
                },
            }
        )
        gateway_pods = dict(
            self.k.gateway_labels
            if self.k.gateway_labels is not None
            else ((GATEWAY_NAME_LABEL, self.gateway_name),)
        )
        source_ns = self.k.gateway_namespace or gateway_ns
        self.docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self.metadata(service, namespace, labels),
                "spec": {
                    "podSelector": {"matchLabels": dict(sorted(selector.items()))},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": source_ns}
                                    },
                                    "podSelector": {
                                        "matchLabels": dict(sorted(gateway_pods.items()))
                                    },
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}],
                        }
                    ],
                },
            }
        )

    # -- the Gateway and routes ------------------------------------------------------------------

    @property
    def gateway_name(self) -> str:
        return dns_label(self.session.key.name)

    def routed(self, queues_ns: Mapping[str, str]) -> list[tuple[UrlGroup, list[UrlPrefix]]]:
        """The URL groups that are rendered, with their parsed prefixes."""
        queues = {
            q.key.name: q for q in self.desired.of_kind(Kind.QUEUE) if isinstance(q, RequestQueue)
        }
        out = []
        for res in self.desired.of_kind(Kind.URLGROUP):
            assert isinstance(res, UrlGroup)
            name = res.key.name
            if res.state is State.DISABLED:
                self.warn(
                    "disabled URL group left out (the Gateway answers 404 for its URLs, where "
                    "http.sys answers 503)",
                    self.where("urlGroups", name, "state"),
                )
                continue
            queue = queues.get(res.queue.name) if res.queue else None
            if queue is None or queue.state is State.DISABLED or res.queue is None:
                continue
            if res.queue.name not in queues_ns:
                continue
            prefixes = []
            for index, text in enumerate(res.urls):
                try:
                    prefix = parse_prefix(text)
                except UrlPrefixError as exc:  # validate refused it already; be safe
                    self.error(str(exc), self.where("urlGroups", name, "urls", index))
                    continue
                if prefix.port == 0:
                    self.error(
                        f"URL prefix {text} asks for a free port (0), which a Gateway listener "
                        "cannot have",
                        self.where("urlGroups", name, "urls"),
                        "Give the port the Gateway should listen on.",
                    )
                    continue
                prefixes.append(prefix)
            out.append((res, prefixes))
        return out

    def gateway_and_routes(
        self, routed: list[tuple[UrlGroup, list[UrlPrefix]]], queues_ns: Mapping[str, str]
    ) -> None:
        if not any(prefixes for _, prefixes in routed):
            return
        gateway_ns = self.default_namespace
        gw = self.gateway_name
        loc_session = self.where("session", None)
        if self.k.gateway_class_name is None:
            self.error(
                "session.kubernetes.gatewayClassName is not set",
                self.where("session", None, "kubernetes"),
                "Name the GatewayClass of the cluster's Gateway implementation "
                "(kubectl get gatewayclass).",
            )
        self.claim("Gateway", gateway_ns, gw, "the session", loc_session)
        listeners: dict[tuple[str, int, str | None], str] = {}
        for group, prefixes in routed:
            for prefix in prefixes:
                host = prefix.host if prefix.host_kind is HostKind.EXPLICIT else None
                key = (prefix.scheme, prefix.port, host)
                listeners.setdefault(key, listener_name(key))
                if prefix.host_kind is HostKind.IP:
                    self.warn(
                        f"URL prefix {prefix} is bound to IP address {prefix.host}: a Gateway "
                        "route cannot be, so it serves that port on every address",
                        self.where("urlGroups", group.key.name, "urls"),
                        "The HTTPRoute has no hostnames; the Gateway's own addresses decide "
                        "where it listens.",
                    )
            cased = sorted({p.path for p in prefixes if re.search(r"[a-z]", p.path)})
            if cased:
                upper = cased[0].upper()
                self.warn(
                    "paths match case-insensitively under http.sys but case-sensitively on the "
                    f"Gateway: a request for {upper} reaches this group only under http.sys",
                    self.where("urlGroups", group.key.name, "urls"),
                    "The routes match the lowercase paths only.",
                )
        route_namespaces = {queues_ns[g.queue.name] for g, _ in routed if g.queue is not None}
        allowed = "Same" if route_namespaces <= {gateway_ns} else "All"
        gateway_listeners: list[Doc] = []
        for key in sorted(listeners, key=lambda k: (k[0], k[1], k[2] or "")):
            scheme, port, host = key
            listener: Doc = {"name": listeners[key]}
            if host is not None:
                listener["hostname"] = host
            listener["port"] = port
            listener["protocol"] = "HTTPS" if scheme == "https" else "HTTP"
            if scheme == "https":
                refs = self.certificate_refs(key, routed)
                listener["tls"] = {
                    "mode": "Terminate",
                    "certificateRefs": [
                        {"group": "", "kind": "Secret", "name": ref} for ref in refs
                    ],
                }
            listener["allowedRoutes"] = {"namespaces": {"from": allowed}}
            gateway_listeners.append(listener)
        labels = self.common_labels()
        self.docs.append(
            {
                "apiVersion": GATEWAY_API,
                "kind": "Gateway",
                "metadata": self.metadata(gw, gateway_ns, labels),
                "spec": {
                    "gatewayClassName": self.k.gateway_class_name or "",
                    "listeners": gateway_listeners,
                },
            }
        )
        for group, prefixes in routed:
            self.route_documents(group, prefixes, listeners, queues_ns, gateway_ns)
        precedence = [RoutedPrefix(g.key.name, p) for g, ps in routed for p in ps]
        for d in divergences(precedence):
            self.warn(
                d.message(),
                self.where("urlGroups", d.first.group, "urls"),
                "http.sys tries host buckets in order (strong +, explicit host, IP-bound, weak *) "
                "before it compares path length; the Gateway picks the listener with the exact "
                "hostname, else the one without, then the longest PathPrefix.",
            )

    def certificate_refs(
        self, key: tuple[str, int, str | None], routed: list[tuple[UrlGroup, list[UrlPrefix]]]
    ) -> list[str]:
        scheme, port, host = key
        hosts = {
            p.host
            for _, prefixes in routed
            for p in prefixes
            if (p.scheme, p.port) == (scheme, port)
            and (p.host == host if host else p.host_kind is not HostKind.EXPLICIT)
        }
        secrets = dict(self.k.tls_secrets)
        refs: list[str] = []
        for binding in self.session.tls:
            b_host, _, b_port = binding.address.rpartition(":")
            if int(b_port) != port:
                continue
            if not (b_host in ("+", "*", "0.0.0.0", "[::]") or b_host in hosts):
                continue
            name = secrets.get(binding.address)
            if name is None:
                name = dns_label(f"{self.gateway_name}-tls-{host_word(b_host)}-{b_port}")
                self.warn(
                    f"the certificate for {binding.address} is a file on this host: the Gateway "
                    f'reads it from Secret "{name}", which is not rendered',
                    self.where("session", None, "tls"),
                    f"Create it: kubectl create secret tls {name} --cert={binding.cert_file} "
                    f"--key={binding.key_file} -n {self.default_namespace}; or name an existing "
                    f"Secret in session.kubernetes.tlsSecrets['{binding.address}'].",
                )
            if name not in refs:
                refs.append(name)
        if not refs:
            self.error(
                f"no TLS certificate covers the https listener on port {port}",
                self.where("session", None, "tls"),
                "Add a session.tls entry for the address.",
            )
        return refs

    def route_documents(
        self,
        group: UrlGroup,
        prefixes: list[UrlPrefix],
        listeners: Mapping[tuple[str, int, str | None], str],
        queues_ns: Mapping[str, str],
        gateway_ns: str,
    ) -> None:
        name = group.key.name
        assert group.queue is not None
        namespace = queues_ns[group.queue.name]
        loc = self.where("urlGroups", name)
        for path in changed_paths(group.timeouts, type(group.timeouts)(), "timeouts"):
            if path != "timeouts.requestQueue":
                self.no_equivalent("urlGroups", name, path, show_value(group, path))
        if group.max_connections is not None:
            self.no_equivalent("urlGroups", name, "maxConnections", group.max_connections)
        timeout = group.timeouts.request_queue_s
        if timeout is None and self.session.timeouts.request_queue_s != Timeouts().request_queue_s:
            timeout = self.session.timeouts.request_queue_s
        by_listener: dict[tuple[str, int, str | None], list[UrlPrefix]] = {}
        for prefix in prefixes:
            host = prefix.host if prefix.host_kind is HostKind.EXPLICIT else None
            by_listener.setdefault((prefix.scheme, prefix.port, host), []).append(prefix)
        labels = self.common_labels()
        labels.update({L_GROUP: name, L_QUEUE: group.queue.name})
        service = dns_label(group.queue.name, letter_first=True)
        for key in sorted(by_listener, key=lambda k: (k[0], k[1], k[2] or "")):
            section = listeners[key]
            route = dns_label(name if len(by_listener) == 1 else f"{name}-{section}")
            self.claim("HTTPRoute", namespace, route, f"urlGroups.{name}", loc)
            parent: Doc = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": self.gateway_name}
            if namespace != gateway_ns:
                parent["namespace"] = gateway_ns
            parent["sectionName"] = section
            paths = sorted({path_value(p.path) for p in by_listener[key]})
            rules: list[Doc] = []
            for start in range(0, len(paths), 64):  # the CRD allows 64 matches per rule
                rule: Doc = {
                    "matches": [
                        {"path": {"type": "PathPrefix", "value": value}}
                        for value in paths[start : start + 64]
                    ],
                    "backendRefs": [{"name": service, "port": SERVICE_PORT}],
                }
                if timeout is not None:
                    rule["timeouts"] = {"request": gateway_duration(timeout)}
                rules.append(rule)
            spec: Doc = {"parentRefs": [parent]}
            if key[2] is not None:
                spec["hostnames"] = [key[2]]
            spec["rules"] = rules
            self.docs.append(
                {
                    "apiVersion": GATEWAY_API,
                    "kind": "HTTPRoute",
                    "metadata": self.metadata(route, namespace, labels),
                    "spec": spec,
                }
            )

    # -- all -------------------------------------------------------------------------------------

    def run(self) -> Rendering:
        if self.desired.session is None:
            raise ManifestError([Diagnostic("the manifest has no session")])
        self.check_session()
        pools = self.pools()
        for p in pools.values():
            self.pool_documents(p)
        queues_ns = self.queue_namespaces(pools)
        gateway_ns = self.default_namespace
        for res in self.desired.of_kind(Kind.QUEUE):
            assert isinstance(res, RequestQueue)
            self.queue_documents(res, queues_ns[res.key.name], gateway_ns)
        routed = self.routed(queues_ns)
        self.gateway_and_routes(routed, queues_ns)
        if self.errors:
            raise ManifestError(ordered_diagnostics(self.errors + self.warnings))
        docs = sorted(
            self.docs,
            key=lambda d: (
                KIND_ORDER.index(str(d["kind"])),
                str(_meta(d).get("namespace", "")),
                str(_meta(d)["name"]),
            ),
        )
        return Rendering(tuple(docs), tuple(ordered_diagnostics(self.warnings)))


def _meta(doc: Doc) -> Mapping[str, object]:
    meta = doc["metadata"]
    assert isinstance(meta, Mapping)
    return meta


def render_kubernetes(
    desired: DesiredState, *, where: Where | None = None, namespace: str | None = None
) -> Rendering:
    """Render a desired state as Kubernetes and Gateway API objects.

    Args:
        desired: the loaded manifest's desired state (with its ``kubernetes`` settings).
        where: ``where(section, name, *path)`` → the location of a manifest path, for warnings and
            errors (``LoadedManifest.where``); ``None`` gives locations without a line.
        namespace: replaces ``session.kubernetes.namespace`` (``render --namespace``); pools that
            name their own namespace keep it.

    Returns:
        The documents, in print order, and every warning.

    Raises:
        ManifestError: with every problem that stops the render (a pool without an image, a
            command that cannot be adapted, a name collision, ...) and the warnings.
    """
    if namespace is not None and not (DNS_LABEL.match(namespace) and len(namespace) <= 63):
        raise ManifestError(
            [
                Diagnostic(
                    f"namespace {namespace!r} is not a valid Kubernetes namespace name",
                    "Use lowercase letters, digits and '-', at most 63 characters, starting and "
                    "ending with a letter or digit.",
                )
            ]
        )
    return _Renderer(desired, where or no_where, namespace).run()
