"""The listener's connections: the general path of a client connection and of its upstream ones.

Owns: ``ClientConnection`` (an asyncio protocol per client) and ``UpstreamConnection`` (per
connection to a queue socket), both built on the hot path's bases (``core``: the compiled ``_fast``
module or its pure-Python twin ``fast``), which take the common exchange in a few calls and hand
everything else here. Requests are parsed by the sans-I/O ``http1`` core, routed by the pure
``routing`` table, re-serialised (never forwarded as client bytes) and sent over a Unix connection to
the queue; responses are relayed with strict framing checks. One request at a time per connection, in
order (pipelining); bodies stream both ways with backpressure. Hop-by-hop decisions come from parsed
events, never from re-parsing headers. ``materialise`` turns a fast exchange into this path's state,
and ``route_entry`` makes the routing decisions the fast path caches, by this path's rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import socket
import struct
from typing import TYPE_CHECKING, NamedTuple, cast

from orchestrator.backends.linux.listener.core import (
    BODY,
    BUFFERED_BODY,
    CLOSING,
    HEAD,
    HIGH_WATER,
    IDEMPOTENT,
    IDLE,
    WAIT,
    FastClient,
    RouteEntry,
    Upstream,
)
from orchestrator.backends.linux.listener.timers import Expiry, expired, send_rate
from orchestrator.http1 import (
    CONTINUE,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Framing,
    RemoteProtocolError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
    write_chunk,
    write_error_response,
    write_last_chunk,
    write_request_head,
    write_response_head,
)
from orchestrator.http1.validate import is_valid_host
from orchestrator.routing import (
    HostPort,
    Match,
    NoHost,
    NoPath,
    RequestRejected,
    RequestTarget,
    normalize_host,
    normalize_target,
)

# Host headers and request targets repeat: normalising them once each is a cache lookup after that.
_host_of = functools.lru_cache(maxsize=1024)(normalize_host)
_target_of = functools.lru_cache(maxsize=4096)(normalize_target)

if TYPE_CHECKING:
    from orchestrator.backends.linux.listener.app import ListenerApp
    from orchestrator.backends.linux.listener.config import Config, QueueRoute, Route
    from orchestrator.routing.table import RouteTable

MAX_PIPELINE_BUFFER = 1024 * 1024
_LINGER0 = struct.pack("ii", 1, 0)


class _Forward(NamedTuple):
    """What the forwarded head says about the client and the routed target."""

    peer: bytes
    proto: bytes
    host: bytes
    target: bytes


def forwarded_target(target: RequestTarget) -> bytes:
    """The target a worker sees: the normalised path (the one that was routed) and the raw query."""
    query = b"" if target.query is None else b"?" + target.query.encode("latin-1")
    return target.path.encode("latin-1") + query


class UpstreamConnection(Upstream):
    """One connection to a queue socket (a worker accepted it), with the general path's parser."""

    __slots__ = ()

    def begin(self, client: ClientConnection, method: bytes) -> None:
        """Start a request/response exchange on this connection (the general path's)."""
        self.client = client
        self.received = 0
        if self.parser is None:
            self.parser = ResponseParser(request_method=method)
        else:
            self.parser.start_next_response(method)

    @property
    def reusable(self) -> bool:
        """The last response completed, the worker keeps the connection open and sent nothing
        after the response (an exchange the fast path completed leaves the general parser as it
        was). A connection with bytes after its response is never pooled: they would be taken
        as the next client's response (response splitting), or break the next exchange."""
        return not self.closed and (self.parser is None or self.parser.reusable)


class ClientConnection(FastClient):
    """One client connection: parse, route, forward, relay, repeat.

    The fast path (the base class) takes the common exchange; this class is the general path and
    owns every decision the fast path does not make.
    """

    # Slots: ten thousand idle connections must stay small (an instance dict cost 1.5 KiB).
    __slots__ = (
        "batch",
        "body_done",
        "buffered",
        "buffered_size",
        "forward",
        "pending_queue",
        "reading_paused",
        "response_chunked",
        "response_started",
        "retried",
        "retry_bytes",
        "write_mark",
    )

    def __init__(self, app: ListenerApp, scheme: str) -> None:
        super().__init__(app, scheme)
        self.retry_bytes: list[bytes] | None = None  # a small idempotent request kept for a retry
        self.forward: _Forward | None = None
        self.pending_queue: QueueRoute | None = None
        self.buffered: list[bytes] | None = None  # a chunked body being validated before forwarding
        self.buffered_size = 0
        self.retried = False
        self.body_done = False
        self.response_started = False
        self.response_chunked = False
        self.reading_paused = False
        self.write_mark = (0.0, 0)  # (when, buffered bytes) for the minimum send rate
        self.batch: list[bytes] | None = None  # output held back to be written in one go

    # -- client side -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        app = self.app
        app.connections.add(self)
        app.stats.connections = len(app.connections)
        app.stats.accepted += 1
        settings = app.config.settings
        if settings.max_connections and len(app.connections) > settings.max_connections:
            app.stats.error("ConnLimit")
            self._abort()
            return
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""
        if isinstance(local, tuple):
            self.local_ip, self.local_port = str(local[0]), int(local[1])
            if self.local_ip.startswith("::ffff:"):
                self.local_ip = self.local_ip[7:]
        transport.set_write_buffer_limits(high=HIGH_WATER)

    def _parser(self) -> RequestParser:
        """The general path's request parser, made on first use (the fast path needs none, and
        an idle connection carries none: it goes when the connection is at rest again)."""
        parser = self.parser
        if parser is None:
            settings = self.app.config.settings
            parser = self.parser = RequestParser(
                max_url_bytes=settings.max_url_bytes,
                max_header_bytes=settings.max_request_header_bytes,
                max_field_bytes=settings.max_request_header_bytes,
                max_header_fields=settings.max_header_fields,
                max_body_bytes=settings.max_body_bytes,
            )
        assert isinstance(parser, RequestParser)
        return parser

    def slow_data(self, data: bytes) -> None:
        """Client bytes for the general path."""
        if self.closing:
            return
        parser = self._parser()
        if self.state == IDLE:
            self.state, self.since = HEAD, self.app.now()
        if self.state == HEAD:
            self.head_bytes += len(data)
        elif self.state == BODY:
            self.since = self.app.now()
        try:
            parser.receive_data(data)
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
            return
        self._events()

    def eof_received(self) -> bool | None:
        if self.fast_conn is not None and not self.materialise():
            return None
        if not self.closing:
            try:
                self._parser().receive_data(b"")
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return None
            self._events()
        if self.state in (HEAD, IDLE) and self.upstream is None:
            self._close()
        return True  # keep our side open for a response in progress

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.fast_conn = None
        self.fast_entry = None
        app = self.app
        app.connections.discard(self)
        app.stats.connections = len(app.connections)
        if self.upstream is not None:
            # The client went away mid-exchange: the upstream connection cannot be reused.
            self.upstream.client = None
            self.upstream.close()
            self.upstream = None
        self._release_queue()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def pause_client_reading(self) -> None:
        """The upstream is slow to take the body: stop reading from the client."""
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_client_reading(self) -> None:
        """The upstream caught up."""
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- request events ----------------------------------------------------------------------
    def _events(self) -> None:
        parser = self._parser()
        while not self.closing:
            try:
                event = parser.next_event()
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            if event is NEED_DATA or event is PAUSED:
                return
            if isinstance(event, Request):
                parser.pause()  # one request at a time: the next waits for this response
                self._request(event)
            elif isinstance(event, Data):
                self._forward(event.data)
            elif isinstance(event, EndOfMessage):
                self._body_end(event)
            elif isinstance(event, ConnectionClosed):
                if self.upstream is None and not self.response_started:
                    self._close()
                return

    def _request(self, req: Request) -> None:
        app = self.app
        config: Config = app.config  # one table for the whole request, even if a new one arrives
        self.request = req
        self.started = app.now()
        self.state, self.since = BODY, self.started
        self.head_bytes = 0
        self.keep_alive = req.keep_alive and not app.draining
        self.status = 0
        self.sent = 0
        self.body_done = False
        self.response_started = False
        self.upstream_started = 0.0
        self.buffered = None
        self.retried = False
        try:
            target, match = self._lookup(config.table, req.target, req.host)
        except RequestRejected as exc:
            self._error(exc.status_hint, exc.reason)
            return
        if isinstance(match, NoHost):
            self._error(400, "Hostname", body=b"Bad Request - Invalid Hostname\r\n")
            return
        if isinstance(match, NoPath):
            self._error(404, "NotFound")
            return
        assert isinstance(match, Match)
        route: Route = match.target
        self.route = route
        queue = route.queue
        if route.state != "enabled" or queue is None or queue.state != "enabled":
            reason = "Disabled" if queue is None or route.state != "enabled" else queue.reason
            self._refuse(queue, reason or "Disabled")
            return
        limit = route.max_connections
        if limit is not None and app.stats.group(route.group).inflight >= limit:
            self._refuse(queue, "ConnLimit")
            return
        forwarded_host = req.host or f"{self.local_ip}:{self.local_port}".encode()
        self.forward = _Forward(
            peer=self.peer.encode(),
            proto=self.scheme.encode(),
            host=forwarded_host,
            target=forwarded_target(target),
        )
        self.pending_queue = queue
        if req.expect_continue:
            self._write(CONTINUE)
        length = req.content_length
        if req.chunked or (length is not None and 0 < length <= BUFFERED_BODY):
            # Hold a small body (up to BUFFERED_BODY) and forward it with an exact length once it is
            # complete: a worker never sees a request whose chunking was broken, and a client that
            # trickles its body ties up no worker thread (nginx's request buffering). Bigger bodies
            # stream with backpressure.
            self.buffered = []
            self.buffered_size = 0
            return
        self._start_upstream(content_length=None)

    def _lookup(
        self, table: RouteTable[Route], raw_target: bytes, host: bytes
    ) -> tuple[RequestTarget, Match[Route] | NoHost | NoPath]:
        """Normalise the target and Host and route them (raises ``RequestRejected``)."""
        target = _target_of(raw_target)
        where = target.authority or (_host_of(host) if host else HostPort("", None))
        return target, table.lookup(
            self.scheme, self.local_port, self.local_ip, where.host, target.path
        )

    def route_miss(self, host: bytes, target: bytes) -> RouteEntry | None:
        """Route an origin-form request with this Host value the way ``_request`` does, for the
        fast path's cache: an entry when the request goes to an enabled queue, None when the general
        path must answer it (a bad Host or target, no route, a disabled group or queue)."""
        if not is_valid_host(host):
            return None
        app = self.app
        lowered = host.lower()
        try:
            normal, match = self._lookup(app.config.table, target, lowered)
        except RequestRejected:
            return None
        if not isinstance(match, Match):
            return None
        route: Route = match.target
        queue = route.queue
        if route.state != "enabled" or queue is None or queue.state != "enabled":
            return None
        return RouteEntry(
            route,
            queue,
            app.pool(queue),
            lowered,
            forwarded_target(normal),
            app.stats.queue(queue.name),
            app.stats.group(route.group),
        )

    def materialise(self) -> bool:
        """Turn the fast exchange in flight into this path's state, as if this path had handled
        the request from its first byte: the request went upstream, nothing reached the client.

        Returns False (the connection is reset) if the parser refuses what the fast path took,
        which the twin tests prove cannot happen.
        """
        conn, entry, data, out = self.fast_conn, self.fast_entry, self.fast_bytes, self.fast_out
        self.fast_conn = None
        self.fast_entry = None
        self.fast_bytes = self.fast_out = b""
        assert conn is not None
        assert entry is not None
        parser = self._parser()
        error = "not a request"
        try:
            parser.receive_data(data)
            req = parser.next_event()
            parser.pause()
            while parser.next_event() is not PAUSED:
                pass  # the body (Data) and EndOfMessage: the fast path forwarded them already
        except RemoteProtocolError as exc:
            req, error = None, str(exc)
        if not isinstance(req, Request):
            self.app.stats.error("FastPathMismatch")
            self.app.log("fast_path_mismatch", client=self.peer, error=error)
            conn.client = None
            conn.close()
            self.upstream = None
            self._release_queue()
            self._abort()
            return False
        self.request = req
        self.pending_queue = entry.queue
        self.forward = None
        self.buffered = None
        self.retried = False
        self.body_done = True
        self.response_started = False
        self.response_chunked = False
        self.retry_bytes = [out] if req.method in IDEMPOTENT else None
        received = conn.received
        assert isinstance(conn, UpstreamConnection)
        conn.begin(self, req.method)
        conn.received = received
        return True

    def _take_over(self, conn: Upstream) -> bool:
        """Materialise, then replay the part of a response the fast path was holding."""
        held, conn.fast_buf = conn.fast_buf, b""
        if not self.materialise():
            return False
        if held:
            self.slow_upstream_data(conn, held)
        return True

    def _start_upstream(self, content_length: int | None) -> bool:
        """Connect to the queue and send the head (``content_length`` re-frames a buffered body)."""
        req, queue, route = self.request, self.pending_queue, self.route
        assert req is not None
        assert queue is not None
        assert route is not None
        fwd = self.forward
        assert fwd is not None
        head = write_request_head(
            req,
            x_forwarded_for=fwd.peer,
            x_forwarded_proto=fwd.proto,
            x_forwarded_host=fwd.host,
            forwarded=b'for="%s";proto=%s;host="%s"' % (fwd.peer, fwd.proto, fwd.host),
            host=fwd.host,
            keep_alive=True,
            content_length=content_length,
            target=fwd.target,
        )
        if not self._attach(queue):
            return False
        self.queue = queue
        app = self.app
        qstats = app.stats.queue(queue.name)
        qstats.requests += 1
        qstats.inflight += 1
        app.stats.group(route.group).inflight += 1
        length = req.content_length if content_length is None else content_length
        small = length is not None and length <= BUFFERED_BODY
        self.retry_bytes = (
            [head] if req.method in IDEMPOTENT and (small or not req.has_body) else None
        )
        self._send_upstream(head)
        return True

    def _attach(self, queue: QueueRoute, *, fresh: bool = False) -> bool:
        """Get an upstream connection to ``queue`` (pooled, unless ``fresh``, or new); answers 503
        when the queue is full."""
        assert self.request is not None
        pool = self.app.pool(queue)
        conn = None if fresh else cast("UpstreamConnection | None", pool.take())
        if conn is not None and conn.reusable:
            conn.reused = True
            conn.begin(self, self.request.method)
            self.upstream = conn
            return True
        if conn is not None:
            conn.close()
        try:
            conn = cast("UpstreamConnection", pool.connect())
        except BlockingIOError:
            self._refuse(queue, "QueueFull")
            return False
        except OSError as exc:
            self.app.log("upstream_unavailable", queue=queue.name, error=exc.strerror or str(exc))
            self._refuse(queue, "AppOffline" if exc.errno == errno.ECONNREFUSED else "N/A")
            return False
        conn.begin(self, self.request.method)
        self.upstream = conn
        return True

    def _send_upstream(self, data: bytes) -> None:
        if not self.upstream_started:
            self.upstream_started = self.app.now()
        if self.upstream is not None:
            self.upstream.write(data)

    def _forward(self, data: bytes) -> None:
        if self.buffered is not None:
            self.buffered.append(data)
            self.buffered_size += len(data)
            if self.buffered_size <= BUFFERED_BODY:
                return
            # Too big to hold: stream it (re-chunked) from here on.
            held, self.buffered = self.buffered, None
            if not self._start_upstream(content_length=None):
                return
            for piece in held:
                self._forward(piece)
            return
        if self.upstream is None or not data:
            return  # an answered request (404, 503): its body is discarded
        req = self.request
        out = write_chunk(data) if req is not None and req.chunked else data
        if self.retry_bytes is not None:
            self.retry_bytes.append(out)
        self._send_upstream(out)

    def _body_end(self, event: EndOfMessage) -> None:
        req = self.request
        if self.buffered is not None:
            held, self.buffered = self.buffered, None
            if self._start_upstream(content_length=self.buffered_size):
                body = b"".join(held)
                if body:
                    if self.retry_bytes is not None:
                        self.retry_bytes.append(body)
                    self._send_upstream(body)
        elif req is not None and req.chunked and self.upstream is not None:
            last = write_last_chunk(event.trailers)
            if self.retry_bytes is not None:
                self.retry_bytes.append(last)
            self._send_upstream(last)
        self.body_done = True
        if self.state == BODY:
            self.state, self.since = WAIT, self.app.now()
        if self.upstream is None and self.status:
            self._finish_cycle()  # we answered it ourselves (404): go on with the next request

    # -- upstream events ---------------------------------------------------------------------
    def slow_upstream_data(self, conn: Upstream, data: bytes) -> None:
        """Bytes from an upstream connection, for the general path."""
        if conn is not self.upstream or conn.parser is None:
            conn.close()
            return
        # Everything this read produces for the client (head, body, last chunk) goes out in one
        # write: one syscall per response instead of three.
        self.batch = []
        try:
            self._relay(conn, data)
        finally:
            self._flush()

    def _relay(self, conn: Upstream, data: bytes) -> None:
        parser = conn.parser
        assert parser is not None
        try:
            parser.receive_data(data)
            while True:
                event = parser.next_event()
                if event is NEED_DATA or event is PAUSED:
                    return
                if isinstance(event, Response):
                    if not event.informational:
                        self._response_head(event)
                elif isinstance(event, Data):
                    if event.data:
                        self._write(
                            write_chunk(event.data) if self.response_chunked else event.data
                        )
                elif isinstance(event, EndOfMessage):
                    self._response_end(conn)
                    return
                elif isinstance(event, ConnectionClosed):
                    return
        except RemoteProtocolError as exc:
            self.app.stats.error("BadResponse")
            self.app.log(
                "bad_response", queue=self.queue.name if self.queue else "", error=str(exc)
            )
            conn.client = None
            conn.close()
            self.upstream = None
            if self.response_started:
                self._abort()
            else:
                # The worker's fault, not the client's: its connection goes on if it can.
                self._error(502, "BadResponse", keep=self.body_done and self.keep_alive)

    def upstream_eof(self, conn: Upstream) -> None:
        if conn is self.fast_conn and not self._take_over(conn):
            return
        if conn is self.upstream and conn.parser is not None:
            self.slow_upstream_data(conn, b"")

    def upstream_lost(self, conn: Upstream) -> None:
        if conn is self.fast_conn and not self._take_over(conn):
            return
        if conn is not self.upstream:
            return
        self.upstream = None
        if self.response_started:
            self._abort()  # the response was cut short: the client must see it was
            return
        if (
            conn.received == 0
            and self.retry_bytes is not None
            and self.body_done
            and not self.retried
        ):
            # The worker closed without a byte of answer: a pooled connection it had already
            # closed, or a stopping worker (a recycle) that accepted and then dropped it. The
            # request is idempotent and small: send it again, once, on a fresh connection.
            self.retried = True
            retry, self.retry_bytes = self.retry_bytes, None
            self.app.stats.error("UpstreamRetry")
            queue = self.queue
            self._release_queue()
            # A fresh connection: the other pooled ones may lead to the same stopping worker.
            if queue is not None and self._attach(queue, fresh=True):
                self.queue = queue
                self.app.stats.queue(queue.name).inflight += 1
                if self.route is not None:
                    self.app.stats.group(self.route.group).inflight += 1
                for chunk in retry:
                    self._send_upstream(chunk)
            return
        self._upstream_failed("the worker closed the connection before answering")

    def _upstream_failed(self, why: str) -> None:
        self.upstream = None
        self.app.stats.error("Connection_Abandoned_By_AppPool")
        self.app.log("upstream_failed", queue=self.queue.name if self.queue else "", error=why)
        self._error(502, "Connection_Abandoned_By_AppPool")

    def _response_head(self, resp: Response) -> None:
        req = self.request
        assert req is not None
        self.status = resp.status_code
        http10 = req.http_version == b"1.0"
        body_by_close = resp.framing is Framing.CLOSE
        self.response_chunked = (resp.framing is Framing.CHUNKED or body_by_close) and not http10
        if http10 and resp.framing in (Framing.CHUNKED, Framing.CLOSE):
            self.keep_alive = False  # an HTTP/1.0 client learns the end by the close
        if self.app.draining:
            self.keep_alive = False
        head = write_response_head(
            resp, chunked=self.response_chunked, keep_alive=self.keep_alive, http10=http10
        )
        self.response_started = True
        self._write(head)

    def _response_end(self, conn: Upstream) -> None:
        if self.response_chunked:
            self._write(write_last_chunk())
        self.upstream = None
        if isinstance(conn, UpstreamConnection) and conn.reusable and self.body_done:
            conn.pool.put(conn)
        else:
            conn.client = None
            conn.close()
        self._complete_response()

    def _complete_response(self) -> None:
        app = self.app
        now = app.now()
        duration_ms = (now - self.started) * 1000
        upstream_ms = (now - self.upstream_started) * 1000 if self.upstream_started else 0.0
        if self.queue is not None:
            app.stats.queue(self.queue.name).finished(self.status, duration_ms, upstream_ms)
        if self.route is not None:
            app.stats.group(self.route.group).finished(self.status, duration_ms, upstream_ms)
        self._release_queue()
        self._access(duration_ms, upstream_ms)
        if self.body_done:
            self._finish_cycle()
        else:
            # The worker answered before reading the whole body: the connection cannot go on.
            self._close()

    def _release_queue(self) -> None:
        if self.queue is None:
            return
        self.app.stats.queue(self.queue.name).inflight -= 1
        if self.route is not None:
            group = self.app.stats.group(self.route.group)
            group.inflight = max(0, group.inflight - 1)
        self.queue = None

    def _access(self, duration_ms: float, upstream_ms: float) -> None:
        req = self.request
        if req is None:
            return
        route = self.route
        self.app.access(
            self.peer,
            req.host,
            req.method,
            req.target,
            self.status,
            self.sent,
            duration_ms,
            route.queue.name if route is not None and route.queue is not None else "",
            route.group if route is not None else "",
            upstream_ms,
        )

    def _finish_cycle(self) -> None:
        """The exchange is over: go on with the next (pipelined) request, or close."""
        self.request = None
        self.route = None
        self.retry_bytes = None
        # No response is under way any more: a client EOF met next closes the connection at once
        # (it waited for the idle timer when the EOF came while the response was on its way).
        self.response_started = False
        if not self.keep_alive or self.app.draining:
            self._close()
            return
        self.state, self.since = IDLE, self.app.now()
        parser = self.parser
        if parser is not None:
            parser.resume()
            self._events()
            if self.parser is parser and self.request is None and parser.at_rest:
                # Nothing buffered and no message begun: the next request may take the fast path,
                # and an idle connection carries no parser.
                self.parser = None

    # -- answers of our own ------------------------------------------------------------------
    def _refuse(self, queue: QueueRoute | None, reason: str) -> None:
        """503 per the queue's verbosity (basic resets the connection, as http.sys does)."""
        if queue is not None:
            q = self.app.stats.queue(queue.name)
            q.refused[reason] = q.refused.get(reason, 0) + 1
        self.app.stats.error(reason)
        verbosity = queue.verbosity503 if queue is not None else "limited"
        if verbosity == "basic":
            # The client learns nothing, so the log is the only place the reason shows.
            self.status = 503
            self.app.log("request_error", status=503, reason=reason, client=self.peer)
            self._access(0.0, 0.0)
            self._abort()
            return
        retry = queue.retry_after if queue is not None else 5
        body = (
            b"Service Unavailable\r\n"
            if verbosity == "limited"
            else f"Service Unavailable ({reason})\r\n".encode()
        )
        self._error(503, reason, body=body, extra=[(b"retry-after", str(retry).encode())])

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        reason = str(exc.reason or "BadRequest")
        if self.response_started:
            self.app.stats.error(reason)
            self._abort()
            return
        self._error(int(exc.error_status_hint), reason)

    def _error(
        self,
        status: int,
        reason: str,
        *,
        body: bytes | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
        keep: bool = False,
    ) -> None:
        """Answer ``status`` ourselves and close (http.sys closes after its own errors), unless
        ``keep`` (a worker's bad answer: the client did nothing wrong)."""
        self.status = status
        self.keep_alive = keep
        self.app.stats.error(reason)
        if self.upstream is not None:
            self.upstream.client = None
            self.upstream.close()
            self.upstream = None
        self._release_queue()
        if status >= 500 or status in (400, 408, 413, 414, 431):
            self.app.log("request_error", status=status, reason=reason, client=self.peer)
        if not self.response_started:
            self._write(
                write_error_response(status, body=body, extra_headers=extra or [], close=not keep)
            )
            self.response_started = True
        self._access((self.app.now() - self.started) * 1000 if self.started else 0.0, 0.0)
        if keep:
            self._finish_cycle()
        else:
            self._close()

    # -- transport helpers -------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self.sent += len(data)
        if self.batch is not None:
            self.batch.append(data)
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _flush(self) -> None:
        batch, self.batch = self.batch, None
        transport = self.transport
        if batch and transport is not None and not transport.is_closing():
            transport.write(batch[0] if len(batch) == 1 else b"".join(batch))

    def _close(self) -> None:
        if self.closing:
            return
        self._flush()
        self.closing = True
        self.state = CLOSING
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        """Reset the connection (RST), as http.sys does for Basic 503 verbosity."""
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
        transport.abort()

    # -- timers (the app's sweeper calls this about once a second) ---------------------------
    def sweep(self, now: float) -> None:
        """Enforce header wait, idle, entity body and the minimum send rate (the decisions are
        ``timers``'s; ``now`` is the app's clock)."""
        if self.closing or self.transport is None:
            return
        s = self.app.config.settings
        body_limit_s = self.route.entity_body_s if self.route is not None else s.entity_body_s
        expiry = expired(
            self.state, self.since, now, s, body_limit_s=body_limit_s, body_done=self.body_done
        )
        if expiry is not None:
            self.app.stats.error(expiry.value)
            if expiry is Expiry.IDLE:
                self._close()
            else:
                # A head timed out before any byte of it came: close without a word.
                self._timed_out(0 if expiry is Expiry.HEADER_WAIT and not self.head_bytes else 408)
            return
        buffered = self.transport.get_write_buffer_size()
        too_slow, self.write_mark = send_rate(self.write_mark, buffered, now, s.min_send_rate)
        if too_slow:
            self.app.stats.error(Expiry.MIN_SEND_RATE.value)
            self._abort()

    def _timed_out(self, status: int) -> None:
        if status and not self.response_started:
            self.status = status
            self._write(write_error_response(status))
            self.response_started = True
        self._close()

    def drain(self) -> None:
        """The listener is stopping: idle connections close now, busy ones after their response."""
        if self.state == IDLE or (self.state == HEAD and not self.head_bytes):
            self._close()
