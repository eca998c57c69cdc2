"""Round trip: any valid desired state, written as a manifest with ``to_manifest`` and loaded back with
``load_manifest``, gives the same resources.

The generator builds normalised resources directly (canonical URL prefixes, sorted collections,
durations in whole milliseconds, sizes in whole bytes) and keeps to the manifest's semantic rules:
unique prefixes, TLS for every https port, one scheme per port, a pool for every routed queue, ACLs
that admit their pools, sid/account principals only off the linux backend, no root without
allowRoot. What fails here is a field the manifest cannot express, a default that differs between
schema and model, or a value the loader normalises differently from the model.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.manifest import load_manifest
from orchestrator.model.desired import (
    Backend,
    EnvVar,
    Health,
    ListenerSettings,
    Metrics,
    Principal,
    PrincipalKind,
    RapidFail,
    Recycling,
    RequestQueue,
    Resource,
    ResourceLimits,
    RestartPolicy,
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
from orchestrator.model.serialize import to_manifest

#: ``build`` marks these variables secret whatever the manifest says; the generator avoids them so
#: that ``secret`` is exactly what was drawn.
SECRET_LOOKING = (
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "API_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
)

names = st.from_regex(r"[a-z][a-z0-9-]{0,14}[a-z0-9]|[a-z]", fullmatch=True)
words = st.from_regex(r"[a-z_][a-z0-9_.-]{0,15}", fullmatch=True)
abs_paths = st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True), min_size=1, max_size=3)
# Whole milliseconds up to ten days, in seconds: the manifest writes them exactly.
seconds = st.integers(min_value=0, max_value=10 * 86_400_000).map(lambda ms: ms / 1000)
some_seconds = st.one_of(
    seconds,
    st.integers(min_value=0, max_value=48).map(lambda h: h * 3600.0),
    st.sampled_from([0.1, 0.25, 5.0, 30.0, 90.0, 120.0, 300.0]),
)
# Whole bytes, kept below 2**50 so that every unit's multiple is exact.
sizes = st.one_of(
    st.integers(min_value=0, max_value=2**50),
    st.sampled_from([0, 512, 1000, 1024, 16384, 30_000_000, 8 * 1024**3]),
    st.integers(min_value=1, max_value=4096).map(lambda n: n * 1024**2),
)
env_text = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f\x85\xa0"
    ),
    max_size=24,
)
HOSTS = ["+", "*", "127.0.0.1", "10.1.2.3", "[::1]", "localhost", "api.example.com"]
BACKENDS = list(Backend)


def _abs(parts: list[str]) -> str:
    return "/" + "/".join(p if p not in (".", "..") else "x" for p in parts)


@st.composite
def env_vars(draw: st.DrawFn) -> tuple[EnvVar, ...]:
    """A worker's environment: unique names, some secret, values YAML must quote or escape."""
    env_names = draw(
        st.lists(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
                lambda n: not any(s in n.upper() for s in SECRET_LOOKING)
            ),
            max_size=5,
            unique=True,
        )
    )
    out = [EnvVar(name=n, value=draw(env_text), secret=draw(st.booleans())) for n in env_names]
    return tuple(sorted(out))


@st.composite
def desired_states(draw: st.DrawFn) -> dict[Key, Resource]:
    """A valid, normalised desired state (see the module docstring for the rules it keeps)."""
    backend = draw(st.sampled_from(BACKENDS))
    session_key = Key(Kind.SESSION, draw(names))

    queue_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    # URL prefixes: unique (host, port, path), then one scheme per port.
    raw_prefixes = draw(
        st.lists(
            st.tuples(
                st.sampled_from(HOSTS),
                st.integers(min_value=1, max_value=65535),
                st.lists(st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True), max_size=3),
            ),
            min_size=1,
            max_size=8,
            unique_by=lambda t: (t[0], t[1], tuple(t[2])),
        )
    )
    ports = sorted({port for _, port, _ in raw_prefixes})
    https_ports = {p for p in ports if draw(st.booleans())}
    urls = sorted(
        f"{'https' if port in https_ports else 'http'}://{host}:{port}"
        + ("/" + "/".join(segs) + "/" if segs else "/")
        for host, port, segs in raw_prefixes
    )
    # URL groups: split the prefixes into 1..len groups, each routed to a queue.
    group_count = draw(st.integers(min_value=1, max_value=min(4, len(urls))))
    group_names = draw(st.lists(names, min_size=group_count, max_size=group_count, unique=True))
    owner = [i % group_count for i in range(len(urls))]
    owner = draw(st.permutations(owner))
    routes = {g: draw(st.sampled_from(queue_names)) for g in group_names}

    out: dict[Key, Resource] = {}
    free_ports = [p for p in range(9100, 9200) if p not in ports]
    metrics_port = draw(st.none() | st.sampled_from(free_ports))
    session = Session(
        key=session_key,
        backend=backend,
        run_dir=draw(st.none() | abs_paths.map(_abs)),
        timeouts=Timeouts(
            entity_body_s=draw(some_seconds),
            drain_entity_body_s=draw(some_seconds),
            request_queue_s=draw(some_seconds),
            idle_connection_s=draw(some_seconds),
            header_wait_s=draw(some_seconds),
            min_send_rate=draw(st.integers(min_value=0, max_value=10**6)),
        ),
        limits=SessionLimits(
            max_connections=draw(st.integers(min_value=0, max_value=10**6)),
            max_request_header_bytes=draw(sizes),
            max_url_bytes=draw(sizes),
            max_body_bytes=draw(sizes),
            max_header_fields=draw(st.integers(min_value=1, max_value=10_000)),
        ),
        tls=tuple(
            sorted(
                TlsBinding(
                    address=f"{draw(st.sampled_from(['0.0.0.0', '+', '*', '[::]']))}:{port}",
                    cert_file=f"/etc/ssl/site-{port}.crt",
                    key_file=f"/etc/ssl/private/site-{port}.key",
                )
                for port in sorted(https_ports)
            )
        ),
        listener=ListenerSettings(
            user=draw(st.just("auto") | words),
            group=draw(st.none() | words),
            processes=draw(st.integers(min_value=1, max_value=64) | st.just("auto")),
        ),
        metrics=Metrics(address=None if metrics_port is None else f"127.0.0.1:{metrics_port}"),
        admin_group=draw(st.none() | words),
    )
    out[session.key] = session

    served = sorted(set(routes.values()))
    pools: dict[str, tuple[str, str]] = {}  # pool name -> (queue, effective user)
    for qname in served:
        pool_name = draw(names.filter(lambda n: n not in pools))
        user = draw(st.just("auto") | words | st.just("root"))
        pools[pool_name] = (qname, f"orch-{pool_name}" if user == "auto" else user)
        group = draw(st.none() | words)
        out[Key(Kind.WORKER, pool_name)] = WorkerPool(
            key=Key(Kind.WORKER, pool_name),
            session=session_key,
            queue=Key(Kind.QUEUE, qname),
            command=tuple(draw(st.lists(words, min_size=1, max_size=4))),
            env=draw(env_vars()),
            cwd=draw(st.none() | abs_paths.map(_abs)),
            user=user,
            group=group,
            groups=tuple(sorted(draw(st.sets(words, max_size=3)))),
            allow_root=draw(st.booleans()) or user == "root",
            processes=draw(st.integers(min_value=1, max_value=256)),
            startup_time_limit_s=draw(some_seconds),
            shutdown_time_limit_s=draw(some_seconds),
            health=Health(
                path=draw(st.none() | st.from_regex(r"/[a-z0-9/_-]{0,20}", fullmatch=True)),
                interval_s=draw(some_seconds),
                timeout_s=draw(some_seconds),
                unhealthy_threshold=draw(st.integers(min_value=1, max_value=100)),
            ),
            restart=RestartPolicy(
                initial_backoff_s=draw(some_seconds),
                max_backoff_s=draw(some_seconds),
                reset_after_s=draw(some_seconds),
            ),
            rapid_fail=RapidFail(
                enabled=draw(st.booleans()),
                max_crashes=draw(st.integers(min_value=1, max_value=1000)),
                interval_s=draw(some_seconds),
            ),
            recycling=Recycling(
                time_s=draw(some_seconds),
                requests=draw(st.integers(min_value=0, max_value=10**9)),
                memory_bytes=draw(sizes),
                schedule=tuple(
                    sorted(
                        draw(
                            st.sets(
                                st.builds(
                                    "{:02d}:{:02d}".format,
                                    st.integers(min_value=0, max_value=23),
                                    st.integers(min_value=0, max_value=59),
                                ),
                                max_size=3,
                            )
                        )
                    )
                ),
            ),
            limits=ResourceLimits(
                memory_bytes=draw(st.none() | sizes),
                pids=draw(st.none() | st.integers(min_value=1, max_value=10**6)),
                cpu=draw(
                    st.none() | st.integers(min_value=1, max_value=6400).map(lambda n: n / 100)
                ),
                open_files=draw(st.none() | st.integers(min_value=16, max_value=10**6)),
            ),
        )

    for qname in queue_names:
        acl: tuple[Principal, ...] | None = None
        if draw(st.booleans()):
            principals = {
                Principal(kind=PrincipalKind.USER, name=user)
                for queue, user in pools.values()
                if queue == qname
            }
            kinds = [PrincipalKind.USER, PrincipalKind.GROUP]
            if backend is not Backend.LINUX:
                kinds += [PrincipalKind.SID, PrincipalKind.ACCOUNT]
            for kind in draw(st.lists(st.sampled_from(kinds), max_size=3)):
                if kind is PrincipalKind.SID:
                    name = draw(st.from_regex(r"S-1-5-21(-[0-9]{1,10}){1,4}", fullmatch=True))
                elif kind is PrincipalKind.ACCOUNT:
                    name = f"{draw(words).upper()}\\{draw(words)}"
                else:
                    name = draw(words)
                principals.add(Principal(kind=kind, name=name))
            acl = tuple(sorted(principals))
        out[Key(Kind.QUEUE, qname)] = RequestQueue(
            key=Key(Kind.QUEUE, qname),
            session=session_key,
            max_length=draw(st.integers(min_value=1, max_value=2**31 - 1)),
            state=draw(st.sampled_from(list(State))),
            verbosity503=draw(st.sampled_from(list(Verbosity503))),
            acl=acl,
        )

    optional_seconds = st.none() | some_seconds
    for index, gname in enumerate(group_names):
        out[Key(Kind.URLGROUP, gname)] = UrlGroup(
            key=Key(Kind.URLGROUP, gname),
            session=session_key,
            queue=Key(Kind.QUEUE, routes[gname]),
            urls=tuple(u for u, o in zip(urls, owner, strict=True) if o == index),
            state=draw(st.sampled_from(list(State))),
            timeouts=TimeoutOverrides(
                entity_body_s=draw(optional_seconds),
                drain_entity_body_s=draw(optional_seconds),
                request_queue_s=draw(optional_seconds),
                idle_connection_s=draw(optional_seconds),
                header_wait_s=draw(optional_seconds),
                min_send_rate=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
            ),
            max_connections=draw(st.none() | st.integers(min_value=1, max_value=10**6)),
        )
    return out


def _document(resources: dict[Key, Resource]) -> dict[str, Any]:
    """The manifest a user would write for ``resources``: maps keyed by name, session by itself."""
    doc: dict[str, Any] = {"apiVersion": "orchestrator/v1"}
    sections = {Kind.QUEUE: "queues", Kind.URLGROUP: "urlGroups", Kind.WORKER: "workers"}
    for section in sections.values():
        doc[section] = {}
    for key, resource in resources.items():
        if key.kind is Kind.SESSION:
            doc["session"] = to_manifest(resource)
        else:
            doc[sections[key.kind]][key.name] = to_manifest(resource)
    return doc


@settings(max_examples=60, deadline=None)
@given(resources=desired_states())
def test_a_desired_state_survives_manifest_and_load(resources: dict[Key, Resource]) -> None:
    """``load_manifest(dump(to_manifest(state)))`` gives back exactly the same resources."""
    text = yaml.safe_dump(_document(resources), sort_keys=False, allow_unicode=True)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "site.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        loaded = load_manifest(path)
    assert resources == dict(loaded.desired.resources), text
