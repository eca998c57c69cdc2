"""The listener's hot path, in pure Python: the readable twin of the compiled ``_fast`` module.

Owns: ``FastClient`` (the base of a client connection: the fast path for the common exchange),
``RouteEntry`` and ``RouteCache`` (routing decisions already made, by Host and target),
``QueueStats`` (per queue and URL group counters), the scanning of request and response heads, the
access log's format and the connection phases (``phase.Phase``). The upstream side (``Poller``,
``UpstreamPool``, ``Upstream``) lives in ``upstream.py`` and is re-exported here, so this module
still offers every name of the hot path. ``core.py`` chooses this module or ``_fast``; both define
the same names with the same behaviour, and ``tests/integration/listener/test_twins.py`` compares
them byte for byte.

The common exchange is: a complete request head in one read, no body or a Content-Length body of at
most ``BUFFERED_BODY`` bytes in the same read and nothing after it, a route already in the cache, and
then a response head with a Content-Length body of at most ``FAST_RESPONSE_MAX`` bytes. It is handled
in one call per side: one pass over the fields (collecting them and applying the policy as it goes),
one write upstream, one write to the client, one clock read per side (the app's injected clock,
``app.now``: ``time.monotonic`` outside tests), and no event object.

Everything else goes to the general path (``proxy.ClientConnection``), which behaves exactly as it
does without this module. The fast path only takes a request when the general path would forward the
same bytes: anything it does not recognise (another method or version, a byte outside its strict
character classes, ``Transfer-Encoding``, ``Expect``, ``Upgrade``, a ``Connection`` option other
than ``keep-alive`` or ``close``, pipelining, TLS, a route not yet resolved, a refusal to come) makes
it decline before acting. Once a request went upstream, any surprise (a response it does not handle,
client bytes while it waits, an upstream that closes) first *materialises* the exchange: the general
path's state is rebuilt as if it had handled the request from the start (``materialise`` in
``proxy.py``), and the bytes that arrived are replayed into it. Nothing reaches the client before that.

Must not import: ``proxy`` or ``app`` (they build on this module); nothing outside the standard
library but ``uvloop``'s transports, which it only calls, ``upstream`` (its upstream side) and
``phase`` (the phases).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import json
import re
import time
from typing import TYPE_CHECKING, Any, Final

from orchestrator.backends.linux.listener.phase import Phase
from orchestrator.backends.linux.listener.upstream import (
    HIGH_WATER,
    POOL_MAX,
    Poller,
    Upstream,
    UpstreamPool,
)

if TYPE_CHECKING:
    from orchestrator.backends.linux.listener.config import QueueRoute, Route

IMPLEMENTATION: Final = "python"

#: Connection phases (what the timers look at): the ``Phase`` members, as ``_fast`` exports them.
HEAD, BODY, WAIT, IDLE, CLOSING = Phase.HEAD, Phase.BODY, Phase.WAIT, Phase.IDLE, Phase.CLOSING

#: Request bodies up to this size are received whole before any byte reaches a worker.
BUFFERED_BODY: Final = 64 * 1024
#: The largest response the fast path holds back until it is complete (head and body).
FAST_RESPONSE_MAX: Final = 64 * 1024
#: The largest response head the fast path reads (a larger one goes to the general path).
FAST_RESPONSE_HEAD_MAX: Final = 8192
#: Fields in a head the fast path handles (the general path's limit is at least this).
FAST_MAX_FIELDS: Final = 100
#: Routing decisions kept per listening address; the cache starts over when it is full.
ROUTE_CACHE_MAX: Final = 4096
LATENCY_BUCKETS_MS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# What a response from the fast path tells the caller.
_DONE, _MORE, _DECLINE = range(3)

# Field kinds: forwarded (absent from the table), dropped, special, or a reason to decline.
_DROP, _HOST, _LENGTH, _CONNECTION, _DECLINE_FIELD = range(5)
_REQUEST_KINDS: Final = {
    b"host": _HOST,
    b"content-length": _LENGTH,
    b"connection": _CONNECTION,
    # Hop-by-hop, and the forwarding fields the listener writes itself: never forwarded.
    b"keep-alive": _DROP,
    b"proxy-connection": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
    b"x-forwarded-for": _DROP,
    b"x-forwarded-proto": _DROP,
    b"x-forwarded-host": _DROP,
    b"forwarded": _DROP,
    # The general path's business: framing by chunks, 100-continue, protocol switches, and a field
    # named like a Connection option (dropped there when the option is given).
    b"transfer-encoding": _DECLINE_FIELD,
    b"expect": _DECLINE_FIELD,
    b"upgrade": _DECLINE_FIELD,
    b"close": _DECLINE_FIELD,
}
_RESPONSE_KINDS: Final = {
    b"content-length": _LENGTH,
    b"connection": _CONNECTION,
    b"keep-alive": _DROP,
    b"proxy-connection": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
    b"transfer-encoding": _DECLINE_FIELD,
    b"upgrade": _DECLINE_FIELD,
    b"close": _DECLINE_FIELD,
}
_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})

# The strict subsets the fast path recognises, each a whole head up to its empty line. Field lines
# (each with its CRLF): a token, a colon, then HTAB or visible ASCII and spaces only (no obs-text,
# no control character, no bare CR or LF).
_TCHAR: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_FIELD_LINES: Final = rb"((?:" + _TCHAR + rb"+:[\t -~]*\r\n)*)\r\n"
# A request: a method llhttp and the policy both know, an origin-form target of RFC 3986 path and
# query characters (anything else, even if the policy allows it, is the general path's to judge),
# HTTP/1.1 or HTTP/1.0, then the field lines.
_REQUEST_HEAD: Final = re.compile(
    rb"(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|TRACE) (/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*) "
    rb"HTTP/1\.([01])\r\n" + _FIELD_LINES
)
# A response: HTTP/1.x, a final status that has a body (200-599 but 204 and 304), a reason of
# visible ASCII, spaces and tabs, then the field lines.
_RESPONSE_HEAD: Final = re.compile(
    rb"HTTP/1\.([01]) ([2-5][0-9][0-9]) ([\t -~]*)\r\n" + _FIELD_LINES
)
# One field: its name and its value without surrounding spaces and tabs.
_FIELD: Final = re.compile(rb"(" + _TCHAR + rb"+):[ \t]*([\t -~]*?)[ \t]*\r\n")


@functools.lru_cache(maxsize=256)
def _connection_options(value: bytes) -> int:
    """The options of a Connection value as bits (1: close, 2: keep-alive), or -1 when it names
    anything else (an option the general path must act on: a field to drop, an upgrade)."""
    bits = 0
    for element in value.lower().split(b","):
        element = element.strip(b" \t")
        if element == b"close":
            bits |= 1
        elif element == b"keep-alive":
            bits |= 2
        elif element:
            return -1
    return bits


# A head's verdict depends on its bytes alone, and clients and workers repeat theirs (the same
# request from a keep-alive client, the same response head from a worker), so the verdicts of the
# last few hundred heads are remembered: the common exchange then costs a dictionary lookup.


@functools.lru_cache(maxsize=256)
def request_head(head: bytes) -> tuple[bytes, bytes, bytes, int, int, bool, bytes, int] | None:
    """What the fast path needs from a complete request head (through its empty line), or None
    when the general path must judge it.

    Returns:
        (method, raw target, Host value, Content-Length or -1, Connection options (bits: 1 close,
        2 keep-alive), HTTP/1.0?, the fields to forward (lower-case names, values without OWS,
        each line with its CRLF), number of field lines).
    """
    line = _REQUEST_HEAD.fullmatch(head)
    if line is None:
        return None
    fields = _FIELD.findall(head, line.start(4), line.end(4))
    forwarded: list[bytes] = []
    host: bytes | None = None
    length = -1
    options = 0
    for name, value in fields:
        lname = name.lower()
        kind = _REQUEST_KINDS.get(lname)
        if kind is None:
            forwarded += (lname, b": ", value, b"\r\n")
        elif kind == _HOST:
            if host is not None:
                return None  # more than one Host: a 400 to come
            host = value
        elif kind == _LENGTH:
            if length >= 0 or not value.isdigit() or len(value) > 19:
                return None  # a duplicate or invalid Content-Length: a 400 to come
            length = int(value)
        elif kind == _CONNECTION:
            bits = _connection_options(value)
            if bits < 0:
                return None
            options |= bits
        elif kind == _DECLINE_FIELD:
            return None
    if host is None:
        return None  # HTTP/1.1 without Host is a 400; HTTP/1.0 without it needs the local address
    return (
        line.group(1),
        line.group(2),
        host,
        length,
        options,
        line.group(3) == b"0",
        b"".join(forwarded),
        len(fields),
    )


@functools.lru_cache(maxsize=256)
def response_head(head: bytes) -> tuple[int, bytes, int, bool] | None:
    """What the fast path needs from a complete response head (through its empty line), or None
    when the general path must relay the response.

    Returns:
        (status, the client's head up to its Content-Length line: status line and forwarded fields
        as the general path writes them, Content-Length, whether the worker keeps the connection).
    """
    line = _RESPONSE_HEAD.fullmatch(head)
    if line is None:
        return None
    code = line.group(2)
    if code == b"204" or code == b"304":
        return None
    fields = _FIELD.findall(head, line.start(4), line.end(4))
    if len(fields) > FAST_MAX_FIELDS:
        return None
    parts = [b"HTTP/1.1 ", code, b" ", line.group(3), b"\r\n"]
    length = -1
    options = 0
    for name, value in fields:
        lname = name.lower()
        kind = _RESPONSE_KINDS.get(lname)
        if kind is None:
            parts += (lname, b": ", value, b"\r\n")
        elif kind == _LENGTH:
            if length >= 0 or not value.isdigit() or len(value) > 19:
                return None
            length = int(value)
        elif kind == _CONNECTION:
            bits = _connection_options(value)
            if bits < 0:
                return None
            options |= bits
        elif kind == _DECLINE_FIELD:
            return None
    if length < 0 or length > FAST_RESPONSE_MAX:
        return None  # a body until the close (or none), or too long to hold: streamed
    worker_keeps = (options == 2) if line.group(1) == b"0" else not options & 1
    parts.append(b"content-length: %d\r\n" % length)
    return int(code), b"".join(parts), length, worker_keeps


_escape = json.encoder.encode_basestring  # JSON string escaping, in C


def format_access(record: tuple[Any, ...], wall_offset: float, pid: int) -> str:
    """One access record as its JSON log line: ``record`` is (monotonic time, client, host, method,
    target, status, bytes sent, duration ms, queue, URL group, upstream ms); ``wall_offset`` turns
    the monotonic time into wall-clock time."""
    now, client, host, method, target, status, sent, duration_ms, queue, group, upstream_ms = record
    return _ACCESS_LINE % (
        now + wall_offset,
        pid,
        _escape(client),
        _escape(host.decode("latin-1")),
        _escape(method.decode("latin-1")),
        _escape(target.decode("latin-1")),
        status,
        sent,
        duration_ms,
        _escape(queue),
        _escape(group),
        upstream_ms,
    )


# One printf-style template: a single call formats the whole line (%.3f is f"{x:.3f}").
_ACCESS_LINE: Final = (
    '{"event":"access","ts":%.3f,"pid":%d,"client":%s,"host":%s,"method":%s,"target":%s,'
    '"status":%d,"bytes":%d,"duration_ms":%.3f,"queue":%s,"group":%s,"upstream_ms":%.3f}'
)


def format_log(records: list[Any], wall_offset: float, pid: int) -> str:
    """The listener's buffered log as text: lines (``str``) as they are, access records (tuples)
    formatted by ``format_access``; one line each, each ending with a newline."""
    lines = [r if isinstance(r, str) else format_access(r, wall_offset, pid) for r in records]
    lines.append("")
    return "\n".join(lines)


_PLAIN: Final = re.compile(r'[^ "=\\\x00-\x1f\x7f]+\Z')
_stamp_cache: list[Any] = [None, ""]


def _text_value(text: str) -> str:
    """A value of a ``key=value`` line: as it is, or JSON-quoted when empty or holding a space,
    quote, equals sign, backslash or control character (the controller's ``format_text`` rule)."""
    return text if _PLAIN.match(text) else _escape(text)


def _stamp(ts: float) -> str:
    """``2026-11-28T10:00:00.123Z`` (the date part is formatted once a second)."""
    second = int(ts)
    if _stamp_cache[0] != second:
        _stamp_cache[0] = second
        _stamp_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_stamp_cache[1]}.{int(ts % 1 * 1000):03d}Z"


def format_access_text(record: tuple[Any, ...], wall_offset: float, pid: int) -> str:
    """One access record as a text log line, ``key=value`` as the controller's own text log:
    ``2026-11-28T10:00:00.123Z event=access pid=7 client=127.0.0.1:5000 host=... status=200 ...``
    (``record`` as ``format_access`` takes it)."""
    now, client, host, method, target, status, sent, duration_ms, queue, group, upstream_ms = record
    return _TEXT_LINE % (
        _stamp(now + wall_offset),
        pid,
        _text_value(client),
        _text_value(host.decode("latin-1")),
        _text_value(method.decode("latin-1")),
        _text_value(target.decode("latin-1")),
        status,
        sent,
        duration_ms,
        _text_value(queue),
        _text_value(group),
        upstream_ms,
    )


_TEXT_LINE: Final = (
    "%s event=access pid=%d client=%s host=%s method=%s target=%s status=%d bytes=%d "
    "duration_ms=%.3f queue=%s group=%s upstream_ms=%.3f"
)


def format_log_text(records: list[Any], wall_offset: float, pid: int) -> str:
    """``format_log`` with access records as text lines (``format_access_text``): the access log
    when the controller logs text. Formatted here in both cores: only the flush pays for it."""
    lines = [r if isinstance(r, str) else format_access_text(r, wall_offset, pid) for r in records]
    lines.append("")
    return "\n".join(lines)


class QueueStats:
    """Counters of one queue (or URL group): requests by status class, 503s by reason, in flight,
    a latency histogram and the time spent upstream."""

    __slots__ = ("_status", "inflight", "latency", "refused", "requests", "upstream_ms_total")

    def __init__(self) -> None:
        self.requests = 0
        self.inflight = 0
        self._status = [0] * 10  # by status // 100
        self.refused: dict[str, int] = {}  # 503 reason -> count
        self.latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.upstream_ms_total = 0.0

    def finished(self, status: int, duration_ms: float, upstream_ms: float) -> None:
        """Count a completed request."""
        self._status[status // 100 if status < 900 else 9] += 1
        # The first bucket whose bound is at least the duration; the last one holds the rest.
        self.latency[bisect.bisect_left(LATENCY_BUCKETS_MS, duration_ms)] += 1
        self.upstream_ms_total += upstream_ms

    @property
    def status(self) -> dict[str, int]:
        """Completed requests by status class ("2xx" -> count)."""
        return {f"{i}xx": n for i, n in enumerate(self._status) if n}

    def as_dict(self) -> dict[str, object]:
        """For the stats message."""
        return {
            "requests": self.requests,
            "inflight": self.inflight,
            "status": self.status,
            "refused": dict(self.refused),
            "latency_ms_buckets": list(LATENCY_BUCKETS_MS),
            "latency": list(self.latency),
            "upstream_ms_total": round(self.upstream_ms_total, 3),
        }


class RouteEntry:
    """A routing decision for one (Host, target) on one listening address: everything the fast path
    needs to forward a request there, made once by the general path's rules (``proxy.route_entry``).

    Only requests that go to an enabled queue are cached; a new routing table starts a new cache.
    """

    __slots__ = (
        "group",
        "gstats",
        "host",
        "limit",
        "pool",
        "prefix",
        "qstats",
        "queue",
        "queue_name",
        "route",
        "target",
    )

    def __init__(
        self,
        route: Route,
        queue: QueueRoute,
        pool: UpstreamPool,
        host: bytes,
        target: bytes,
        qstats: QueueStats,
        gstats: QueueStats,
    ) -> None:
        self.route = route
        self.queue = queue
        self.pool = pool
        self.host = host  # the Host value as forwarded (lower case)
        self.target = target  # the normalised path and the raw query, as forwarded
        self.qstats = qstats
        self.gstats = gstats
        self.limit = -1 if route.max_connections is None else route.max_connections
        self.queue_name = queue.name
        self.group = route.group
        # What follows the method in the forwarded head, up to the client's own fields.
        self.prefix = b" " + target + b" HTTP/1.1\r\nhost: " + host + b"\r\n"


class RouteCache:
    """Routing decisions of one listening address (scheme, local address and port), by (Host value,
    raw target). ``valid`` turns false when the routing table is replaced."""

    __slots__ = ("entries", "valid")

    def __init__(self) -> None:
        self.entries: dict[tuple[bytes, bytes], RouteEntry] = {}
        self.valid = True

    def get(self, host: bytes, target: bytes) -> RouteEntry | None:
        """The decision made earlier for this Host value and target, if any."""
        return self.entries.get((host, target))

    def put(self, host: bytes, target: bytes, entry: RouteEntry) -> None:
        """Keep a decision (a full cache starts over: a flood of distinct targets costs what it
        cost without the cache, and memory stays bounded)."""
        if len(self.entries) >= ROUTE_CACHE_MAX:
            self.entries.clear()
        self.entries[(host, target)] = entry


class FastClient(asyncio.Protocol):
    """The base of a client connection (``proxy.ClientConnection``): its shared state, and the fast
    path for the common exchange. The general path lives in the subclass, which provides
    ``slow_data``, ``slow_upstream_data``, ``materialise``, ``route_miss`` and ``_close``."""

    __slots__ = (
        "app",
        "cache",
        "closing",
        "fast_bytes",
        "fast_conn",
        "fast_entry",
        "fast_http10",
        "fast_method",
        "fast_ok",
        "fast_out",
        "fast_target",
        "head_bytes",
        "keep_alive",
        "local_ip",
        "local_port",
        "parser",
        "peer",
        "queue",
        "request",
        "route",
        "scheme",
        "sent",
        "since",
        "started",
        "state",
        "status",
        "tail",
        "tail_entry",
        "transport",
        "upstream",
        "upstream_started",
    )

    def __init__(self, app: Any, scheme: str) -> None:
        self.app = app
        self.scheme = scheme
        self.transport: Any = None
        self.peer = ""
        self.local_ip = ""
        self.local_port = 0
        self.parser: Any = None  # the general path's RequestParser, made when first needed
        self.state = HEAD
        self.since = app.now()  # start of the current phase (for the timers)
        self.head_bytes = 0  # bytes of a head in progress (a timed-out partial head gets a 408)
        self.request: Any = None
        self.route: Any = None
        self.queue: Any = None
        self.upstream: Any = None
        self.keep_alive = True
        self.status = 0
        self.sent = 0
        self.started = 0.0
        self.upstream_started = 0.0
        self.closing = False
        # Plain HTTP only: TLS connections take the general path (as does everything when the
        # app was told to run without the fast path).
        self.fast_ok = scheme == "http" and app.fast_enabled
        self.cache: RouteCache | None = None
        self.fast_conn: Upstream | None = None  # the upstream of a fast exchange in flight
        self.fast_bytes = b""  # that request's bytes (head and body), as the client sent them
        self.fast_out = b""  # and as they went upstream
        self.fast_method = b""
        self.fast_http10 = False
        self.fast_target = b""
        self.fast_entry: RouteEntry | None = None
        self.tail = b""  # the forwarding fields for this client and ``tail_entry``'s host
        self.tail_entry: RouteEntry | None = None

    # -- the client's bytes --------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.fast_ok and self.parser is None and self.fast_conn is None and not self.closing:
            if self._fast_request(data):
                return
        elif self.fast_conn is not None and not self.materialise():
            return  # (materialise() reset the connection)
        # Bytes while a fast exchange waits (pipelining, garbage), or a request to judge.
        self.slow_data(data)

    def _fast_request(self, data: bytes) -> bool:
        """Forward ``data`` if it is one complete common request; False (having done nothing) if
        the general path must judge it."""
        app = self.app
        head_end = data.find(b"\r\n\r\n") + 4
        if head_end < 4 or head_end > app.fast_head_max:
            return False
        parsed = request_head(data if head_end == len(data) else data[:head_end])
        if parsed is None or app.draining:
            return False
        method, target, host, length, options, http10, fields, nfields = parsed
        if nfields > app.fast_max_fields:
            return False
        cache = self.cache
        if cache is None or not cache.valid:
            cache = self.cache = app.route_cache(self.scheme, self.local_ip, self.local_port)
        found = cache.get(host, target)
        if found is None:
            found = self.route_miss(host, target)
            if found is None:
                return False
            cache.put(host, target, found)
        entry: RouteEntry = found
        if entry.limit >= 0 and entry.gstats.inflight >= entry.limit:
            return False  # the URL group's connection limit: a 503 to come
        parts = [method, entry.prefix, fields]
        if length >= 0:
            if length > BUFFERED_BODY or length > app.max_body_bytes:
                return False
            if len(data) != head_end + length:
                return False  # a body still arriving, or a pipelined request after it
            parts.append(b"content-length: %d\r\n" % length)
        else:
            if len(data) != head_end:
                return False
            if method in _BODY_METHODS:
                parts.append(b"content-length: 0\r\n")
        keep_alive = (options == 2) if http10 else not options & 1
        # The upstream connection: a pooled one, or a new one.
        pool = entry.pool
        conn = pool.take()
        if conn is None:
            try:
                conn = pool.connect()
            except OSError:
                return False  # a full or missing queue: the general path answers 503
        else:
            conn.reused = True
        # Nothing can decline from here on.
        if self.tail_entry is not entry:
            peer = self.peer.encode()
            scheme = self.scheme.encode()
            host_value = entry.host
            self.tail = (
                b"x-forwarded-for: "
                + peer
                + b"\r\nx-forwarded-proto: "
                + scheme
                + b"\r\nx-forwarded-host: "
                + host_value
                + b'\r\nforwarded: for="'
                + peer
                + b'";proto='
                + scheme
                + b';host="'
                + host_value
                + b'"\r\n\r\n'
            )
            self.tail_entry = entry
        parts.append(self.tail)
        if head_end < len(data):
            parts.append(data[head_end:])
        now = app.now()
        self.state = WAIT
        self.since = self.started = self.upstream_started = now
        self.head_bytes = 0
        self.keep_alive = keep_alive
        self.status = 0
        self.sent = 0
        self.route = entry.route
        self.queue = entry.queue
        self.upstream = conn
        self.fast_conn = conn
        self.fast_bytes = data
        self.fast_method = method
        self.fast_http10 = http10
        self.fast_target = target
        self.fast_entry = entry
        entry.qstats.requests += 1
        entry.qstats.inflight += 1
        entry.gstats.inflight += 1
        out = b"".join(parts)
        self.fast_out = out
        conn.client = self
        conn.received = 0
        conn.write(out)
        return True

    # -- the worker's bytes --------------------------------------------------------------------
    def upstream_data(self, conn: Upstream, data: bytes) -> None:
        """Bytes from the upstream connection serving this client."""
        if conn is self.fast_conn:
            buf = conn.fast_buf + data if conn.fast_buf else data
            verdict = self._fast_response(conn, buf)
            if verdict == _DONE:
                return
            if verdict == _MORE and len(buf) <= FAST_RESPONSE_MAX:
                conn.fast_buf = buf
                return
            conn.fast_buf = b""
            if not self.materialise():
                return
            data = buf
        self.slow_upstream_data(conn, data)

    def _fast_response(self, conn: Upstream, buf: bytes) -> int:
        """Relay ``buf`` to the client if it is one complete common response (``_DONE``);
        ``_MORE`` if it may become one; ``_DECLINE`` if the general path must relay it."""
        head_end = buf.find(b"\r\n\r\n") + 4
        if head_end < 4:
            return _MORE if len(buf) < FAST_RESPONSE_HEAD_MAX else _DECLINE
        if head_end > FAST_RESPONSE_HEAD_MAX or self.fast_method == b"HEAD":
            return _DECLINE
        parsed = response_head(buf if head_end == len(buf) else buf[:head_end])
        if parsed is None:
            return _DECLINE
        status, head, length, worker_keeps = parsed
        have = len(buf) - head_end
        if have < length:
            return _MORE
        if have > length:
            return _DECLINE  # bytes after the response: the general path refuses them
        app = self.app
        keep_alive = self.keep_alive and not app.draining
        if not keep_alive:
            end = b"connection: close\r\n\r\n"
        elif self.fast_http10:
            end = b"connection: keep-alive\r\n\r\n"
        else:
            end = b"\r\n"
        out = head + end + buf[head_end:] if length else head + end
        self.status = status
        self.sent = len(out)
        # The exchange is over. A worker that closes its connections waits for ours to close
        # (gunicorn's sync worker lingers until it reads our EOF): close it before anything else.
        self.fast_conn = None
        self.fast_bytes = self.fast_out = b""
        self.upstream = None
        conn.fast_buf = b""
        if worker_keeps:
            conn.pool.put(conn)
        else:
            conn.client = None
            conn.close()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(out)
        now = app.now()
        entry = self.fast_entry
        assert entry is not None
        duration_ms = (now - self.started) * 1000.0
        entry.qstats.finished(status, duration_ms, duration_ms)
        entry.gstats.finished(status, duration_ms, duration_ms)
        entry.qstats.inflight -= 1
        if entry.gstats.inflight > 0:
            entry.gstats.inflight -= 1
        self.queue = None
        self.route = None
        if app.access_enabled:
            records = app.log_records
            records.append(
                (
                    now,
                    self.peer,
                    entry.host,
                    self.fast_method,
                    self.fast_target,
                    status,
                    len(out),
                    duration_ms,
                    entry.queue_name,
                    entry.group,
                    duration_ms,
                )
            )
            if len(records) >= 512:
                app.flush_log()
        self.fast_entry = None
        if not keep_alive:
            self._close()
        else:
            self.state = IDLE
            self.since = now
        return _DONE

    # -- provided by the general path (proxy.ClientConnection) ---------------------------------
    def slow_data(self, data: bytes) -> None:
        raise NotImplementedError

    def slow_upstream_data(self, conn: Upstream, data: bytes) -> None:
        raise NotImplementedError

    def materialise(self) -> bool:
        raise NotImplementedError

    def route_miss(self, host: bytes, target: bytes) -> RouteEntry | None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


__all__ = [
    "BODY",
    "BUFFERED_BODY",
    "CLOSING",
    "FAST_MAX_FIELDS",
    "FAST_RESPONSE_HEAD_MAX",
    "FAST_RESPONSE_MAX",
    "HEAD",
    "HIGH_WATER",
    "IDEMPOTENT",
    "IDLE",
    "IMPLEMENTATION",
    "LATENCY_BUCKETS_MS",
    "POOL_MAX",
    "ROUTE_CACHE_MAX",
    "WAIT",
    "FastClient",
    "Poller",
    "QueueStats",
    "RouteCache",
    "RouteEntry",
    "Upstream",
    "UpstreamPool",
    "format_access",
    "format_access_text",
    "format_log",
    "format_log_text",
    "request_head",
    "response_head",
]
