"""Events the parsers produce: frozen, slotted dataclasses that validate on construction.

Owns: `Request`, `Response`, `Data`, `EndOfMessage`, `ConnectionClosed`, the `Framing` of a response body
and the `NEED_DATA` / `PAUSED` sentinels. An event that exists is valid (h11's rule), so the listener
takes hop-by-hop and routing decisions from these fields and never re-parses header bytes.

Parsers build `Request` and `Response` with `trusted_request` / `trusted_response`: they have already
enforced everything `__post_init__` checks, and on the hot path the frozen-dataclass `__init__` alone
costs as much as the whole policy layer. Anyone else gets the full check.

Must not import: anything from `orchestrator`; from this package only `errors` and `_abnf`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Final, Literal, TypeAlias

from orchestrator.http1._abnf import is_field_value, is_token, is_vchar
from orchestrator.http1.errors import LocalProtocolError

Headers: TypeAlias = tuple[tuple[bytes, bytes], ...]
"""Field lines in arrival order: (lower-cased name, value without surrounding whitespace)."""


class Sentinel(enum.Enum):
    """Values `next_event()` returns when it has no event to give."""

    NEED_DATA = "NEED_DATA"  # feed more bytes (or EOF) with receive_data()
    PAUSED = "PAUSED"  # stopped at a message boundary; see the parser's pause()/state

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED


class Framing(enum.StrEnum):
    """How a response body is delimited (RFC 9112 §6.3)."""

    NONE = "none"  # no body: HEAD, 1xx, 204, 304
    LENGTH = "length"  # Content-Length bytes
    CHUNKED = "chunked"  # chunked transfer coding
    CLOSE = "close"  # everything until the peer closes


def _check_headers(headers: object) -> None:
    if not isinstance(headers, tuple):
        raise LocalProtocolError("headers must be a tuple of (name, value) pairs")
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise LocalProtocolError(f"header {item!r} is not a (name, value) pair")
        name, value = item
        if not (isinstance(name, bytes) and isinstance(value, bytes)):
            raise LocalProtocolError(f"header {item!r} must be a pair of bytes")
        if not is_token(name) or name != name.lower():
            raise LocalProtocolError(f"header name {name!r} is not a lower-case token")
        if not is_field_value(value) or value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
            raise LocalProtocolError(f"header {name!r} has an invalid value {value!r}")


def _check_tokens(tokens: object, what: str) -> None:
    if not isinstance(tokens, tuple):
        raise LocalProtocolError(f"{what} must be a tuple of bytes")
    for token in tokens:
        if not (isinstance(token, bytes) and is_token(token) and token == token.lower()):
            raise LocalProtocolError(f"{what} item {token!r} is not a lower-case token")


def _check_length(content_length: object, chunked: object) -> None:
    if content_length is not None and (
        not isinstance(content_length, int)
        or isinstance(content_length, bool)
        or content_length < 0
    ):
        raise LocalProtocolError(f"content_length {content_length!r} is not a non-negative int")
    if chunked and content_length is not None:
        # Exactly one framing: the parsers reject CL+TE, so an event can never carry both.
        raise LocalProtocolError("a message cannot be both chunked and Content-Length framed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A request head that passed every check, plus the framing facts derived from it.

    Attributes:
        method: the method token as sent (case-sensitive), e.g. b"GET".
        target: the request-target as sent (origin-, absolute- or asterisk-form).
        http_version: b"1.1" or b"1.0" (HTTP/1.2..1.9 are served as b"1.1").
        headers: every field line, names lower-cased, values stripped of OWS.
        content_length: the Content-Length, or None if absent.
        chunked: Transfer-Encoding is exactly `chunked`.
        keep_alive: the client allows another request on this connection after this one.
        expect_continue: `Expect: 100-continue` on an HTTP/1.1 request.
        host: the authority to route on: the absolute-form target's, else the Host field (lower-cased);
            b"" only for an HTTP/1.0 request without Host.
        connection: lower-cased tokens of every Connection field (hop-by-hop names to drop).
        upgrade: the Upgrade value when Connection lists `upgrade`; bytes after this message are then
            not parsed as HTTP (see the parser's `trailing_data`).
    """

    method: bytes
    target: bytes
    http_version: bytes = b"1.1"
    headers: Headers = ()
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False
    host: bytes = b""
    connection: tuple[bytes, ...] = ()
    upgrade: bytes | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.method, bytes) and is_token(self.method)):
            raise LocalProtocolError(f"method {self.method!r} is not a token")
        if not (isinstance(self.target, bytes) and is_vchar(self.target)):
            raise LocalProtocolError(f"target {self.target!r} is empty or not visible ASCII")
        if self.http_version not in (b"1.0", b"1.1"):
            raise LocalProtocolError(f"http_version {self.http_version!r} is not b'1.0' or b'1.1'")
        _check_headers(self.headers)
        _check_length(self.content_length, self.chunked)
        if not isinstance(self.host, bytes) or (self.host and not is_vchar(self.host)):
            raise LocalProtocolError(f"host {self.host!r} is not visible ASCII")
        _check_tokens(self.connection, "connection")
        if self.upgrade is not None and not (
            isinstance(self.upgrade, bytes) and is_field_value(self.upgrade)
        ):
            raise LocalProtocolError(f"upgrade {self.upgrade!r} is not a field value")
        if self.http_version == b"1.0" and (self.chunked or self.expect_continue):
            raise LocalProtocolError("HTTP/1.0 has neither chunked framing nor 100-continue")

    @property
    def has_body(self) -> bool:
        """True if body bytes follow the head (chunked, or a Content-Length above zero)."""
        return self.chunked or bool(self.content_length)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A response head from a worker, checked for unambiguous framing.

    Attributes:
        status_code: 100-999.
        reason: the reason phrase as sent (may be empty).
        http_version: b"1.1" or b"1.0".
        headers: every field line, names lower-cased, values stripped of OWS.
        content_length: the Content-Length field, or None (informative only when `framing` is NONE,
            e.g. on a reply to HEAD).
        chunked: Transfer-Encoding is exactly `chunked`.
        keep_alive: the connection may carry another request after this response.
        connection: lower-cased tokens of every Connection field.
        framing: how the body that follows is delimited.
    """

    status_code: int
    reason: bytes = b""
    http_version: bytes = b"1.1"
    headers: Headers = ()
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    connection: tuple[bytes, ...] = ()
    framing: Framing = Framing.NONE

    def __post_init__(self) -> None:
        if (
            not isinstance(self.status_code, int)
            or isinstance(self.status_code, bool)
            or not 100 <= self.status_code <= 999
        ):
            raise LocalProtocolError(f"status_code {self.status_code!r} is not in 100..999")
        if not (isinstance(self.reason, bytes) and is_field_value(self.reason)):
            raise LocalProtocolError(f"reason {self.reason!r} is not a valid reason phrase")
        if self.http_version not in (b"1.0", b"1.1"):
            raise LocalProtocolError(f"http_version {self.http_version!r} is not b'1.0' or b'1.1'")
        _check_headers(self.headers)
        _check_length(self.content_length, self.chunked)
        _check_tokens(self.connection, "connection")
        if not isinstance(self.framing, Framing):
            raise LocalProtocolError(f"framing {self.framing!r} is not a Framing")
        if self.framing is Framing.CHUNKED and not self.chunked:
            raise LocalProtocolError("CHUNKED framing needs chunked=True")
        if self.framing is Framing.LENGTH and self.content_length is None:
            raise LocalProtocolError("LENGTH framing needs a content_length")
        if self.framing is Framing.CLOSE and self.keep_alive:
            raise LocalProtocolError("a close-delimited body cannot keep the connection alive")

    @property
    def informational(self) -> bool:
        """True for 1xx: no body, and the final response is still to come."""
        return self.status_code < 200


@dataclass(frozen=True, slots=True)
class Data:
    """A piece of message body, already de-chunked."""

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise LocalProtocolError("Data.data must be bytes")


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The body is complete. `trailers` holds the chunked trailer fields (empty otherwise)."""

    trailers: Headers = ()

    def __post_init__(self) -> None:
        if self.trailers:
            _check_headers(self.trailers)


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its sending side at a message boundary."""


Event: TypeAlias = Request | Response | Data | EndOfMessage | ConnectionClosed
NextEvent: TypeAlias = Event | Literal[Sentinel.NEED_DATA, Sentinel.PAUSED]

# Shared instance: EndOfMessage without trailers is the common case and carries no state.
END_OF_MESSAGE: Final = EndOfMessage()

# Slot setters in field order, for building frozen instances without __init__ (see module docstring).
_new = object.__new__
_REQUEST_SETTERS: Final = tuple(Request.__dict__[f.name].__set__ for f in fields(Request))
_RESPONSE_SETTERS: Final = tuple(Response.__dict__[f.name].__set__ for f in fields(Response))


def trusted_request(
    method: bytes,
    target: bytes,
    http_version: bytes,
    headers: Headers,
    content_length: int | None,
    chunked: bool,
    keep_alive: bool,
    expect_continue: bool,
    host: bytes,
    connection: tuple[bytes, ...],
    upgrade: bytes | None,
) -> Request:
    """Build a `Request` WITHOUT validation. Only for parsers that enforced every check already.

    Arguments are in field order (a unit test pins that order to `dataclasses.fields(Request)`).
    """
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = _REQUEST_SETTERS
    request: Request = _new(Request)
    s0(request, method)
    s1(request, target)
    s2(request, http_version)
    s3(request, headers)
    s4(request, content_length)
    s5(request, chunked)
    s6(request, keep_alive)
    s7(request, expect_continue)
    s8(request, host)
    s9(request, connection)
    s10(request, upgrade)
    return request


def trusted_response(
    status_code: int,
    reason: bytes,
    http_version: bytes,
    headers: Headers,
    content_length: int | None,
    chunked: bool,
    keep_alive: bool,
    connection: tuple[bytes, ...],
    framing: Framing,
) -> Response:
    """Build a `Response` WITHOUT validation. Only for parsers that enforced every check already."""
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = _RESPONSE_SETTERS
    response: Response = _new(Response)
    s0(response, status_code)
    s1(response, reason)
    s2(response, http_version)
    s3(response, headers)
    s4(response, content_length)
    s5(response, chunked)
    s6(response, keep_alive)
    s7(response, connection)
    s8(response, framing)
    return response
