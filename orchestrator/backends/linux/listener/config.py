"""The listener's view of its configuration, built from a ``config`` message.

Owns: ``Settings``, ``QueueRoute``, ``Route`` and ``Config``, and ``build_config``, which turns the
typed message (``message.ListenerConfig``, read strictly off the channel) into them. A ``Config`` is
immutable; the listener swaps the whole object between requests, so a request is routed by exactly
one table.

Must not import: the controller's side (``backend``, ``listener_ctl``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.backends.linux.listener.message import ListenerConfig
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


def build_config(message: ListenerConfig) -> Config:
    """The listener's view of a ``config`` message (prefixes it cannot parse are skipped).

    Args:
        message: the configuration as read by ``ListenerConfig.from_message``.
    """
    limits, timeouts = message.session.limits, message.session.timeouts
    settings = Settings(
        max_connections=limits.max_connections,
        max_request_header_bytes=limits.max_request_header_bytes,
        max_url_bytes=limits.max_url_bytes,
        max_body_bytes=limits.max_body_bytes,
        max_header_fields=limits.max_header_fields,
        header_wait_s=timeouts.header_wait_s,
        idle_connection_s=timeouts.idle_connection_s,
        entity_body_s=timeouts.entity_body_s,
        drain_entity_body_s=timeouts.drain_entity_body_s,
        request_queue_s=timeouts.request_queue_s,
        min_send_rate=timeouts.min_send_rate,
    )
    queues = {
        q.name: QueueRoute(
            name=q.name,
            path=q.path,
            state=q.state,
            reason=q.reason,
            verbosity503=q.verbosity503,
            retry_after=q.retry_after,
        )
        for q in message.queues
    }
    entries = []
    for r in message.routes:
        try:
            prefix = parse_prefix(r.prefix)
        except UrlPrefixError:
            continue
        route = Route(
            prefix=str(prefix),
            group=r.group,
            queue=None if r.queue is None else queues.get(r.queue),
            state=r.state,
            max_connections=r.max_connections,
            entity_body_s=r.timeouts.entity_body_s,
            request_queue_s=r.timeouts.request_queue_s,
        )
        entries.append((prefix, route))
    return Config(message.version, settings, RouteTable.build(entries), queues)
