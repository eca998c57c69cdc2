"""The WSGI bridge: one request in, one response out, whatever transport carried them.

Owns: PEP 3333 — ``environ`` built from a transport-neutral ``Request``; ``start_response`` with its
``exc_info`` rules and validation of status and headers; headers sent lazily with the first non-empty
body chunk; a 500 (and a close) when the app fails before its headers went out; ``close()`` on every
iterable; the access log. A transport implements ``Responder`` and owns framing and keep-alive: the
HTTP/1.1 connection (``connection.py``) here, an http.sys request queue on Windows.
Must not import ``socket``, ``threading``, the socket source or ``http11``; from ``orchestrator`` only
``orchestrator.runner.errors``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote_to_bytes
from wsgiref.types import ErrorStream, InputStream, WSGIApplication, WSGIEnvironment

from orchestrator.runner.errors import ClientDisconnected, HttpError

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

log = logging.getLogger("orchestrator.runner")
access_log = logging.getLogger("orchestrator.runner.access")

_STATUS = re.compile(r"[1-9][0-9]{2} [^\x00-\x1f\x7f]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# PEP 3333 forbids apps hop-by-hop headers; framing and persistence belong to the transport.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent the request. ``is_proxy``: the peer is the front end, so its X-Forwarded-* are trusted.

    A Unix-socket peer is always the front end: only the listener's uid may connect to a queue socket
    (notes/linux-isolation.md §3.2). A TCP peer (``--bind HOST:PORT``) could be anyone.
    """

    addr: str = ""
    port: int | None = None
    is_proxy: bool = False


@dataclass(slots=True)
class Request:
    """A request as any transport delivers it; ``body`` is streamed into ``wsgi.input``."""

    method: str
    target: str  # the raw request-target: origin form, absolute form or "*"
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: list[tuple[str, str]]
    body: InputStream
    peer: Peer
    server_name: str = "localhost"  # used when the request has no Host header (HTTP/1.0)
    server_port: str = "80"


class Responder(Protocol):
    """The transport's half of a response; it decides framing (length, chunked, close-delimited)."""

    @property
    def headers_sent(self) -> bool:
        """Whether any byte of the response went out (after that a failure can only close)."""
        ...

    def start(
        self, status: str, headers: list[tuple[str, str]], content_length: int | None, close: bool
    ) -> None:
        """Set the response head; may be called again while ``headers_sent`` is false.

        ``headers`` never contain Content-Length or hop-by-hop fields: ``content_length`` is the app's
        declared length (``None`` when unknown) and ``close`` asks to end the connection afterwards.
        """
        ...

    def write(self, data: bytes) -> None:
        """Send body bytes (the head first, if it has not gone out)."""
        ...

    def finish(self) -> None:
        """End the response (send the head if nothing was written, and any end-of-body marker)."""
        ...


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file-like object in blocks and close it afterwards."""

    def __init__(self, filelike: object, block_size: int = _CHUNK_BYTES) -> None:
        self.filelike = filelike
        self.block_size = block_size
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self) -> Iterator[bytes]:
        read: Callable[[int], bytes] = getattr(self.filelike, "read")  # noqa: B009 - typed access
        while data := read(self.block_size):
            yield data


def split_host(host: str, default_port: str) -> tuple[str, str]:
    """``("example.org", "8080")`` from ``example.org:8080``; brackets stay on IPv6 literals."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    return name, port if port.isascii() and port.isdigit() else default_port


def _last_hop(value: str) -> str:
    return value.rpartition(",")[2].strip()


def _client_address(forwarded_for: str) -> str | None:
    last = _last_hop(forwarded_for)
    try:
        return str(ipaddress.ip_address(last.strip("[]")))
    except ValueError:
        return None


def build_environ(request: Request, errors: ErrorStream | None = None) -> WSGIEnvironment:
    """The PEP 3333 environ for ``request``.

    Header fields become ``HTTP_*`` (repeated fields joined with ``,``; ``Cookie`` with ``; ``); fields
    with ``_`` in their name are dropped so ``X_Forwarded_For`` cannot pose as ``X-Forwarded-For``
    (gunicorn does the same). ``REMOTE_ADDR`` and ``wsgi.url_scheme`` come from X-Forwarded-For (last
    hop) and X-Forwarded-Proto only when the peer is the front end; otherwise from the peer itself.

    Args:
        request: the request.
        errors: ``wsgi.errors``; ``sys.stderr`` by default.

    Returns:
        A fresh environ dict.
    """
    target = request.target
    path, _, query = target.partition("?")
    if not path.startswith("/") and path != "*":
        # Absolute form (RFC 9112 §3.2.2): a server must accept it; the path is what follows authority.
        authority_and_path = path.partition("://")[2]
        slash = authority_and_path.find("/")
        path = authority_and_path[slash:] if slash >= 0 else "/"
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": target,
        "REQUEST_URI": target,
        "SERVER_PROTOCOL": request.version,
        "REMOTE_ADDR": request.peer.addr,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": request.body,
        "wsgi.errors": sys.stderr if errors is None else errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,  # reading wsgi.input to EOF is safe: the body end reads as EOF
        "wsgi.file_wrapper": FileWrapper,
    }
    if request.peer.port is not None:
        environ["REMOTE_PORT"] = str(request.peer.port)
    for name, value in request.headers:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
            continue
        key = "HTTP_" + key
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    if request.peer.is_proxy:
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if proto and _last_hop(proto).lower() in ("http", "https"):
            environ["wsgi.url_scheme"] = _last_hop(proto).lower()
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded_for:
            environ["REMOTE_ADDR"] = _client_address(forwarded_for) or request.peer.addr
    default_port = "443" if environ["wsgi.url_scheme"] == "https" else "80"
    host = environ.get("HTTP_HOST")
    if host:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = split_host(host, default_port)
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = request.server_name, request.server_port
    return environ


def check_response(
    status: object, headers: object
) -> tuple[str, list[tuple[str, str]], int | None, bool]:
    """Validate what an app passed to ``start_response``.

    Returns:
        ``(status, headers, content_length, close)`` with Content-Length and ``Connection`` taken out:
        framing is the transport's job.

    Raises:
        ValueError: a malformed status or header (CR/LF would split the response), a bad or repeated
            Content-Length, or a hop-by-hop header other than ``Connection``.
        TypeError: status or headers of the wrong type.
    """
    if not isinstance(status, str):
        raise TypeError(f"status must be str, not {type(status).__name__}")
    if not _STATUS.fullmatch(status):
        raise ValueError(f"invalid status {status!r} (expected e.g. '200 OK')")
    if not isinstance(headers, list):
        raise TypeError(f"headers must be a list, not {type(headers).__name__}")
    out: list[tuple[str, str]] = []
    length: int | None = None
    close = False
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"header {item!r} is not a (name, value) tuple")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header {item!r} must be a pair of str")
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid header {item!r}")
        lower = name.lower()
        if lower == "content-length":
            if length is not None or not (value.isascii() and value.isdigit()):
                raise ValueError(f"invalid or repeated Content-Length {value!r}")
            length = int(value)
        elif lower == "connection":
            close = close or "close" in value.lower()
        elif lower in _HOP_BY_HOP:
            raise ValueError(f"hop-by-hop header {name!r} is not allowed in a WSGI response")
        else:
            out.append((name, value))
    return status, out, length, close


def status_line(code: int) -> str:
    """``"500 Internal Server Error"`` for 500."""
    return f"{code} {HTTPStatus(code).phrase}"


class _Exchange:
    """The state of one response between the app and the responder."""

    __slots__ = (
        "body_bytes",
        "close",
        "content_length",
        "headers",
        "responder",
        "started",
        "status",
    )

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.content_length: int | None = None
        self.close = False
        self.started = False  # responder.start() was called with the current status
        self.body_bytes = 0

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        if exc_info is not None:
            try:
                if self.responder.headers_sent and exc_info[1] is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle (PEP 3333)
        elif self.status is not None:
            raise RuntimeError("start_response() called twice without exc_info")
        self.status, self.headers, self.content_length, self.close = check_response(status, headers)
        self.started = False
        return self.write

    def write(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError(f"the app produced {type(data).__name__}, not bytes")
        if not self.started:
            self._start()
        self.responder.write(data)
        self.body_bytes += len(data)

    def finish(self) -> None:
        if not self.started:
            self._start()
        self.responder.finish()

    def _start(self) -> None:
        if self.status is None:
            raise RuntimeError("the app did not call start_response() before sending its body")
        self.responder.start(self.status, self.headers, self.content_length, self.close)
        self.started = True

    def fail(self, code: int) -> None:
        """Answer ``code`` and close, if the response has not begun; otherwise nothing can be said."""
        if self.responder.headers_sent:
            return
        self.status = status_line(code)
        body = f"{HTTPStatus(code).phrase}\n".encode()
        try:
            self.responder.start(
                self.status, [("Content-Type", "text/plain; charset=utf-8")], len(body), True
            )
            self.responder.write(body)
            self.responder.finish()
        except (OSError, HttpError):
            pass  # the client is gone as well


class WsgiBridge:
    """Runs a WSGI app for requests from any transport."""

    def __init__(self, app: WSGIApplication, *, errors: ErrorStream | None = None) -> None:
        self.app = app
        self.errors = sys.stderr if errors is None else errors

    def handle(self, request: Request, responder: Responder) -> bool:
        """Run the app for ``request`` and send its response through ``responder``.

        The app's exceptions are contained here: before the headers went out they become a 500 with
        ``close``; after, the response is cut short. Either way the traceback goes to the log and the
        process keeps serving.

        Returns:
            True when the response went out whole and the connection may be reused; False when the
            transport must close it (app failure, bad request body, client gone).
        """
        started = time.perf_counter()
        exchange = _Exchange(responder)
        result: Iterable[bytes] | None = None
        ok = False
        environ = build_environ(request, self.errors)
        try:
            result = self.app(environ, exchange.start_response)
            if (
                exchange.content_length is None
                and isinstance(result, list | tuple)
                and exchange.status is not None
                and exchange.status[0] != "1"
                and exchange.status[:3] not in ("204", "304")
            ):
                # The whole body is already known: send a length instead of chunking (waitress does too).
                exchange.content_length = sum(len(chunk) for chunk in result)
            for chunk in result:
                if chunk:
                    exchange.write(chunk)
            exchange.finish()
            ok = True
        except ClientDisconnected as exc:
            log.debug("%s %s: %s", request.method, request.target, exc)
        except HttpError as exc:  # raised by wsgi.input: the request body was malformed
            log.info("%s %s: bad request body: %s", request.method, request.target, exc)
            exchange.fail(exc.status)
        except Exception:
            log.exception("error handling %s %s", request.method, request.target)
            exchange.fail(500)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("error in close() of the app's iterable")
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s "%s %s %s" %s %d %.1fms',
                environ["REMOTE_ADDR"] or "-",
                request.method,
                request.target,
                request.version,
                (exchange.status or "-")[:3],
                exchange.body_bytes,
                (time.perf_counter() - started) * 1000,
            )
        return ok and not exchange.close
