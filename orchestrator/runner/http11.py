"""HTTP/1.1 wire format for the socket source: request heads, streamed request bodies, response heads.

Owns: strict parsing of the request head (bounded at 64 KiB, 400 on garbage), the body readers behind
``wsgi.input`` (Content-Length and chunked, both lazy: nothing is read before the app asks), and encoding
response heads. Bytes come from a ``recv(n)`` callable, so this module never touches a socket and tests
feed it scripted chunks. Must not import ``socket``, ``threading`` or anything from ``orchestrator``
except ``orchestrator.runner.errors``.

The strictness policy is the listener's (``orchestrator.http1.validate``, notes/http-front-end.md §1),
re-implemented here in the standard library because the runner must not import ``orchestrator.http1``
(httptools is missing on Windows). ``tests/unit/runner/test_http11_policy.py`` holds the two parsers to
the same verdicts on the llhttp request corpus and catalogue A, and lists the differences that are
legitimate because the runner sits behind the listener.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus

from orchestrator.runner.errors import ClientDisconnected, HttpError

MAX_HEAD_BYTES = 64 * 1024  # request line plus headers
#: gunicorn's limit_request_fields is 100, and so is the listener's default; the listener adds up to six
#: fields of its own to what it forwards (Host, the framing field, X-Forwarded-For/-Proto/-Host and
#: Forwarded), so a request at the listener's limit must still fit here.
MAX_HEADERS = 128
MAX_CHUNK_LINE = 4096  # chunk size plus extensions
MAX_TRAILER_BYTES = 16 * 1024
MAX_CONTENT_LENGTH = 2**63 - 1  # what signed 64-bit peers can represent; above it is an overflow
RECV_BYTES = 64 * 1024

_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = _TCHAR + "+"
_IS_TOKEN = re.compile(_TOKEN).fullmatch
# Visible ASCII except "#": no request-target form carries a fragment (RFC 9112 §3.2).
_TARGET = re.compile(r"[\x21\x22\x24-\x7e]+")
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_HEADER = re.compile(rf"({_TOKEN}):[ \t]*(.*?)[ \t]*")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs except HTAB; obs-text is allowed
# host[:port] with a conservative reg-name (no sub-delims, no percent-encoding) or an IPv6 literal.
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?")
_AUTHORITY_END = re.compile(r"[/?]")
# A CR not followed by LF, or an LF not preceded by CR: refused anywhere in a head (RFC 9112 §2.2).
_BARE_CR_LF = re.compile(rb"\r[^\n]|(?<!\r)\n")
# RFC 9112 §7.1: 1-16 hex digits, then chunk extensions without BWS (no whitespace anywhere).
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_TCHAR = _TCHAR.encode()
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:;"
    + _CHUNK_TCHAR
    + rb"+(?:=(?:"
    + _CHUNK_TCHAR
    + rb"+|"
    + _QUOTED
    + rb"))?)*\r\n"
)


@dataclass(slots=True)
class RequestHead:
    """A parsed request head plus the framing and connection facts derived from it."""

    method: str
    target: str
    version: str  # "HTTP/1.0" or "HTTP/1.1" (HTTP/1.2 to 1.9 are served as 1.1, RFC 9110 §2.5)
    headers: list[tuple[str, str]]  # names as sent; values latin-1 strings, trimmed
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True  # what the client asked for (version default and Connection tokens)
    expect_continue: bool = False


def _connection_tokens(value: str) -> set[str]:
    """The lower-cased elements of a Connection value; empty elements are dropped (RFC 9110 §5.6.1)."""
    tokens: set[str] = set()
    for element in value.split(","):
        element = element.strip(" \t")
        if not element:
            continue
        if not _IS_TOKEN(element):
            raise HttpError(400, f"Connection element {element[:32]!r} is not a token")
        tokens.add(element.lower())
    return tokens


def _valid_host(value: str) -> bool:
    match = _HOST.fullmatch(value)
    return match is not None and (match[1] is None or int(match[1]) <= 65535)


def _check_target(method: str, target: str) -> None:
    """Anything but origin-form (RFC 9112 §3.2): absolute-form http(s) without userinfo, or ``*``."""
    if target == "*":
        if method != "OPTIONS":
            raise HttpError(400, "asterisk-form is only allowed with OPTIONS")
        return
    lowered = target[:8].lower()
    if lowered.startswith("http://"):
        rest = target[7:]
    elif lowered.startswith("https://"):
        rest = target[8:]
    else:
        raise HttpError(400, "request-target is not origin-, absolute- or asterisk-form")
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    if "@" in authority or not _valid_host(authority):
        raise HttpError(400, "invalid authority in an absolute-form target")


def _parse_request_line(line: str) -> tuple[str, str, str]:
    """(method, target, version) of a request line, checked in the listener's order.

    Version first (so ``PRI * HTTP/2.0`` is a 505 whatever else is wrong), then the method, then the
    target.
    """
    parts = line.split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        match = _VERSION.fullmatch(version)
        if match is None:
            raise HttpError(400, "malformed HTTP version")
        if match[1] != "1":
            raise HttpError(505, f"{version} is not supported")
        version = "HTTP/1.1"  # RFC 9110 §2.5: a higher minor version is served as 1.1
    if not _IS_TOKEN(method):
        raise HttpError(400, "malformed request method")
    if method == "CONNECT":
        raise HttpError(501, "CONNECT is not implemented")  # no tunnels: WSGI has no such thing
    if method == "PRI":
        raise HttpError(400, "PRI is reserved for the HTTP/2 preface")
    if not _TARGET.fullmatch(target):
        raise HttpError(400, "malformed request-target")
    if target[0] != "/":
        _check_target(method, target)
    return method, target, version


def _framing(
    head: RequestHead, lengths: list[str], codings: list[str], te_tab: bool, http11: bool
) -> None:
    """Decide the body framing (RFC 9112 §6), refusing every ambiguous combination.

    Request smuggling rests on two parsers disagreeing about where a body ends, so nothing is guessed.
    """
    if lengths and codings:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")
    if lengths:
        if len(lengths) > 1:
            # RFC 9110 §8.6 allows collapsing identical values; refusing all is simpler and safer.
            raise HttpError(400, "more than one Content-Length field")
        (length,) = lengths
        if not (length.isascii() and length.isdigit()):
            raise HttpError(400, "invalid Content-Length")
        if len(length) > 19 or int(length) > MAX_CONTENT_LENGTH:
            raise HttpError(400, "Content-Length overflow")
        head.content_length = int(length)
        return
    if not codings:
        return
    if len(codings) > 1:
        raise HttpError(400, "more than one Transfer-Encoding field")
    if not http11:
        raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
    if te_tab:
        # Legal OWS, but a classic smuggling obfuscation (``Transfer-Encoding:\tchunked``).
        raise HttpError(400, "HTAB in Transfer-Encoding")
    (value,) = codings
    if value != "chunked":
        elements = [element.strip(" ") for element in value.split(",")]
        if not all(_IS_TOKEN(element) for element in elements):
            raise HttpError(400, f"malformed Transfer-Encoding {value[:32]!r}")
        elements = [element.lower() for element in elements]
        if elements.count("chunked") > 1:
            raise HttpError(400, "chunked applied more than once")
        if elements != ["chunked"]:
            raise HttpError(501, f"unsupported transfer coding {value[:32]!r}")
    head.chunked = True


def parse_request_head(raw: bytes, max_headers: int = MAX_HEADERS) -> RequestHead:
    """Parse a request head (request line and header lines, without the final blank line).

    Args:
        raw: the head bytes, lines separated by CRLF.
        max_headers: more header lines than this is a 431.

    Returns:
        The head with its framing (Content-Length or chunked) and keep-alive wish decided.

    Raises:
        HttpError: 400 for anything malformed or ambiguous (obs-fold, bare CR or LF, CL with TE, any
            repeated CL or TE field, a missing, repeated or invalid Host, a fragment or userinfo in
            the target), 417 for an expectation other than 100-continue, 431 for too many headers, 501
            for CONNECT or a transfer coding other than chunked, 505 for an HTTP major version other
            than 1.
    """
    lines = raw.decode("latin-1").split("\r\n")
    method, target, version = _parse_request_line(lines[0])
    if len(lines) - 1 > max_headers:
        raise HttpError(431, "too many header fields")
    headers: list[tuple[str, str]] = []
    lengths: list[str] = []
    codings: list[str] = []
    te_tab = False
    connection: set[str] = set()
    hosts: list[str] = []
    expect = False
    for line in lines[1:]:
        field = _HEADER.fullmatch(line)
        if field is None:
            # Covers obs-fold (a leading space), whitespace before the colon, and empty names.
            raise HttpError(400, "malformed header line")
        name, value = field[1], field[2]
        if _BAD_VALUE.search(value):
            raise HttpError(400, f"control character in header {name}")
        headers.append((name, value))
        lower = name.lower()
        if lower == "content-length":
            lengths.append(value)
        elif lower == "transfer-encoding":
            codings.append(value)
            te_tab = te_tab or "\t" in line
        elif lower == "connection":
            connection |= _connection_tokens(value)
        elif lower == "host":
            hosts.append(value)
        elif lower == "expect":
            if value.lower() != "100-continue":
                raise HttpError(417, f"unsupported expectation {value!r}")
            expect = True
    http11 = version == "HTTP/1.1"
    if len(hosts) > 1 or (http11 and not hosts):
        raise HttpError(400, "exactly one Host header is required")
    if hosts and not _valid_host(hosts[0]):
        raise HttpError(400, "invalid Host")
    head = RequestHead(method, target, version, headers, expect_continue=expect and http11)
    head.keep_alive = "close" not in connection and (http11 or "keep-alive" in connection)
    _framing(head, lengths, codings, te_tab, http11)
    return head


def _head_too_large(buf: bytearray, max_bytes: int) -> HttpError:
    line_end = buf.find(b"\r\n", 0, max_bytes + 2)
    if line_end < 0:
        return HttpError(414, "request line too long")
    return HttpError(431, "request head too large")


class BufferedReader:
    """Bytes from ``recv`` with a small look-ahead buffer, so pipelined requests are never lost."""

    __slots__ = ("_buf", "_recv")

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting (a pipelined request, if non-zero between requests)."""
        return len(self._buf)

    def _fill(self) -> bool:
        data = self._recv(RECV_BYTES)
        self._buf += data
        return bool(data)

    def read_head(self, max_bytes: int = MAX_HEAD_BYTES) -> bytes | None:
        """Read one request head, without its final CRLF CRLF.

        Returns:
            The head, or ``None`` when the peer closed cleanly before sending anything.

        Raises:
            HttpError: 414/431 when no head ends within ``max_bytes``; 400 as soon as a bare CR or LF
                arrives, without waiting for the end of the head.
            ClientDisconnected: EOF inside a head.
        """
        buf = self._buf
        scan_from = 0
        while True:
            # RFC 9112 §2.2: ignore empty lines before a request line (some clients add a CRLF after
            # a body); strip them so they never count as a head.
            while buf.startswith(b"\r\n"):
                del buf[:2]
            end = buf.find(b"\r\n\r\n", scan_from)
            if end >= 0:
                if end > max_bytes:
                    raise _head_too_large(buf, max_bytes)
                head = bytes(buf[:end])
                del buf[: end + 4]
                return head
            # Bytes before scan_from were judged already (a CR at the very end waits for the next byte).
            if _BARE_CR_LF.search(buf, scan_from) is not None:
                raise HttpError(400, "bare CR or LF in the request head")
            if len(buf) > max_bytes:
                raise _head_too_large(buf, max_bytes)
            scan_from = max(0, len(buf) - 3)
            if not self._fill():
                if not buf:
                    return None
                raise ClientDisconnected("connection closed inside a request head")

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes: what is buffered, else one ``recv``; ``b""`` only at EOF."""
        buf = self._buf
        if not buf:
            return self._recv(n)
        if len(buf) <= n:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        return data

    def read_line(self, max_bytes: int, too_long: int = 400) -> bytes:
        """One line including its CRLF.

        Raises:
            HttpError: ``too_long`` when the line is longer than ``max_bytes``; 400 when it ends in a
                bare LF.
            ClientDisconnected: EOF before the end of the line.
        """
        buf = self._buf
        scan_from = 0
        while True:
            end = buf.find(b"\n", scan_from)
            if end >= 0:
                if end >= max_bytes:
                    raise HttpError(too_long, "line too long in chunked body")
                if end == 0 or buf[end - 1] != 0x0D:
                    raise HttpError(400, "bare LF in chunked body")
                line = bytes(buf[: end + 1])
                del buf[: end + 1]
                return line
            if len(buf) >= max_bytes:
                raise HttpError(too_long, "line too long in chunked body")
            scan_from = len(buf)
            if not self._fill():
                raise ClientDisconnected("connection closed inside a chunked body")


class Body:
    """A request body as a WSGI input stream; the end of the body reads as end-of-file.

    Subclasses provide ``_read_some``. ``on_first_read`` runs once before the first byte is pulled from
    the wire — the connection uses it to send ``100 Continue`` only when the app wants the body.
    """

    __slots__ = ("_pending", "on_first_read")

    def __init__(self) -> None:
        self._pending = b""  # read past the end of a line by readline()
        self.on_first_read: Callable[[], None] | None = None

    @property
    def complete(self) -> bool:
        """Whether the whole body has been consumed from the wire."""
        raise NotImplementedError

    def _read_some(self, n: int) -> bytes:
        """Between 1 and ``n`` bytes of body, or ``b""`` at its end."""
        raise NotImplementedError

    def _pull(self, n: int) -> bytes:
        if self.on_first_read is not None:
            hook, self.on_first_read = self.on_first_read, None
            hook()
        return self._read_some(n)

    def read(self, size: int | None = -1, /) -> bytes:
        """Read ``size`` bytes (fewer only at the end of the body); all that remains when negative."""
        if size is None or size < 0:
            size = sys.maxsize
        out: list[bytes] = []
        if self._pending:
            out.append(self._pending[:size])
            self._pending = self._pending[size:]
            size -= len(out[0])
        while size > 0:
            data = self._pull(min(size, RECV_BYTES))
            if not data:
                break
            out.append(data)
            size -= len(data)
        return out[0] if len(out) == 1 else b"".join(out)

    def readline(self, size: int | None = -1, /) -> bytes:
        """Read up to and including the next ``\\n``, at most ``size`` bytes when non-negative."""
        limit = sys.maxsize if size is None or size < 0 else size
        line, self._pending = self._pending, b""
        scan_from = 0
        while True:
            end = line.find(b"\n", scan_from, limit)
            if end >= 0:
                self._pending = line[end + 1 :]
                return line[: end + 1]
            if len(line) >= limit:
                self._pending = line[limit:]
                return line[:limit]
            scan_from = len(line)
            data = self._pull(RECV_BYTES)
            if not data:
                return line
            line += data

    def readlines(self, hint: int = -1, /) -> list[bytes]:
        """Lines until the end of the body, or until ``hint`` bytes when positive."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def drain(self, max_bytes: int) -> bool:
        """Discard up to ``max_bytes`` of unread body; whether the body is now fully consumed."""
        self._pending = b""
        while not self.complete and max_bytes > 0:
            data = self._pull(min(max_bytes, RECV_BYTES))
            max_bytes -= len(data)
            if not data:
                break
        return self.complete


class EmptyBody(Body):
    """No body (a GET, or ``Content-Length: 0``)."""

    __slots__ = ()

    @property
    def complete(self) -> bool:
        """Always: there is nothing to read."""
        return True

    def _read_some(self, n: int) -> bytes:
        return b""

    def _pull(self, n: int) -> bytes:
        return b""  # nothing on the wire, so no 100 Continue either


class LengthBody(Body):
    """A ``Content-Length`` body, read lazily from the connection."""

    __slots__ = ("_reader", "_remaining")

    def __init__(self, reader: BufferedReader, length: int) -> None:
        super().__init__()
        self._reader = reader
        self._remaining = length

    @property
    def complete(self) -> bool:
        """Whether all ``Content-Length`` bytes were read."""
        return self._remaining == 0

    def _read_some(self, n: int) -> bytes:
        if self._remaining == 0:
            return b""
        data = self._reader.read(min(n, self._remaining))
        if not data:
            raise ClientDisconnected("connection closed inside a request body")
        self._remaining -= len(data)
        return data


class ChunkedBody(Body):
    """A ``Transfer-Encoding: chunked`` body, decoded lazily; trailers are read and discarded."""

    __slots__ = ("_done", "_left", "_need_crlf", "_reader")

    def __init__(self, reader: BufferedReader) -> None:
        super().__init__()
        self._reader = reader
        self._left = 0  # data bytes left in the current chunk
        self._need_crlf = False  # the CRLF after the previous chunk's data is still unread
        self._done = False

    @property
    def complete(self) -> bool:
        """Whether the last chunk and the trailer section were read."""
        return self._done

    def _read_some(self, n: int) -> bytes:
        if self._left == 0 and not self._next_chunk():
            return b""
        data = self._reader.read(min(n, self._left))
        if not data:
            raise ClientDisconnected("connection closed inside a chunk")
        self._left -= len(data)
        self._need_crlf = self._left == 0
        return data

    def _next_chunk(self) -> bool:
        """Read the next chunk-size line; false at the last chunk (after reading the trailers)."""
        if self._done:
            return False
        reader = self._reader
        if self._need_crlf:
            if reader.read_line(3) != b"\r\n":
                raise HttpError(400, "missing CRLF after chunk data")
            self._need_crlf = False
        line = reader.read_line(MAX_CHUNK_LINE)
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            raise HttpError(400, "invalid chunk size line")
        self._left = int(match[1], 16)
        if self._left:
            return True
        trailer_bytes = 0
        while (line := reader.read_line(MAX_TRAILER_BYTES, too_long=431)) != b"\r\n":
            trailer_bytes += len(line)
            if trailer_bytes > MAX_TRAILER_BYTES:
                raise HttpError(431, "trailer section too large")
            # Dropped, but held to the header-field grammar like the head (the listener does too).
            field = _HEADER.fullmatch(line[:-2].decode("latin-1"))
            if field is None or _BAD_VALUE.search(field[2]):
                raise HttpError(400, "malformed trailer field")
        self._done = True
        return False


def make_body(head: RequestHead, reader: BufferedReader) -> Body:
    """The body reader the head's framing calls for (RFC 9112 §6.3; no body unless CL or chunked)."""
    if head.chunked:
        return ChunkedBody(reader)
    if head.content_length:
        return LengthBody(reader, head.content_length)
    return EmptyBody()


def encode_response_head(status: str, headers: list[tuple[str, str]]) -> bytes:
    """``HTTP/1.1 <status>`` and the header lines, ending with the blank line (latin-1)."""
    lines = [f"HTTP/1.1 {status}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def error_response(status: int) -> bytes:
    """A complete, closing plain-text response for an error found before the app ran."""
    phrase = HTTPStatus(status).phrase
    body = f"{phrase}\n".encode()
    head = encode_response_head(
        f"{status} {phrase}",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ],
    )
    return head + body


def no_body_status(status_code: int, method: str) -> bool:
    """Whether a response can never carry a body: HEAD, 1xx, 204 and 304 (RFC 9112 §6.3)."""
    return method == "HEAD" or status_code < 200 or status_code in (204, 304)
