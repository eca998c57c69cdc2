"""Serialising what the listener sends: request heads for workers, chunk framing, error responses.

Owns: re-serialising a parsed `Request` for a worker (notes/http-front-end.md §4.3): CRLF only; exactly
one framing (an exact Content-Length, or chunked); hop-by-hop fields removed (Connection, Keep-Alive,
Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and every field named in Connection);
X-Forwarded-For/-Proto/-Host and Forwarded replaced by the listener's values. Workers never see client
bytes, only what this module writes from validated events. Also the small responses the listener
produces itself (errors with Content-Length and `Connection: close`, `100 Continue`).

Must not import: anything from `orchestrator`; from this package only `errors`, `events` and `_abnf`.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Final

from orchestrator.http1._abnf import is_field_value, is_token
from orchestrator.http1.errors import LocalProtocolError
from orchestrator.http1.events import Framing, Headers, Request, Response

# RFC 9110 §7.6.1 plus the de-facto Proxy-Connection; TE and Trailer are hop-by-hop too.
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Written by the listener itself, so any the client sent are dropped (never merged).
_REPLACED: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
    }
)
# Expect: the listener answers 100-continue itself; a worker must not send a second 100.
_HANDLED: Final = frozenset({b"expect"})
_DROP: Final = HOP_BY_HOP | _REPLACED | _HANDLED
# Trailer fields that would change framing, routing or authentication if merged (RFC 9110 §6.5.1).
_FORBIDDEN_TRAILERS: Final = _DROP | frozenset(
    {
        b"authorization",
        b"cache-control",
        b"content-encoding",
        b"content-range",
        b"content-type",
        b"expect",
        b"max-forwards",
        b"pragma",
        b"range",
        b"set-cookie",
        b"www-authenticate",
    }
)
_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"


def _check_value(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes) or not is_field_value(value) or value != value.strip(b" \t"):
        raise LocalProtocolError(f"{name} value {value!r} cannot be written as a field value")
    return value


def origin_form(target: bytes) -> bytes:
    """Return the origin-form of a request-target (absolute-form loses scheme and authority).

    `*` (OPTIONS) and origin-form targets are returned unchanged.
    """
    if target[:1] == b"/" or target == b"*":
        return target
    rest = target.split(b"://", 1)[1]
    cut = len(rest)
    for sep in (b"/", b"?"):
        k = rest.find(sep)
        if k != -1 and k < cut:
            cut = k
    path = rest[cut:]
    if not path.startswith(b"/"):
        path = b"/" + path  # "http://a?q" -> "/?q"
    return path


def write_request_head(
    request: Request,
    *,
    x_forwarded_for: bytes | None = None,
    x_forwarded_proto: bytes | None = None,
    x_forwarded_host: bytes | None = None,
    forwarded: bytes | None = None,
    host: bytes | None = None,
    content_length: int | None = None,
    keep_alive: bool = False,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
    target: bytes | None = None,
) -> bytes:
    """Serialise `request`'s head for a worker, from the parsed form only.

    Args:
        request: a parsed (hence valid) request.
        x_forwarded_for, x_forwarded_proto, x_forwarded_host, forwarded: the listener's values; each
            given one is written, and whatever the client sent under these names is always dropped.
        host: the Host to send (default: `request.host`); needed for an HTTP/1.0 request without one.
        content_length: send this exact length instead of the request's framing (the listener
            buffered a chunked body); None keeps the request's framing.
        keep_alive: False adds `Connection: close` (one upstream connection per request).
        extra_headers: more (name, value) pairs, appended after the client's fields.
        target: the origin-form target to send (the listener's normalised path and query, so the
            worker sees exactly what was routed); default: the request's own, in origin-form.

    Returns:
        The head bytes, ending with the empty line. Always HTTP/1.1 and origin-form.

    Raises:
        LocalProtocolError: a caller-supplied value is not a valid field value, or there is no Host.
    """
    target_host = request.host if host is None else _check_value("host", host)
    if not target_host:
        raise LocalProtocolError("no Host to forward (HTTP/1.0 without Host): pass host=")
    drop = _DROP.union(request.connection) if request.connection else _DROP
    lines = [
        request.method
        + b" "
        + (origin_form(request.target) if target is None else target)
        + b" HTTP/1.1",
        b"host: " + target_host,
    ]
    lines.extend(name + b": " + value for name, value in request.headers if name not in drop)
    for name, value in extra_headers:
        if not is_token(name) or name.lower() in _DROP:
            raise LocalProtocolError(f"extra header {name!r} is not a token or is written by us")
        lines.append(name + b": " + _check_value(name.decode("latin-1"), value))
    if content_length is not None:
        if content_length < 0:
            raise LocalProtocolError("content_length must be >= 0")
        lines.append(b"content-length: %d" % content_length)
    elif request.chunked:
        lines.append(b"transfer-encoding: chunked")
    elif request.content_length is not None:
        lines.append(b"content-length: %d" % request.content_length)
    elif request.method in _BODY_METHODS:
        # RFC 9110 §8.6: say "no content" explicitly where the method usually has some.
        lines.append(b"content-length: 0")
    for own_name, own_value in (
        (b"x-forwarded-for", x_forwarded_for),
        (b"x-forwarded-proto", x_forwarded_proto),
        (b"x-forwarded-host", x_forwarded_host),
        (b"forwarded", forwarded),
    ):
        if own_value is not None:
            lines.append(own_name + b": " + _check_value(own_name.decode(), own_value))
    if not keep_alive:
        lines.append(b"connection: close")
    lines.append(b"")
    lines.append(b"")
    return b"\r\n".join(lines)


def write_chunk(data: bytes) -> bytes:
    """Frame `data` as one chunk. Empty data gives b"" (an empty chunk would end the body)."""
    if not data:
        return b""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def write_last_chunk(trailers: Headers = ()) -> bytes:
    """The last chunk and trailer section. Trailers that could alter framing, routing or
    authentication if a worker merged them into the head are dropped."""
    if not trailers:
        return LAST_CHUNK
    lines = [b"0"]
    lines.extend(
        name + b": " + value for name, value in trailers if name not in _FORBIDDEN_TRAILERS
    )
    lines.append(b"")
    lines.append(b"")
    return b"\r\n".join(lines)


def write_error_response(
    status: int,
    *,
    body: bytes | None = None,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
    close: bool = True,
) -> bytes:
    """A complete response the listener sends itself: Content-Length, a plain-text body (default:
    the reason phrase) and, unless ``close`` is false, `Connection: close`.

    Args:
        status: 400-599 (e.g. a `RemoteProtocolError.error_status_hint`).
        body: the body; default `b"<code> <phrase>\\n"`.
        extra_headers: e.g. `[(b"retry-after", b"5")]` for a 503.

    Raises:
        LocalProtocolError: a status outside 400-599 or an invalid extra header.
    """
    if not 400 <= status <= 599:
        raise LocalProtocolError(f"{status} is not an error status")
    try:
        phrase = HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        phrase = b"Error"
    if body is None:
        body = b"%d %s\n" % (status, phrase)
    lines = [
        b"HTTP/1.1 %d %s" % (status, phrase),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
    ]
    if close:
        lines.append(b"connection: close")
    for name, value in extra_headers:
        if not is_token(name) or name.lower() in (
            b"content-length",
            b"connection",
            b"transfer-encoding",
        ):
            raise LocalProtocolError(f"extra header {name!r} is not a token or is written by us")
        lines.append(name + b": " + _check_value(name.decode("latin-1"), value))
    lines.append(b"")
    lines.append(b"")
    return b"\r\n".join(lines) + body


def write_response_head(
    response: Response, *, chunked: bool, keep_alive: bool, http10: bool = False
) -> bytes:
    """Serialise a worker's response head for the client, from the parsed form only.

    Hop-by-hop fields and those named in the worker's Connection field are dropped; framing is the
    listener's choice: the worker's exact Content-Length, re-chunked (``chunked``), or neither (a
    body delimited by closing the connection, or no body).

    Args:
        response: a parsed (hence valid) final response.
        chunked: send ``Transfer-Encoding: chunked`` (the body is re-chunked by the caller).
        keep_alive: the client connection stays open after this response.
        http10: the client spoke HTTP/1.0 (then ``Connection: keep-alive`` is explicit).
    """
    drop = HOP_BY_HOP.union(response.connection, (b"content-length",))
    lines = [b"HTTP/1.1 %d " % response.status_code + response.reason]
    lines.extend(name + b": " + value for name, value in response.headers if name not in drop)
    if response.framing is Framing.LENGTH and response.content_length is not None:
        lines.append(b"content-length: %d" % response.content_length)
    elif chunked:
        lines.append(b"transfer-encoding: chunked")
    elif response.framing is Framing.NONE and response.content_length is not None:
        lines.append(b"content-length: %d" % response.content_length)  # HEAD: the length it has
    if not keep_alive:
        lines.append(b"connection: close")
    elif http10:
        lines.append(b"connection: keep-alive")
    lines.append(b"")
    lines.append(b"")
    return b"\r\n".join(lines)
