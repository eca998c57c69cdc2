"""Schema-valid, defaults-filled manifest data → normalised resources.

Owns: ``build_resources`` and ``build_kubernetes`` (the renderer's settings, kept out of the
resources so that they never take part in a plan). Durations become seconds, sizes bytes, URL
prefixes their canonical form, collections are sorted, and secret-looking environment variables
are marked secret. Invalid URL prefixes are left as written here; ``checks`` reports them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from orchestrator.model.desired import (
    Backend,
    Dashboard,
    DashboardAuth,
    EnvVar,
    FilesystemDefault,
    FilesystemSandbox,
    Health,
    KubernetesPool,
    KubernetesSettings,
    ListenerSettings,
    Metrics,
    NetworkSandbox,
    Principal,
    PrincipalKind,
    RapidFail,
    Recycling,
    RequestQueue,
    Resource,
    ResourceLimits,
    RestartPolicy,
    Sandbox,
    SeccompMode,
    Session,
    SessionLimits,
    State,
    TimeoutOverrides,
    Timeouts,
    TlsBinding,
    UrlGroup,
    Verbosity503,
    WorkerPool,
)
from orchestrator.model.ids import Key, Kind
from orchestrator.model.units import parse_duration, parse_size
from orchestrator.model.urlprefix import UrlPrefixError, parse_prefix

_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIAL", re.I)

Data = Mapping[str, object]


def _d(data: Data, name: str) -> Data:
    value = data.get(name) or {}
    assert isinstance(value, Mapping)
    return value


def _int(value: object) -> int:
    """An integer field (JSON Schema lets 2.0 pass as an integer; it means 2)."""
    return int(float(str(value)))


def _dur(value: object) -> float:
    return parse_duration(str(value))


def _dur_opt(value: object) -> float | None:
    return None if value is None else parse_duration(str(value))


def _size_opt(value: object) -> int | None:
    return None if value is None else parse_size(str(value))


def _int_opt(value: object) -> int | None:
    return None if value is None else _int(value)


def _access_log(value: object) -> str:
    """``session.listener.accessLog``: YAML's ``on``/``off`` arrive as booleans."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _str_opt(value: object) -> str | None:
    return None if value is None else str(value)


def _strs(value: object) -> tuple[str, ...]:
    assert isinstance(value, list | tuple)
    return tuple(str(v) for v in value)


def canonical_url(text: str) -> str:
    """The canonical form of a URL prefix, or the text itself when it does not parse."""
    try:
        return str(parse_prefix(text))
    except UrlPrefixError:
        return text


def _session(data: Data) -> Session:
    t, lim, lst = _d(data, "timeouts"), _d(data, "limits"), _d(data, "listener")
    tls_items = data.get("tls") or []
    assert isinstance(tls_items, list)
    return Session(
        key=Key(Kind.SESSION, str(data.get("name", "main"))),
        backend=Backend(str(data["backend"])),
        run_dir=_str_opt(data.get("runDir")),
        state_dir=_str_opt(data.get("stateDir")),
        timeouts=Timeouts(
            entity_body_s=_dur(t["entityBody"]),
            drain_entity_body_s=_dur(t["drainEntityBody"]),
            request_queue_s=_dur(t["requestQueue"]),
            idle_connection_s=_dur(t["idleConnection"]),
            header_wait_s=_dur(t["headerWait"]),
            min_send_rate=_int(t["minSendRate"]),
        ),
        limits=SessionLimits(
            max_connections=_int(lim["maxConnections"]),
            max_request_header_bytes=parse_size(str(lim["maxRequestHeaderBytes"])),
            max_url_bytes=parse_size(str(lim["maxUrlBytes"])),
            max_body_bytes=parse_size(str(lim["maxBodyBytes"])),
            max_header_fields=_int(lim["maxHeaderFields"]),
        ),
        tls=tuple(
            sorted(
                TlsBinding(
                    address=str(item["address"]).lower(),
                    cert_file=str(item["certFile"]),
                    key_file=str(item["keyFile"]),
                )
                for item in tls_items
            )
        ),
        listener=ListenerSettings(
            user=str(lst["user"]),
            group=_str_opt(lst.get("group")),
            processes="auto" if lst["processes"] == "auto" else _int(lst["processes"]),
            open_files=_int_opt(lst.get("openFiles")),
            access_log=_access_log(lst.get("accessLog", "on")),
            sandbox=_sandbox(_d(lst, "sandbox")),
        ),
        metrics=Metrics(address=_str_opt(_d(data, "metrics").get("address"))),
        dashboard=_dashboard(_d(data, "dashboard")),
        admin_group=_str_opt(data.get("adminGroup")),
    )


def _dashboard(data: Data) -> Dashboard:
    auth = data.get("auth")
    return Dashboard(
        address=_str_opt(data.get("address")),
        auth=DashboardAuth(
            token_file=_str_opt(auth.get("tokenFile")), basic_file=_str_opt(auth.get("basicFile"))
        )
        if isinstance(auth, Mapping)
        else None,
    )


def _queue(name: str, data: Data, session: Key) -> RequestQueue:
    acl_items = data.get("acl")
    acl: tuple[Principal, ...] | None = None
    if acl_items is not None:
        assert isinstance(acl_items, list)
        acl = tuple(
            sorted(
                {
                    Principal(kind=PrincipalKind(k), name=str(v))
                    for item in acl_items
                    for k, v in dict(item).items()
                }
            )
        )
    return RequestQueue(
        key=Key(Kind.QUEUE, name),
        session=session,
        max_length=_int(data["maxLength"]),
        state=State(str(data["state"])),
        verbosity503=Verbosity503(str(data["verbosity503"])),
        acl=acl,
    )


def _urlgroup(name: str, data: Data, session: Key) -> UrlGroup:
    t = _d(data, "timeouts")
    return UrlGroup(
        key=Key(Kind.URLGROUP, name),
        session=session,
        queue=Key(Kind.QUEUE, str(data["queue"])),
        urls=tuple(sorted({canonical_url(u) for u in _strs(data["urls"])})),
        state=State(str(data["state"])),
        timeouts=TimeoutOverrides(
            entity_body_s=_dur_opt(t.get("entityBody")),
            drain_entity_body_s=_dur_opt(t.get("drainEntityBody")),
            request_queue_s=_dur_opt(t.get("requestQueue")),
            idle_connection_s=_dur_opt(t.get("idleConnection")),
            header_wait_s=_dur_opt(t.get("headerWait")),
            min_send_rate=_int_opt(t.get("minSendRate")),
        ),
        max_connections=_int_opt(data.get("maxConnections")),
    )


def _env(data: object) -> tuple[EnvVar, ...]:
    assert isinstance(data, Mapping)
    out = []
    for name, raw in data.items():
        if isinstance(raw, Mapping):
            value, secret = str(raw["value"]), bool(raw.get("secret", False))
        else:
            value, secret = str(raw), False
        secret = secret or bool(_SECRET_NAME.search(str(name)))
        out.append(EnvVar(name=str(name), value=value, secret=secret))
    return tuple(sorted(out))


def _worker(name: str, data: Data, session: Key) -> WorkerPool:
    h, r, rf, rc, lim = (
        _d(data, "health"),
        _d(data, "restart"),
        _d(data, "rapidFailProtection"),
        _d(data, "recycling"),
        _d(data, "limits"),
    )
    cpu = lim.get("cpu")
    return WorkerPool(
        key=Key(Kind.WORKER, name),
        session=session,
        queue=Key(Kind.QUEUE, str(data["queue"])),
        command=_strs(data["command"]),
        env=_env(data.get("env") or {}),
        cwd=_str_opt(data.get("cwd")),
        user=str(data["user"]),
        group=_str_opt(data.get("group")),
        groups=tuple(sorted(set(_strs(data.get("groups") or [])))),
        allow_root=bool(data["allowRoot"]),
        processes=_int(data["processes"]),
        startup_time_limit_s=_dur(data["startupTimeLimit"]),
        shutdown_time_limit_s=_dur(data["shutdownTimeLimit"]),
        health=Health(
            path=_str_opt(h.get("path")),
            interval_s=_dur(h["interval"]),
            timeout_s=_dur(h["timeout"]),
            unhealthy_threshold=_int(h["unhealthyThreshold"]),
        ),
        restart=RestartPolicy(
            initial_backoff_s=_dur(r["initialBackoff"]),
            max_backoff_s=_dur(r["maxBackoff"]),
            reset_after_s=_dur(r["resetAfter"]),
        ),
        rapid_fail=RapidFail(
            enabled=bool(rf["enabled"]),
            max_crashes=_int(rf["maxCrashes"]),
            interval_s=_dur(rf["interval"]),
        ),
        recycling=Recycling(
            time_s=_dur(rc["time"]),
            requests=_int(rc["requests"]),
            memory_bytes=parse_size(str(rc["memory"])),
            schedule=tuple(sorted(set(_strs(rc.get("schedule") or [])))),
        ),
        limits=ResourceLimits(
            memory_bytes=_size_opt(lim.get("memory")),
            pids=_int_opt(lim.get("pids")),
            cpu=None if cpu is None else float(str(cpu)),
            open_files=_int_opt(lim.get("openFiles")),
        ),
        sandbox=_sandbox(_d(data, "sandbox")),
    )


def _sandbox(data: Data) -> Sandbox:
    files, net = _d(data, "filesystem"), _d(data, "network")
    default = files.get("default")
    connect = net.get("connect")
    return Sandbox(
        # YAML reads a bare ``off`` as false.
        seccomp=SeccompMode("off" if data.get("seccomp") is False else str(data["seccomp"])),
        filesystem=FilesystemSandbox(
            default=None if default is None else FilesystemDefault(str(default)),
            read_only=tuple(sorted(set(_strs(files.get("readOnly") or [])))),
            read_write=tuple(sorted(set(_strs(files.get("readWrite") or [])))),
        ),
        network=NetworkSandbox(
            connect=None if connect is None else tuple(sorted(set(_strs(connect))))
        ),
        required=bool(data.get("required", False)),
    )


def build_resources(doc: Data) -> dict[Key, Resource]:
    """Build every resource of a merged, schema-valid, defaults-filled manifest."""
    session = _session(_d(doc, "session"))
    out: dict[Key, Resource] = {session.key: session}
    for name, data in _d(doc, "queues").items():
        q = _queue(name, _as_data(data), session.key)
        out[q.key] = q
    for name, data in _d(doc, "urlGroups").items():
        g = _urlgroup(name, _as_data(data), session.key)
        out[g.key] = g
    for name, data in _d(doc, "workers").items():
        w = _worker(name, _as_data(data), session.key)
        out[w.key] = w
    return out


def _as_data(value: object) -> Data:
    assert isinstance(value, Mapping)
    return value


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    assert isinstance(value, Mapping)
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def _pairs_opt(value: object) -> tuple[tuple[str, str], ...] | None:
    return None if value is None else _pairs(value)


def build_kubernetes(doc: Data, cwd_as_written: Mapping[str, str]) -> KubernetesSettings:
    """The ``kubernetes:`` settings of a merged, schema-valid, defaults-filled manifest.

    Args:
        doc: the manifest data.
        cwd_as_written: each pool's ``cwd`` as written, before it was made absolute on this host.
    """
    k = _d(_d(doc, "session"), "kubernetes")
    selector = _d(k, "gatewaySelector")
    pools = []
    for name, data in sorted(_d(doc, "workers").items()):
        pk = _d(_as_data(data), "kubernetes")
        command = pk.get("command")
        run_as_user = pk.get("runAsUser")
        pools.append(
            (
                str(name),
                KubernetesPool(
                    image=_str_opt(pk.get("image")),
                    namespace=_str_opt(pk.get("namespace")),
                    service_account_prefix=_str_opt(pk.get("serviceAccountPrefix")),
                    command=None if command is None else _strs(command),
                    labels=_pairs_opt(pk.get("labels")),
                    annotations=_pairs_opt(pk.get("annotations")),
                    run_as_user=_int_opt(run_as_user),
                    cwd_as_written=cwd_as_written.get(str(name)),
                ),
            )
        )
    return KubernetesSettings(
        image=_str_opt(k.get("image")),
        namespace=str(k.get("namespace", "default")),
        gateway_class_name=_str_opt(k.get("gatewayClassName")),
        service_account_prefix=str(k.get("serviceAccountPrefix", "orch-")),
        labels=_pairs(k.get("labels") or {}),
        annotations=_pairs(k.get("annotations") or {}),
        gateway_namespace=_str_opt(selector.get("namespace")),
        gateway_labels=_pairs_opt(selector.get("matchLabels")),
        tls_secrets=tuple(sorted((str(a).lower(), str(s)) for a, s in _d(k, "tlsSecrets").items())),
        app_root=str(k.get("appRoot", "/app")),
        pools=tuple(pools),
    )
