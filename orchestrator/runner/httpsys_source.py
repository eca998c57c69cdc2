"""Requests from an http.sys request queue (Windows, or Windows CPython under Wine): the runner's
``Source`` for the HTTP.sys backend, feeding the same ``wsgi.WsgiBridge`` as the socket source.

Owns: ``HttpSysSource`` (N threads, each blocked in one synchronous ``HttpReceiveHttpRequest`` — ctypes
releases the GIL — so at most N requests leave the queue at a time and the rest wait in http.sys for
sibling processes); ``QueueBody`` (``wsgi.input`` streamed with ``HttpReceiveRequestEntityBody``, read
only when the app asks); ``QueueResponder`` (the whole response in one ``HttpSendHttpResponse``, since
Wine's http.sys cannot stream response bodies); the ``QueuePort`` seam those three use; and
``attach_queue``, which opens the queue the controller named: by inherited handle
(``ORCHESTRATOR_QUEUE_HANDLE``, how workers get it under Wine, where names are ignored) or by name with
``OPEN_EXISTING`` (``ORCHESTRATOR_QUEUE``).

An app exception is answered 500 by the bridge and the thread goes on; a receive that fails because
the queue is gone while not stopping ends the process (exit 1) so the controller replaces it.
Stopping: take no new work, let in-flight requests finish, then ``HttpShutdownRequestQueue`` (on
Windows: this process's unreceived requests move to a sibling, the overlapped-recycle primitive; never
under Wine, where it aborts the process) and close the handle.

Imports ``orchestrator.httpapi`` (``_ffi``, ``binding``, ``handles``, ``queue_open``,
``capabilities``, ``worker``) lazily, only in ``attach_queue``/``HttpApiPort``: the rest of this module is
the runner's standard-library code and is tested on Linux against a scripted port. Must not import
a backend (``runner`` is independent of them), ``signal``, app loading or the socket source.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Protocol

from orchestrator.runner.errors import BootError, ClientDisconnected
from orchestrator.runner.http11 import Body
from orchestrator.runner.wsgi import Peer, Request, WsgiBridge, split_host

if TYPE_CHECKING:
    from orchestrator.httpapi.worker import QueueWorker

log = logging.getLogger("orchestrator.runner")

ENV_QUEUE = "ORCHESTRATOR_QUEUE"
ENV_QUEUE_HANDLE = "ORCHESTRATOR_QUEUE_HANDLE"

# Win32 codes this module branches on (the same values as _ffi.ErrorCode).
ERROR_INVALID_HANDLE = 6
ERROR_NETNAME_DELETED = 64
ERROR_OPERATION_ABORTED = 995
ERROR_CONNECTION_INVALID = 1229
ERROR_CONNECTION_ABORTED = 1236
_CLIENT_GONE = frozenset(
    {ERROR_NETNAME_DELETED, ERROR_CONNECTION_INVALID, ERROR_CONNECTION_ABORTED}
)
_QUEUE_GONE = frozenset({ERROR_INVALID_HANDLE, ERROR_OPERATION_ABORTED})

BODY_CHUNK_BYTES = 64 * 1024
HTTP_SEND_RESPONSE_FLAG_DISCONNECT = 0x1


class QueueRequest(Protocol):
    """What the source needs of a received request (``httpapi.worker.ReceivedRequest``)."""

    @property
    def request_id(self) -> int: ...
    @property
    def url_context(self) -> int: ...
    @property
    def method(self) -> str: ...
    @property
    def version(self) -> tuple[int, int]: ...
    @property
    def raw_url(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def remote(self) -> tuple[str, int] | None: ...
    @property
    def body(self) -> bytes: ...
    @property
    def more_body(self) -> bool: ...


class QueuePort(Protocol):
    """One process's use of a request queue. Failures are ``OSError`` with ``winerror`` set."""

    def receive(self) -> QueueRequest:
        """Block for the next request: its head and whatever body came with it."""
        ...

    def read_body(self, request_id: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` more body bytes; ``b""`` at the end of the body."""
        ...

    def respond(
        self,
        request_id: int,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        disconnect: bool,
    ) -> None:
        """Send the whole response in one call."""
        ...

    def shutdown(self) -> None:
        """Stop receiving in this process (a no-op where http.sys cannot, i.e. under Wine)."""
        ...

    def close(self) -> None:
        """Close the handle and release the HTTP Server API."""
        ...


def _win_code(exc: OSError) -> int | None:
    code = getattr(exc, "winerror", None)
    return code if isinstance(code, int) else None


class QueueBody(Body):
    """A request body as ``wsgi.input``: what came with the request, then entity-body reads.

    Each entity-body read asks http.sys for up to ``BODY_CHUNK_BYTES`` and keeps what the app did
    not take yet: one call into http.sys per chunk, however small the app's reads. (An app reading
    7 bytes at a time made a 50 KB body cross in 7,000 calls: over 10 s under a loaded Wine.) Still
    lazy: nothing is fetched before the app reads.
    """

    __slots__ = ("_buffer", "_done", "_offset", "_port", "_request_id")

    def __init__(self, port: QueuePort, request_id: int, first: bytes, more: bool) -> None:
        super().__init__()
        self._port = port
        self._request_id = request_id
        self._buffer = first
        self._offset = 0  # into _buffer: slicing off the front would copy the rest on every read
        self._done = not more

    @property
    def complete(self) -> bool:
        """Whether every body byte has been read from http.sys."""
        return self._done and self._offset >= len(self._buffer)

    def _read_some(self, n: int) -> bytes:
        if self._offset >= len(self._buffer):
            if self._done:
                return b""
            try:
                self._buffer = self._port.read_body(self._request_id, BODY_CHUNK_BYTES)
            except OSError as exc:
                self._done = True
                self._buffer = b""
                raise ClientDisconnected(f"reading the request body failed: {exc}") from exc
            self._offset = 0
            if not self._buffer:
                self._done = True
                return b""
        start = self._offset
        self._offset = min(start + n, len(self._buffer))
        return self._buffer[start : self._offset]


class QueueResponder:
    """Collects a response and sends it with one ``HttpSendHttpResponse``."""

    def __init__(self, port: QueuePort, request_id: int, method: str) -> None:
        self._port = port
        self._request_id = request_id
        self._head_only = method == "HEAD"
        self._status = ""
        self._headers: list[tuple[str, str]] = []
        self._declared: int | None = None
        self._close = False
        self._body: list[bytes] = []
        self._sent = False

    @property
    def headers_sent(self) -> bool:
        """Whether the response went out (it goes out whole, at ``finish``)."""
        return self._sent

    def start(
        self, status: str, headers: list[tuple[str, str]], content_length: int | None, close: bool
    ) -> None:
        """Set (or, before ``finish``, replace) the status and headers."""
        self._status = status
        self._headers = list(headers)
        self._declared = content_length
        self._close = close
        self._body = []

    def write(self, data: bytes) -> None:
        """Buffer body bytes (http.sys under Wine cannot stream a response body)."""
        self._body.append(data)

    def finish(self) -> None:
        """Send status, headers and body; a client that went away is ``ClientDisconnected``."""
        code_text, _, reason = self._status.partition(" ")
        code = int(code_text)
        body = b"".join(self._body)
        headers = merge_headers(self._headers)
        if not (100 <= code < 200 or code in (204, 304)):
            length = self._declared if self._head_only and self._declared is not None else len(body)
            if self._declared is not None and not self._head_only and self._declared != len(body):
                log.warning(
                    "the app declared Content-Length %d but sent %d bytes; sending %d",
                    self._declared,
                    len(body),
                    len(body),
                )
            headers.append(("Content-Length", str(length)))
        if self._head_only or 100 <= code < 200 or code in (204, 304):
            body = b""
        try:
            self._port.respond(
                self._request_id, code, reason, headers, body, disconnect=self._close
            )
        except OSError as exc:
            if _win_code(exc) in _CLIENT_GONE:
                self._sent = True
                raise ClientDisconnected(f"sending the response failed: {exc}") from exc
            raise
        self._sent = True


#: Fields sent once per value, never comma-folded: a cookie's Expires has a comma (RFC 6265 section
#: 3), and authentication challenges are hard to split again.
UNFOLDED = frozenset({"set-cookie", "www-authenticate", "proxy-authenticate"})


def merge_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Repeated fields folded into one comma-separated field (RFC 9110 section 5.3), except those in
    ``UNFOLDED``, which stay one field per value (``build_response`` sends a repeated known header
    through ``HTTP_MULTIPLE_KNOWN_HEADERS``)."""
    out: list[tuple[str, str]] = []
    index: dict[str, int] = {}
    for name, value in headers:
        key = name.lower()
        if key in UNFOLDED:
            out.append((name, value))
        elif key not in index:
            index[key] = len(out)
            out.append((name, value))
        else:
            first_name, first_value = out[index[key]]
            out[index[key]] = (first_name, f"{first_value}, {value}")
    return out


class HttpSysSource:
    """Serves a WSGI bridge from a request queue with ``threads`` receiving threads."""

    def __init__(
        self,
        port: QueuePort,
        bridge: WsgiBridge,
        *,
        threads: int = 8,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        """Describe the source; nothing is received before ``start()``.

        Args:
            port: the queue (``attach_queue()``, or a scripted one in tests).
            bridge: the WSGI bridge.
            threads: how many requests may be in flight at once.
            on_fatal: called when the queue is lost while serving; exits the process (code 1) by
                default, so the controller starts a replacement.
        """
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._port = port
        self._bridge = bridge
        self._stopping = False
        self._in_flight = 0
        self._served = 0
        self._idle = threading.Condition()
        self._on_fatal = on_fatal or _exit_process
        self._threads = [
            threading.Thread(target=self._serve, name=f"runner-queue-{i}", daemon=True)
            for i in range(threads)
        ]
        self._closed = False

    @property
    def served(self) -> int:
        """Requests handled so far."""
        return self._served

    # -- Source protocol ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the receiving threads."""
        for thread in self._threads:
            thread.start()

    def stop_accepting(self) -> None:
        """Take no new request; those in flight finish. The queue itself stays open until ``close``."""
        self._stopping = True

    def wait_idle(self, timeout_s: float) -> bool:
        """True once stopping and no request is in flight."""
        with self._idle:
            return self._idle.wait_for(
                lambda: self._stopping and self._in_flight == 0, timeout=timeout_s
            )

    def close(self) -> None:
        """Shut the queue down for this process (rerouting what it has not received), close it."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        with contextlib.suppress(OSError):
            self._port.shutdown()
        with contextlib.suppress(OSError):
            self._port.close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=0.1)

    # -- receiving threads ----------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stopping:
            try:
                request = self._port.receive()
            except OSError as exc:
                if self._stopping:
                    return
                if _win_code(exc) in _QUEUE_GONE:
                    log.critical("the request queue is gone: %s", exc)
                    self._on_fatal(str(exc))
                    return
                log.error("receiving a request failed: %s", exc)
                continue
            with self._idle:
                self._in_flight += 1
            try:
                self._handle(request)
            except BaseException:  # a bug here must not end the thread and shrink the pool
                log.exception("unexpected error serving a request")
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._served += 1
                    self._idle.notify_all()

    def _handle(self, received: QueueRequest) -> None:
        major, minor = received.version
        target = received.raw_url or (received.path + received.query)
        name, port_text = split_host(received.host, "80")
        remote = received.remote
        request = Request(
            method=received.method,
            target=target,
            version=f"HTTP/{major}.{minor}",
            headers=list(received.headers),
            body=QueueBody(self._port, received.request_id, received.body, received.more_body),
            peer=Peer(remote[0], remote[1]) if remote else Peer(),
            server_name=name or "localhost",
            server_port=port_text,
        )
        responder = QueueResponder(self._port, received.request_id, received.method)
        self._bridge.handle(request, responder)


def _exit_process(reason: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(1)


# --- the real queue ------------------------------------------------------------------------------------
class HttpApiPort:
    """``QueuePort`` over ``httpapi.dll`` through ``orchestrator.httpapi`` (Windows or Wine).

    The receive here does not read the rest of the body: it is streamed into ``wsgi.input`` on
    demand (``QueueWorker.read_body_chunk``).
    """

    def __init__(
        self,
        worker: QueueWorker,
        *,
        close_handle: Callable[[], None],
        terminate: Callable[[], None],
        can_shutdown: bool,
    ) -> None:
        self.worker = worker
        self._close_handle = close_handle
        self._terminate = terminate
        self._can_shutdown = can_shutdown

    def receive(self) -> QueueRequest:
        # Without the rest of the body: it is streamed into ``wsgi.input`` on demand.
        return self.worker.receive(read_body=False)

    def read_body(self, request_id: int, max_bytes: int) -> bytes:
        return self.worker.read_body_chunk(request_id, max_bytes)

    def respond(
        self,
        request_id: int,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        disconnect: bool,
    ) -> None:
        flags = HTTP_SEND_RESPONSE_FLAG_DISCONNECT if disconnect else 0
        self.worker.respond(request_id, status, reason, list(headers), body, flags=flags)

    def shutdown(self) -> None:
        if self._can_shutdown:
            self.worker.api.HttpShutdownRequestQueue(self.worker.handle)
        # Under Wine HttpShutdownRequestQueue is a stub that aborts the process: never call it.

    def close(self) -> None:
        try:
            self._close_handle()
        finally:
            self._terminate()


def attach_queue(environ: MutableMapping[str, str] | None = None) -> HttpApiPort:
    """Open the request queue the controller gave this worker.

    ``ORCHESTRATOR_QUEUE_HANDLE`` (an inherited handle, decimal or 0x-hex) wins over
    ``ORCHESTRATOR_QUEUE`` (a name to attach to with ``OPEN_EXISTING``); the handle variable is removed
    from the environment so the app's own children do not inherit the idea. Call it before importing
    the app, as the socket source takes its fds first.

    Raises:
        BootError: not on Windows, no queue given, or the queue cannot be opened (exit code 3).
    """
    env = os.environ if environ is None else environ
    handle_text = env.pop(ENV_QUEUE_HANDLE, "")
    name = env.get(ENV_QUEUE, "")
    if sys.platform != "win32":
        raise BootError("the http.sys request source needs Windows (httpapi.dll)")
    if not handle_text and not name:
        raise BootError(f"no request queue to serve: {ENV_QUEUE} is not set")
    from orchestrator.httpapi.binding import RealBinding
    from orchestrator.httpapi.capabilities import detect_capabilities
    from orchestrator.httpapi.handles import ApiInit
    from orchestrator.httpapi.queue_open import (
        QueueMode,
        QueueOpenError,
        open_request_queue,
    )
    from orchestrator.httpapi.worker import QueueWorker

    binding = RealBinding()
    try:
        init = ApiInit(binding)
        caps = detect_capabilities()
    except OSError as exc:
        raise BootError(f"the HTTP Server API is not usable: {exc}") from exc
    if handle_text:
        try:
            handle = int(handle_text, 0)
        except ValueError:
            init.close()
            raise BootError(f"{ENV_QUEUE_HANDLE}={handle_text!r} is not a handle value") from None

        def close_handle() -> None:
            binding.close_request_queue(handle)

    else:
        if not caps.named_queues:
            init.close()
            raise BootError(
                f"queue names do not work here (Wine {caps.wine_version}); the controller must "
                f"pass an inherited handle in {ENV_QUEUE_HANDLE}"
            )
        try:
            queue = open_request_queue(binding, name, QueueMode.ATTACH)
        except (QueueOpenError, OSError) as exc:
            init.close()
            raise BootError(f"cannot attach to request queue {name!r}: {exc}") from exc
        handle = queue.handle
        close_handle = queue.close
    log.info("serving request queue %s (handle %#x)", name or "(inherited)", handle)
    return HttpApiPort(
        QueueWorker(handle, binding.api, multiple_known_headers=caps.multiple_known_headers),
        close_handle=close_handle,
        terminate=init.close,
        can_shutdown=caps.shutdown_queue,
    )
