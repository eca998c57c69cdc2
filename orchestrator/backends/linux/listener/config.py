"""The listener's view of its configuration, built from a ``config`` message.

Owns: ``Settings``, ``QueueRoute``, ``Route`` and ``Config``. A ``Config`` is immutable; the
listener swaps the whole object between requests, so a request is routed by exactly one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.model.urlprefix import UrlPrefixError, parse_prefix
from orchestrator.routing.table import RouteTable


@dataclass(frozen=True, slots=True)
class Settings:
    """Limits and timers (seconds; bytes; B/s)."""

    max_connections: int = 0
    max_request_header_bytes: int = 16384
    max_url_bytes: int = 8192
    max_body_bytes: int = 30_000_000
    max_header_fields: int = 100
    header_wait_s: float = 120.0
    idle_connection_s: float = 120.0
    entity_body_s: float = 120.0
    drain_entity_body_s: float = 120.0
    request_queue_s: float = 120.0
    min_send_rate: int = 150


@dataclass(frozen=True, slots=True)
class QueueRoute:
    """Where a queue's requests go, and whether it takes them."""

    name: str
    path: str
    state: str  # enabled | disabled | offline
    reason: str  # "", Disabled, AppOffline
    verbosity503: str  # basic | limited | full
    retry_after: int


@dataclass(frozen=True, slots=True)
class Route:
    """A URL group's registration of one prefix."""

    prefix: str
    group: str
    queue: QueueRoute | None
    state: str
    max_connections: int | None
    entity_body_s: float
    request_queue_s: float


@dataclass(frozen=True, slots=True)
class Config:
    """One version of the routing table and settings."""

    version: int
    settings: Settings
    table: RouteTable[Route]
    queues: Mapping[str, QueueRoute]


def _num(data: Mapping[str, object], key: str, default: float) -> float:
    value = data.get(key)
    return default if value is None else float(str(value))


def build_config(message: Mapping[str, object]) -> Config:
    """Turn a ``config`` message into a ``Config`` (invalid prefixes are skipped)."""
    session = message.get("session") if isinstance(message.get("session"), dict) else {}
    assert isinstance(session, dict)
    limits = session.get("limits") if isinstance(session.get("limits"), dict) else {}
    timeouts = session.get("timeouts") if isinstance(session.get("timeouts"), dict) else {}
    assert isinstance(limits, dict)
    assert isinstance(timeouts, dict)
    settings = Settings(
        max_connections=int(_num(limits, "maxConnections", 0)),
        max_request_header_bytes=int(_num(limits, "maxRequestHeaderBytes", 16384)),
        max_url_bytes=int(_num(limits, "maxUrlBytes", 8192)),
        max_body_bytes=int(_num(limits, "maxBodyBytes", 30_000_000)),
        max_header_fields=int(_num(limits, "maxHeaderFields", 100)),
        header_wait_s=_num(timeouts, "headerWait", 120.0),
        idle_connection_s=_num(timeouts, "idleConnection", 120.0),
        entity_body_s=_num(timeouts, "entityBody", 120.0),
        drain_entity_body_s=_num(timeouts, "drainEntityBody", 120.0),
        request_queue_s=_num(timeouts, "requestQueue", 120.0),
        min_send_rate=int(_num(timeouts, "minSendRate", 150)),
    )
    raw_queues = message.get("queues") if isinstance(message.get("queues"), dict) else {}
    assert isinstance(raw_queues, dict)
    queues = {
        str(name): QueueRoute(
            name=str(name),
            path=str(q.get("path")),
            state=str(q.get("state", "enabled")),
            reason=str(q.get("reason", "")),
            verbosity503=str(q.get("verbosity503", "limited")),
            retry_after=int(_num(q, "retry_after", 5)),
        )
        for name, q in raw_queues.items()
        if isinstance(q, dict)
    }
    entries = []
    routes = message.get("routes") if isinstance(message.get("routes"), list) else []
    assert isinstance(routes, list)
    for r in routes:
        if not isinstance(r, dict):
            continue
        try:
            prefix = parse_prefix(str(r.get("prefix")))
        except UrlPrefixError:
            continue
        t = r.get("timeouts") if isinstance(r.get("timeouts"), dict) else {}
        assert isinstance(t, dict)
        max_conn = r.get("max_connections")
        entries.append(
            (
                prefix,
                Route(
                    prefix=str(prefix),
                    group=str(r.get("group")),
                    queue=queues.get(str(r.get("queue"))),
                    state=str(r.get("state", "enabled")),
                    max_connections=None if max_conn is None else int(str(max_conn)),
                    entity_body_s=_num(t, "entityBody", settings.entity_body_s),
                    request_queue_s=_num(t, "requestQueue", settings.request_queue_s),
                ),
            )
        )
    return Config(int(str(message.get("version", 0))), settings, RouteTable.build(entries), queues)
