"""The listener process: its event loop, its servers and its channel to the controller.

Owns: ``ListenerApp`` and ``main``. It runs unprivileged; every listening socket comes from the
controller over the channel (``config`` messages), with the routing table and settings, which it swaps
in atomically (new connections and new requests use the new table; nothing is dropped) and
acknowledges. Access records go to the access log's fd (sent with each config: the controller's
stderr or a file; none when it is off), as JSON or ``key=value`` text as the config says, in
batches (every second or 512 records); its own error lines go to its stderr, a pipe the controller
reads and tags. It reports counters every second, enforces the connection timers with one sweep a
second (on an injected clock, ``ListenerApp.now``; the decisions are ``timers``'s), and on
``drain`` (or SIGTERM) stops accepting, lets in-flight requests finish and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable

from orchestrator.backends.linux.listener import core
from orchestrator.backends.linux.listener.channel import Channel
from orchestrator.backends.linux.listener.config import Config, QueueRoute, Settings, build_config
from orchestrator.backends.linux.listener.core import (
    FAST_MAX_FIELDS,
    Poller,
    RouteCache,
    UpstreamPool,
    format_log,
)
from orchestrator.backends.linux.listener.fast import format_log_text
from orchestrator.backends.linux.listener.message import (
    AccessLogConfig,
    ListenerConfig,
    SocketConfig,
    TlsCertificate,
    certificate_for,
)
from orchestrator.backends.linux.listener.proxy import ClientConnection, UpstreamConnection
from orchestrator.backends.linux.listener.stats import Stats
from orchestrator.routing.table import RouteTable

#: Set (to anything but 0) to send every request through the general path: a diagnostic switch.
NO_FASTPATH = "ORCH_LISTENER_NO_FASTPATH"
SWEEP_S = 1.0
STATS_S = 1.0
DRAIN_LIMIT_S = 30.0
#: Connections taken from one listening socket per wake-up: enough to empty a burst's backlog in
#: one go, few enough that requests already in progress are not starved meanwhile.
ACCEPT_BATCH = 512
#: How long to stop accepting after running out of file descriptors (else the ready socket spins).
ACCEPT_PAUSE_S = 0.1


class _Listening:
    """One listening socket this process accepts on."""

    __slots__ = ("context", "scheme", "sock")

    def __init__(self, sock: socket.socket, scheme: str, context: ssl.SSLContext | None) -> None:
        self.sock = sock
        self.scheme = scheme
        self.context = context


class ListenerApp:
    """One listener process."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        channel: Channel,
        access_log: bool,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        #: The clock of every timer and duration (monotonic seconds); a test may inject its own.
        #: The hot path reads it once per request (the compiled core reads CLOCK_MONOTONIC itself
        #: when this is ``time.monotonic``).
        self.now = now
        self.channel = channel
        self.config = Config(0, Settings(), RouteTable.build([]), {})
        self.stats = Stats()
        self.connections: set[ClientConnection] = set()
        self.servers: dict[str, _Listening] = {}
        self.pools: dict[tuple[str, str], UpstreamPool] = {}
        self.draining = False
        self.access_enabled = access_log
        # Access records raw (formatted when flushed), and where they go: ``access_log`` (a test's
        # switch) means this process's stderr until a config sends the access log's fd.
        self.log_records: list[str | tuple[object, ...]] = []
        self.access_fd: int | None = 2 if access_log else None
        self.access_owned = False  # the fd came with a config: closed when the next one comes
        self.access_format = "json"
        self.access_prefix = ""
        # Error lines, for this process's stderr (the controller reads and tags them).
        self.error_lines: list[str] = []
        self.done = loop.create_future()
        self.pid = os.getpid()
        self.route_caches: dict[tuple[str, str, int], RouteCache] = {}
        self.poller = Poller(loop)  # every upstream connection of this process
        # A diagnostic switch: every request through the general path, to compare the two.
        self.fast_enabled = os.environ.get(NO_FASTPATH, "") in ("", "0")
        self._fast_limits(self.config.settings)

    def _fast_limits(self, settings: Settings) -> None:
        """What the fast path may take without a limit check: a head no longer than any byte limit
        and with no more fields than allowed (the general path enforces the limits)."""
        self.fast_head_max = min(
            settings.max_request_header_bytes,
            settings.max_url_bytes + 2,
            settings.max_request_header_bytes + 2,
        )
        self.fast_max_fields = min(FAST_MAX_FIELDS, settings.max_header_fields)
        self.max_body_bytes = settings.max_body_bytes

    def route_cache(self, scheme: str, local_ip: str, local_port: int) -> RouteCache:
        """The fast path's routing decisions for one listening address, under the current table."""
        key = (scheme, local_ip, local_port)
        cache = self.route_caches.get(key)
        if cache is None:
            cache = self.route_caches[key] = RouteCache()
        return cache

    # -- logging -----------------------------------------------------------------------------
    def log(self, event: str, **fields: object) -> None:
        """An error worth the controller's attention (sent over the channel, rate-limited)."""
        if self.stats.errors.get("_logged", 0) > 10_000:
            return
        self.stats.errors["_logged"] = self.stats.errors.get("_logged", 0) + 1
        self._line({"event": f"listener_{event}", **fields})

    def access_record(
        self,
        now: float,
        client: str,
        host: bytes,
        method: bytes,
        target: bytes,
        status: int,
        sent: int,
        duration_ms: float,
        queue: str,
        group: str,
        upstream_ms: float,
    ) -> None:
        """One access log record per request (``now`` on the monotonic clock), kept raw and turned
        into a JSON line when the log is flushed: every second or every 512 lines."""
        self.log_records.append(
            (
                now,
                client,
                host,
                method,
                target,
                status,
                sent,
                duration_ms,
                queue,
                group,
                upstream_ms,
            )
        )
        if len(self.log_records) >= 512:
            self.flush_log()

    def access(
        self,
        client: str,
        host: bytes,
        method: bytes,
        target: bytes,
        status: int,
        sent: int,
        duration_ms: float,
        queue: str,
        group: str,
        upstream_ms: float,
    ) -> None:
        """An access log record for a request the general path answered."""
        if self.access_enabled:
            self.access_record(
                self.now(),
                client,
                host,
                method,
                target,
                status,
                sent,
                duration_ms,
                queue,
                group,
                upstream_ms,
            )

    def _line(self, record: dict[str, object]) -> None:
        record["ts"] = round(time.time(), 3)
        record["pid"] = os.getpid()
        self.error_lines.append(json.dumps(record, separators=(",", ":")))
        if len(self.error_lines) >= 512:
            self.flush_log()

    def flush_log(self) -> None:
        """Write the buffered error lines to stderr and access records to the access log."""
        if self.error_lines:
            lines, self.error_lines = self.error_lines, []
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write("\n".join(lines) + "\n")
                sys.stderr.flush()
        if not self.log_records:
            return
        records, self.log_records = self.log_records, []
        if self.access_fd is None:
            return
        wall_offset = time.time() - self.now()
        if self.access_format == "text":
            text = format_log_text(records, wall_offset, self.pid)
        else:
            text = format_log(records, wall_offset, self.pid)
        prefix = self.access_prefix
        if prefix:
            text = prefix + text[:-1].replace("\n", "\n" + prefix) + "\n"
        data = memoryview(text.encode("utf-8", "surrogateescape"))
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.access_fd, data) :]

    def set_access_log(self, config: AccessLogConfig, fd: int | None) -> None:
        """Take the access log a config sends: what is buffered goes to the old one first."""
        self.flush_log()
        if self.access_owned and self.access_fd is not None:
            os.close(self.access_fd)
        self.access_fd = fd if config.enabled else None
        self.access_owned = self.access_fd is not None
        self.access_enabled = self.access_fd is not None
        self.access_format = config.format
        self.access_prefix = config.prefix

    # -- queues ------------------------------------------------------------------------------
    def pool(self, queue: QueueRoute) -> UpstreamPool:
        """The upstream pool of a queue (a re-created queue socket gets a new pool)."""
        key = (queue.name, queue.path)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = UpstreamPool(
                queue.name, queue.path, self.poller, UpstreamConnection
            )
        return pool

    # -- channel -----------------------------------------------------------------------------
    def on_channel(self) -> None:
        """Read controller messages."""
        for message, fds in self.channel.receive():
            kind = message.get("type")
            if kind == "config":
                self.apply_config(message, fds)
            else:
                for fd in fds:
                    os.close(fd)
                if kind == "drain":
                    self.start_drain()
                elif kind == "stats_request":
                    self.send_stats()
        if self.channel.closed:
            # The controller is gone (PDEATHSIG normally takes us first): stop serving.
            self.start_drain()

    def apply_config(self, raw: dict[str, object], fds: list[int]) -> None:
        """Swap in a new routing table and settings; open new sockets, close removed ones."""
        try:
            message = ListenerConfig.from_message(raw)
            config = build_config(message)
        except (ValueError, KeyError, TypeError) as exc:  # a MessageError names the field
            for fd in fds:
                os.close(fd)
            self.log("config_error", error=str(exc))
            return
        access_fd = None
        if message.access_log.enabled and len(fds) > len(message.sockets):
            access_fd = fds[len(message.sockets)]
        self.set_access_log(message.access_log, access_fd)
        wanted: set[str] = set()
        for item, fd in zip(message.sockets, fds, strict=False):
            wanted.add(item.id)
            if item.id in self.servers or self.draining:
                os.close(fd)  # already serving it: the controller sends every socket every time
                continue
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            context = self._tls(item, message.session.tls) if item.scheme == "https" else None
            self._serve(item.id, _Listening(sock, item.scheme, context))
        for sid in list(self.servers):
            if sid not in wanted:
                self._unserve(sid)
        previous = self.config
        self.config = config
        self._fast_limits(config.settings)
        # The fast path's routing decisions were made under the old table.
        for cache in self.route_caches.values():
            cache.valid = False
        self.route_caches.clear()
        live = {(q.name, q.path) for q in config.queues.values()}
        for key in list(self.pools):
            if key not in live:
                self.pools.pop(key).close()
        if previous.version != config.version:
            with contextlib.suppress(OSError):
                self.channel.send({"type": "ack", "version": config.version})

    def _tls(
        self, item: SocketConfig, bindings: tuple[TlsCertificate, ...]
    ) -> ssl.SSLContext | None:
        binding = certificate_for(item, bindings)
        if binding is None:
            self.log("tls_missing", port=item.port)
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        # The key never touches the disk: it lives in an anonymous memory file.
        cert_fd = os.memfd_create("cert")
        key_fd = os.memfd_create("key")
        try:
            os.write(cert_fd, binding.cert_pem.encode())
            os.write(key_fd, binding.key_pem.encode())
            context.load_cert_chain(f"/proc/self/fd/{cert_fd}", f"/proc/self/fd/{key_fd}")
        except (ssl.SSLError, OSError) as exc:
            self.log("tls_error", port=item.port, error=str(exc))
            return None
        finally:
            os.close(cert_fd)
            os.close(key_fd)
        return context

    # -- accepting ---------------------------------------------------------------------------
    # Our own accept loop rather than ``loop.create_server``: uvloop's server takes one connection
    # per loop iteration, so under load a burst of new clients waited in the backlog for seconds
    # (256 connections at once: p99 1.3 s, every request inside the listener under 150 ms).
    def _serve(self, sid: str, listening: _Listening) -> None:
        self.servers[sid] = listening
        self.loop.add_reader(listening.sock.fileno(), self._accept, sid)

    def _unserve(self, sid: str) -> None:
        listening = self.servers.pop(sid)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(listening.sock.fileno())
        listening.sock.close()

    def _accept(self, sid: str) -> None:
        listening = self.servers.get(sid)
        if listening is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = listening.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                # EMFILE and the like: the socket stays readable, so pause instead of spinning.
                self.stats.error("AcceptFailed")
                self.log("accept_failed", error=exc.strerror or str(exc))
                with contextlib.suppress(ValueError, OSError):
                    self.loop.remove_reader(listening.sock.fileno())
                self.loop.call_later(ACCEPT_PAUSE_S, self._resume_accept, sid, listening)
                return
            conn.setblocking(False)
            self.loop.create_task(self._connect(conn, listening))

    def _resume_accept(self, sid: str, listening: _Listening) -> None:
        if self.servers.get(sid) is listening and not self.draining:
            self.loop.add_reader(listening.sock.fileno(), self._accept, sid)

    async def _connect(self, conn: socket.socket, listening: _Listening) -> None:
        scheme = listening.scheme
        try:
            await self.loop.connect_accepted_socket(
                lambda: ClientConnection(self, scheme),
                sock=conn,
                ssl=listening.context,
                ssl_handshake_timeout=10.0 if listening.context is not None else None,
            )
        except OSError:  # ssl.SSLError, TimeoutError and ConnectionError included
            # A failed TLS handshake or a client gone before we got to it: nothing to answer.
            self.stats.error("Connection_Dropped")
            conn.close()

    # -- timers ------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Connection timers, once a second, on the app's clock."""
        now = self.now()
        for conn in list(self.connections):
            conn.sweep(now)
        self.flush_log()
        if self.draining and not self.connections:
            self._exit()
            return
        self.loop.call_later(SWEEP_S, self.sweep)

    def send_stats(self) -> None:
        """Report counters to the controller."""
        with contextlib.suppress(OSError):
            self.channel.send(self.stats.as_message())

    def stats_tick(self) -> None:
        """Counters every second."""
        self.send_stats()
        self.loop.call_later(STATS_S, self.stats_tick)

    # -- stopping ----------------------------------------------------------------------------
    def start_drain(self) -> None:
        """Stop accepting; finish in-flight requests; close idle connections; then exit."""
        if self.draining:
            return
        self.draining = True
        for sid in list(self.servers):
            self._unserve(sid)
        for conn in list(self.connections):
            conn.drain()
        self.loop.call_later(DRAIN_LIMIT_S, self._exit)
        if not self.connections:
            self._exit()

    def _exit(self) -> None:
        self.flush_log()
        self.send_stats()
        if not self.done.done():
            self.done.set_result(None)


def main(argv: list[str]) -> int:
    """Run a listener process: ``--channel-fd N``."""
    parser = argparse.ArgumentParser(prog="orchestrator-listener")
    parser.add_argument("--channel-fd", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sock = socket.socket(fileno=args.channel_fd)
    sock.setblocking(False)
    channel = Channel(sock)
    # The access log is off until a config sends its fd (session.listener.accessLog).
    app = ListenerApp(loop, channel, access_log=False)
    # Which hot path runs, and why, once per process (the twin is as correct, and slower).
    app.log("core", implementation=core.IMPLEMENTATION, reason=core.REASON)
    loop.add_reader(channel.fileno(), app.on_channel)
    loop.add_signal_handler(signal.SIGTERM, app.start_drain)
    loop.add_signal_handler(signal.SIGINT, app.start_drain)
    loop.call_later(SWEEP_S, app.sweep)
    loop.call_later(STATS_S, app.stats_tick)
    profile_dir = os.environ.get("ORCH_LISTENER_PROFILE")
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        loop.run_until_complete(app.done)
    finally:
        if profiler is not None and profile_dir:
            profiler.disable()
            with contextlib.suppress(OSError):
                profiler.dump_stats(os.path.join(profile_dir, f"listener-{os.getpid()}.prof"))
        with contextlib.suppress(Exception):
            loop.remove_reader(channel.fileno())
        channel.close()
    return 0
