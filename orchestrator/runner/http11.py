"""HTTP/1.1 wire format for the socket source: request heads, streamed request bodies, response heads.

Owns: strict parsing of the request head (bounded at 64 KiB, 400 on garbage), the body readers behind
``wsgi.input`` (Content-Length and chunked, both lazy: nothing is read before the app asks), and encoding
response heads. Bytes come from a ``recv(n)`` callable, so this module never touches a socket and tests
feed it scripted chunks. Must not import ``socket``, ``threading`` or anything from ``orchestrator``
except ``orchestrator.runner.errors``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus

from orchestrator.runner.errors import ClientDisconnected, HttpError

MAX_HEAD_BYTES = 64 * 1024  # request line plus headers
MAX_HEADERS = 100  # gunicorn's limit_request_fields
MAX_CHUNK_LINE = 4096  # chunk size plus extensions
MAX_TRAILER_BYTES = 16 * 1024
RECV_BYTES = 64 * 1024

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_METHOD = re.compile(_TOKEN)
_TARGET = re.compile(r"[\x21-\x7e]+")  # visible ASCII; anything else must be percent-encoded
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_HEADER = re.compile(rf"({_TOKEN}):[ \t]*(.*?)[ \t]*")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs except HTAB; obs-text is allowed
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[\x20-\x7e\t]*)?\r\n")


@dataclass(slots=True)
class RequestHead:
    """A parsed request head plus the framing and connection facts derived from it."""

    method: str
    target: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: list[tuple[str, str]]  # names as sent; values latin-1 strings, trimmed
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True  # what the client asked for (version default and Connection tokens)
    expect_continue: bool = False


def _connection_tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",")}


def parse_request_head(raw: bytes, max_headers: int = MAX_HEADERS) -> RequestHead:
    """Parse a request head (request line and header lines, without the final blank line).

    Args:
        raw: the head bytes, lines separated by CRLF.
        max_headers: more header lines than this is a 431.

    Returns:
        The head with its framing (Content-Length or chunked) and keep-alive wish decided.

    Raises:
        HttpError: 400 for anything malformed or ambiguous (obs-fold, bare LF, CL with TE, conflicting
            lengths, a missing Host on HTTP/1.1), 431 for too many headers, 501 for a transfer coding other
            than chunked, 505 for an HTTP version other than 1.0 and 1.1.
    """
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not _METHOD.fullmatch(method) or not _TARGET.fullmatch(target):
        raise HttpError(400, "malformed request line")
    match = _VERSION.fullmatch(version)
    if match is None:
        raise HttpError(400, "malformed HTTP version")
    if match[1] != "1" or match[2] not in "01":
        raise HttpError(505, f"{version} is not supported")
    if len(lines) - 1 > max_headers:
        raise HttpError(431, "too many header fields")
    headers: list[tuple[str, str]] = []
    lengths: set[str] = set()
    codings: list[str] = []
    connection: set[str] = set()
    hosts = 0
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
            lengths.add(value)
        elif lower == "transfer-encoding":
            codings.extend(c.strip().lower() for c in value.split(","))
        elif lower == "connection":
            connection |= _connection_tokens(value)
        elif lower == "host":
            hosts += 1
        elif lower == "expect":
            if value.lower() != "100-continue":
                raise HttpError(417, f"unsupported expectation {value!r}")
            expect = True
    http11 = version == "HTTP/1.1"
    if hosts > 1 or (http11 and hosts == 0):
        raise HttpError(400, "exactly one Host header is required")
    head = RequestHead(method, target, version, headers, expect_continue=expect and http11)
    head.keep_alive = "close" not in connection and (http11 or "keep-alive" in connection)
    if codings:
        # Request smuggling rests on two parsers disagreeing about where a body ends; refuse every
        # ambiguous combination instead of picking a winner.
        if lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if not http11:
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if codings != ["chunked"]:
            raise HttpError(501, f"unsupported transfer coding {', '.join(codings)!r}")
        head.chunked = True
    elif lengths:
        if len(lengths) > 1:
            raise HttpError(400, "conflicting Content-Length headers")
        (length,) = lengths
        if not (length.isascii() and length.isdigit()) or len(length) > 18:
            raise HttpError(400, "invalid Content-Length")
        head.content_length = int(length)
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
            HttpError: 414/431 when no head ends within ``max_bytes``; 400 on bare-LF line endings or a
                head cut short by EOF.
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
            if b"\n\n" in buf or b"\n\r\n" in buf:
                raise HttpError(400, "bare LF line ending in request head")
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

    def read_line(self, max_bytes: int) -> bytes:
        """One line including its CRLF.

        Raises:
            HttpError: 400 when the line is longer than ``max_bytes`` or ends in a bare LF.
            ClientDisconnected: EOF before the end of the line.
        """
        buf = self._buf
        scan_from = 0
        while True:
            end = buf.find(b"\n", scan_from)
            if end >= 0:
                if end == 0 or buf[end - 1] != 0x0D or end >= max_bytes:
                    raise HttpError(400, "malformed line in chunked body")
                line = bytes(buf[: end + 1])
                del buf[: end + 1]
                return line
            if len(buf) >= max_bytes:
                raise HttpError(400, "line too long in chunked body")
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
        while (line := reader.read_line(MAX_TRAILER_BYTES)) != b"\r\n":
            trailer_bytes += len(line)
            if trailer_bytes > MAX_TRAILER_BYTES:
                raise HttpError(431, "trailer section too large")
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
