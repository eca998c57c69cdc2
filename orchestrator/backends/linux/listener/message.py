"""The ``config`` message: the listener's configuration as one typed value, both ends of the channel.

Owns: ``ListenerConfig`` and its frozen parts (``Limits``, ``Timeouts``, ``TlsCertificate``,
``SessionConfig``, ``QueueConfig``, ``RouteConfig``, ``SocketConfig``, ``AccessLogConfig``), their wire form
(``to_message``, a JSON-able dict with ``type: config`` and ``fd_count``, what ``channel.Channel``
sends) and the strict reading of it (``from_message``: a message that is not exactly this shape
raises ``MessageError`` naming the field). The controller builds the value (``LinuxBackend``), the
listener manager adds the version and the sockets (``dataclasses.replace``), and each listener
process reads it back and builds its routing table from it (``config.build_config``).

Both processes run the same code, so the reading is strict: a missing field, a field of the wrong
type or an unknown field is an error, never a default.

Must not import: ``backend``, ``listener_ctl`` or anything else of the controller's side (the listener
process imports this module); nothing outside the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final

MESSAGE_TYPE: Final = "config"


class MessageError(ValueError):
    """A ``config`` message that is not what ``to_message`` writes; ``field`` is its dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"config message: {field}: {problem}")
        self.field = field
        self.problem = problem


# -- reading helpers (each names the field it reads) ----------------------------------------------
def _object(data: object, path: str) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise MessageError(path, f"expected an object, got {type(data).__name__}")
    return data


def _keys(data: Mapping[str, object], path: str, known: tuple[str, ...]) -> None:
    for key in data:
        if key not in known:
            raise MessageError(_join(path, str(key)), "unknown field")
    for key in known:
        if key not in data:
            raise MessageError(_join(path, key), "missing")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _str(data: Mapping[str, object], key: str, path: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise MessageError(_join(path, key), f"expected a string, got {value!r}")
    return value


def _opt_str(data: Mapping[str, object], key: str, path: str) -> str | None:
    return None if data[key] is None else _str(data, key, path)


def _int(data: Mapping[str, object], key: str, path: str) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageError(_join(path, key), f"expected an integer, got {value!r}")
    return value


def _opt_int(data: Mapping[str, object], key: str, path: str) -> int | None:
    return None if data[key] is None else _int(data, key, path)


def _float(data: Mapping[str, object], key: str, path: str) -> float:
    value = data[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MessageError(_join(path, key), f"expected a number, got {value!r}")
    return float(value)


def _list(data: Mapping[str, object], key: str, path: str) -> list[object]:
    value = data[key]
    if not isinstance(value, list):
        raise MessageError(_join(path, key), f"expected a list, got {type(value).__name__}")
    return value


# -- the parts --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The session's request and connection limits (bytes; ``max_connections`` 0: unlimited)."""

    max_connections: int = 0
    max_request_header_bytes: int = 16384
    max_url_bytes: int = 8192
    max_body_bytes: int = 30_000_000
    max_header_fields: int = 100

    _WIRE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("max_connections", "maxConnections"),
        ("max_request_header_bytes", "maxRequestHeaderBytes"),
        ("max_url_bytes", "maxUrlBytes"),
        ("max_body_bytes", "maxBodyBytes"),
        ("max_header_fields", "maxHeaderFields"),
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form (the manifest's spelling, as before this type existed)."""
        return {wire: getattr(self, name) for name, wire in self._WIRE}

    @classmethod
    def from_wire(cls, data: object, path: str) -> Limits:
        """Read the wire form strictly (``MessageError`` names the bad field)."""
        obj = _object(data, path)
        _keys(obj, path, tuple(wire for _, wire in cls._WIRE))
        return cls(**{name: _int(obj, wire, path) for name, wire in cls._WIRE})


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Connection timers (seconds) and the minimum send rate (B/s)."""

    entity_body_s: float = 120.0
    drain_entity_body_s: float = 120.0
    request_queue_s: float = 120.0
    idle_connection_s: float = 120.0
    header_wait_s: float = 120.0
    min_send_rate: int = 150

    _WIRE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("entity_body_s", "entityBody"),
        ("drain_entity_body_s", "drainEntityBody"),
        ("request_queue_s", "requestQueue"),
        ("idle_connection_s", "idleConnection"),
        ("header_wait_s", "headerWait"),
        ("min_send_rate", "minSendRate"),
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form (the manifest's spelling)."""
        return {wire: getattr(self, name) for name, wire in self._WIRE}

    @classmethod
    def from_wire(cls, data: object, path: str) -> Timeouts:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, tuple(wire for _, wire in cls._WIRE))
        return cls(
            entity_body_s=_float(obj, "entityBody", path),
            drain_entity_body_s=_float(obj, "drainEntityBody", path),
            request_queue_s=_float(obj, "requestQueue", path),
            idle_connection_s=_float(obj, "idleConnection", path),
            header_wait_s=_float(obj, "headerWait", path),
            min_send_rate=_int(obj, "minSendRate", path),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsCertificate:
    """A certificate and its key (PEM text) for a ``host:port`` address as the manifest names it
    (its port may be 0: the free port the controller bound for that address)."""

    address: str
    cert_pem: str = field(repr=False)
    key_pem: str = field(repr=False)

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form."""
        return {"address": self.address, "cert_pem": self.cert_pem, "key_pem": self.key_pem}

    @classmethod
    def from_wire(cls, data: object, path: str) -> TlsCertificate:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, ("address", "cert_pem", "key_pem"))
        return cls(
            address=_str(obj, "address", path),
            cert_pem=_str(obj, "cert_pem", path),
            key_pem=_str(obj, "key_pem", path),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """What the listener takes from the session: its name, limits, timers and certificates."""

    name: str = ""
    limits: Limits = Limits()
    timeouts: Timeouts = Timeouts()
    tls: tuple[TlsCertificate, ...] = ()

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form."""
        return {
            "name": self.name,
            "limits": self.limits.to_wire(),
            "timeouts": self.timeouts.to_wire(),
            "tls": [t.to_wire() for t in self.tls],
        }

    @classmethod
    def from_wire(cls, data: object, path: str) -> SessionConfig:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, ("name", "limits", "timeouts", "tls"))
        return cls(
            name=_str(obj, "name", path),
            limits=Limits.from_wire(obj["limits"], _join(path, "limits")),
            timeouts=Timeouts.from_wire(obj["timeouts"], _join(path, "timeouts")),
            tls=tuple(
                TlsCertificate.from_wire(item, f"{_join(path, 'tls')}[{i}]")
                for i, item in enumerate(_list(obj, "tls", path))
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """Where a queue's requests go and whether it takes them."""

    name: str
    path: str
    state: str = "enabled"  # enabled | disabled | offline
    reason: str = ""  # "", Disabled, AppOffline
    verbosity503: str = "limited"  # basic | limited | full
    retry_after: int = 5

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form (the name is its key in ``queues``)."""
        return {
            "path": self.path,
            "state": self.state,
            "reason": self.reason,
            "verbosity503": self.verbosity503,
            "retry_after": self.retry_after,
        }

    @classmethod
    def from_wire(cls, name: str, data: object, path: str) -> QueueConfig:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, ("path", "state", "reason", "verbosity503", "retry_after"))
        return cls(
            name=name,
            path=_str(obj, "path", path),
            state=_str(obj, "state", path),
            reason=_str(obj, "reason", path),
            verbosity503=_str(obj, "verbosity503", path),
            retry_after=_int(obj, "retry_after", path),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteConfig:
    """One URL prefix of a URL group, with the group's queue, state, limit and timers."""

    prefix: str
    group: str
    queue: str | None = None
    state: str = "enabled"
    max_connections: int | None = None
    timeouts: Timeouts = Timeouts()

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form."""
        return {
            "prefix": self.prefix,
            "group": self.group,
            "queue": self.queue,
            "state": self.state,
            "max_connections": self.max_connections,
            "timeouts": self.timeouts.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: object, path: str) -> RouteConfig:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, ("prefix", "group", "queue", "state", "max_connections", "timeouts"))
        return cls(
            prefix=_str(obj, "prefix", path),
            group=_str(obj, "group", path),
            queue=_opt_str(obj, "queue", path),
            state=_str(obj, "state", path),
            max_connections=_opt_int(obj, "max_connections", path),
            timeouts=Timeouts.from_wire(obj["timeouts"], _join(path, "timeouts")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketConfig:
    """A listening socket attached to the message (in ``sockets`` order): its stable ``id``, the
    address it is bound to (``port``: the bound port) and the port the manifest asked for
    (``asked_port``: the same, or 0 when any free port would do; TLS bindings name this one)."""

    id: str
    scheme: str
    host: str
    port: int
    asked_port: int

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form."""
        return {
            "id": self.id,
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "asked_port": self.asked_port,
        }

    @classmethod
    def from_wire(cls, data: object, path: str) -> SocketConfig:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, ("id", "scheme", "host", "port", "asked_port"))
        return cls(
            id=_str(obj, "id", path),
            scheme=_str(obj, "scheme", path),
            host=_str(obj, "host", path),
            port=_int(obj, "port", path),
            asked_port=_int(obj, "asked_port", path),
        )


#: How access lines are written: ``json`` (one object a line) or ``text`` (``key=value``).
ACCESS_FORMATS: Final = ("json", "text")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessLogConfig:
    """The access log: off, or written to the fd sent after the sockets (the controller's stderr
    or a file it opened; a new fd with each message, so that a reopened file takes over), in
    ``format``, each line starting with ``prefix`` (``<6>`` on the journal)."""

    enabled: bool = False
    format: str = "json"
    prefix: str = ""

    def to_wire(self) -> dict[str, object]:
        """The JSON-able form."""
        return {"enabled": self.enabled, "format": self.format, "prefix": self.prefix}

    @classmethod
    def from_wire(cls, data: object, path: str) -> AccessLogConfig:
        """Read the wire form strictly."""
        obj = _object(data, path)
        _keys(obj, path, ("enabled", "format", "prefix"))
        enabled = obj["enabled"]
        if not isinstance(enabled, bool):
            raise MessageError(_join(path, "enabled"), f"expected a boolean, got {enabled!r}")
        fmt = _str(obj, "format", path)
        if fmt not in ACCESS_FORMATS:
            raise MessageError(_join(path, "format"), f"expected one of {ACCESS_FORMATS}")
        return cls(enabled=enabled, format=fmt, prefix=_str(obj, "prefix", path))


# -- the message ------------------------------------------------------------------------------
_TOP: Final = (
    "type",
    "version",
    "session",
    "routes",
    "queues",
    "sockets",
    "access_log",
    "fd_count",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerConfig:
    """One version of the listener's configuration: settings, routing table, queues and the
    listening sockets sent with it (one fd per socket, in order), then the access log's fd when
    it is on."""

    version: int = 0
    session: SessionConfig = SessionConfig()
    routes: tuple[RouteConfig, ...] = ()
    queues: tuple[QueueConfig, ...] = ()
    sockets: tuple[SocketConfig, ...] = ()
    access_log: AccessLogConfig = AccessLogConfig()

    @property
    def fd_count(self) -> int:
        """The fds sent with the message: one per socket, and the access log's."""
        return len(self.sockets) + (1 if self.access_log.enabled else 0)

    def to_message(self) -> dict[str, object]:
        """The ``config`` message as it goes over the channel (JSON-able); ``fd_count`` tells the
        channel how many of the fds received are this message's."""
        return {
            "type": MESSAGE_TYPE,
            "version": self.version,
            "session": self.session.to_wire(),
            "routes": [r.to_wire() for r in self.routes],
            "queues": {q.name: q.to_wire() for q in self.queues},
            "sockets": [s.to_wire() for s in self.sockets],
            "access_log": self.access_log.to_wire(),
            "fd_count": self.fd_count,
        }

    @classmethod
    def from_message(cls, message: Mapping[str, object]) -> ListenerConfig:
        """Read a ``config`` message.

        Args:
            message: the message as received (a decoded JSON object).

        Returns:
            The configuration it carries.

        Raises:
            MessageError: the message is not exactly what ``to_message`` writes; the error names
                the field (``routes[2].timeouts.entityBody``).
        """
        obj = _object(message, "")
        _keys(obj, "", _TOP)
        if obj["type"] != MESSAGE_TYPE:
            raise MessageError("type", f"expected {MESSAGE_TYPE!r}, got {obj['type']!r}")
        raw_queues = _object(obj["queues"], "queues")
        sockets = tuple(
            SocketConfig.from_wire(item, f"sockets[{i}]")
            for i, item in enumerate(_list(obj, "sockets", ""))
        )
        access_log = AccessLogConfig.from_wire(obj["access_log"], "access_log")
        if _int(obj, "fd_count", "") != len(sockets) + (1 if access_log.enabled else 0):
            also = " and the access log" if access_log.enabled else ""
            raise MessageError(
                "fd_count", f"{obj['fd_count']} fds for {len(sockets)} sockets{also}"
            )
        return cls(
            version=_int(obj, "version", ""),
            session=SessionConfig.from_wire(obj["session"], "session"),
            routes=tuple(
                RouteConfig.from_wire(item, f"routes[{i}]")
                for i, item in enumerate(_list(obj, "routes", ""))
            ),
            queues=tuple(
                QueueConfig.from_wire(str(name), data, f"queues.{name}")
                for name, data in raw_queues.items()
            ),
            sockets=sockets,
            access_log=access_log,
        )


#: Hosts of a TLS address that cover every address of its port.
WILDCARD_HOSTS: Final = frozenset({"+", "*", "0.0.0.0", "::", "[::]"})


def certificate_for(
    sock: SocketConfig, bindings: tuple[TlsCertificate, ...]
) -> TlsCertificate | None:
    """The certificate an https socket serves.

    A binding names the address as the manifest does, so it is matched on the port the socket was
    asked for (``asked_port``; with port 0 the bound port is another): a binding for the socket's
    own host first, then one for every host (``+:0``, ``0.0.0.0:443``), then any binding on that
    port (a host name's prefix is served by the wildcard socket of its port).

    Args:
        sock: the listening socket.
        bindings: the session's certificates.

    Returns:
        The binding to serve, or None when no binding names the socket's port.
    """

    def rank(binding: TlsCertificate) -> int:
        host = binding.address.rpartition(":")[0]
        if host.strip("[]") == sock.host.strip("[]"):
            return 0
        return 1 if host in WILDCARD_HOSTS else 2

    on_port = [b for b in bindings if b.address.rpartition(":")[2] == str(sock.asked_port)]
    return min(on_port, key=rank, default=None)


__all__ = [
    "ACCESS_FORMATS",
    "MESSAGE_TYPE",
    "WILDCARD_HOSTS",
    "AccessLogConfig",
    "Limits",
    "ListenerConfig",
    "MessageError",
    "QueueConfig",
    "RouteConfig",
    "SessionConfig",
    "SocketConfig",
    "Timeouts",
    "TlsCertificate",
    "certificate_for",
]
