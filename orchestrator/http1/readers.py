"""Body framing readers: Content-Length, chunked (strict), close-delimited, and none.

Owns: turning buffered body bytes into `Data` / `EndOfMessage` events and consuming exactly the bytes
of the current message, so the next message (pipelining) starts at the right byte. Chunk framing is
parsed here, not by llhttp, because the policy is stricter than llhttp's (at most 16 hex digits, no
leniency on any CRLF) and because only our own framing tells us where a message ends.

Each reader's `read(buf, eof)` consumes from the front of `buf` and returns an event, or None when it
needs more bytes. Errors use request-side status codes; the response parser re-labels them as 502.

Must not import: anything from `orchestrator`; from this package only `errors`, `events` and
`validate`.
"""

from __future__ import annotations

from typing import Final

from orchestrator.http1.errors import Reason, RemoteProtocolError
from orchestrator.http1.events import END_OF_MESSAGE, Data, EndOfMessage
from orchestrator.http1.validate import (
    CR,
    LF,
    HeadScanner,
    Limits,
    parse_chunk_size,
    parse_field_lines,
)

DEFAULT_MAX_CHUNK_LINE_BYTES: Final = 4096


def take(buf: bytearray, n: int) -> bytes:
    """Remove and return the first `n` bytes of `buf`, copying them once."""
    if n == len(buf):
        data = bytes(buf)
        buf.clear()
        return data
    with memoryview(buf) as view:
        data = bytes(view[:n])
    # Deleting from the front of a bytearray only moves its start pointer (CPython), no memmove.
    del buf[:n]
    return data


def _truncated() -> RemoteProtocolError:
    return RemoteProtocolError(
        "connection closed before the body was complete", 400, Reason.BAD_REQUEST
    )


def _too_large(max_body: int) -> RemoteProtocolError:
    return RemoteProtocolError(f"body larger than {max_body} bytes", 413, Reason.ENTITY_TOO_LARGE)


class BodyReader:
    """Base class: a message without a body."""

    __slots__ = ()

    #: Whether ``pass_through`` can take body bytes as they arrive, without the buffer.
    passes_through = False

    def pass_through(self, data: bytes) -> tuple[Data | None, bytes]:
        """The body piece at the front of ``data`` (which the buffer does not hold) as an event
        made of ``data`` itself when it is all body, with no copy; and the bytes after the body.
        ``(None, data)``: this reader cannot, use ``read``."""
        return None, data

    def read(self, buf: bytearray, eof: bool) -> Data | EndOfMessage | None:
        """Return the next body event, or None if more bytes are needed.

        Raises:
            RemoteProtocolError: the body is malformed, over the limit or cut short by EOF.
        """
        return END_OF_MESSAGE


NO_BODY: Final = BodyReader()


class LengthReader(BodyReader):
    """Exactly `length` bytes (Content-Length)."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def read(self, buf: bytearray, eof: bool) -> Data | EndOfMessage | None:
        remaining = self.remaining
        if not remaining:
            return END_OF_MESSAGE
        if not buf:
            if eof:
                raise _truncated()
            return None
        n = len(buf) if len(buf) < remaining else remaining
        self.remaining = remaining - n
        return Data(take(buf, n))

    passes_through = True

    def pass_through(self, data: bytes) -> tuple[Data | None, bytes]:
        remaining = self.remaining
        if not remaining:
            return None, data
        if len(data) <= remaining:
            self.remaining = remaining - len(data)
            return Data(data), b""
        self.remaining = 0
        return Data(data[:remaining]), data[remaining:]


class UntilCloseReader(BodyReader):
    """Everything until EOF (a response without Content-Length or chunked framing)."""

    __slots__ = ("max_body", "total")

    def __init__(self, max_body: int | None) -> None:
        self.max_body = max_body
        self.total = 0

    def read(self, buf: bytearray, eof: bool) -> Data | EndOfMessage | None:
        if buf:
            self.total += len(buf)
            if self.max_body is not None and self.total > self.max_body:
                raise _too_large(self.max_body)
            return Data(take(buf, len(buf)))
        return END_OF_MESSAGE if eof else None

    passes_through = True

    def pass_through(self, data: bytes) -> tuple[Data | None, bytes]:
        self.total += len(data)
        if self.max_body is not None and self.total > self.max_body:
            raise _too_large(self.max_body)
        return Data(data), b""


_SIZE, _DATA, _DATA_CRLF, _TRAILERS, _DONE = range(5)


class ChunkedReader(BodyReader):
    """Chunked transfer coding (RFC 9112 §7.1), strictly.

    Refuses, with 400: a chunk-size line that is not 1-16 hex digits plus well-formed extensions, any
    whitespace on it, a size line or trailer section over its limit, a bare CR or LF anywhere in the
    framing, and chunk data not followed by exactly CRLF. Refuses with 413 the chunk that would take
    the body over `max_body`, before reading its data.
    """

    __slots__ = (
        "_max_body",
        "_max_line",
        "_remaining",
        "_scanner",
        "_search_from",
        "_state",
        "_total",
    )

    def __init__(
        self,
        *,
        max_body: int | None,
        trailer_limits: Limits,
        max_line: int = DEFAULT_MAX_CHUNK_LINE_BYTES,
    ) -> None:
        self._max_body = max_body
        self._max_line = max_line
        self._scanner = HeadScanner(trailer_limits, start_line=False)
        self._state = _SIZE
        self._remaining = 0
        self._total = 0
        self._search_from = 0

    def read(self, buf: bytearray, eof: bool) -> Data | EndOfMessage | None:
        while True:
            state = self._state
            if state == _DATA:
                if not buf:
                    if eof:
                        raise _truncated()
                    return None
                remaining = self._remaining
                n = len(buf) if len(buf) < remaining else remaining
                self._remaining = remaining - n
                if n == remaining:
                    self._state = _DATA_CRLF
                return Data(take(buf, n))
            if state == _SIZE:
                if not self._read_size_line(buf, eof):
                    return None
            elif state == _DATA_CRLF:
                if not self._read_data_crlf(buf, eof):
                    return None
            elif state == _TRAILERS:
                return self._read_trailers(buf, eof)
            else:
                return END_OF_MESSAGE

    def _read_size_line(self, buf: bytearray, eof: bool) -> bool:
        # Length first: whether the line is too long does not depend on where reads were split, so
        # one-shot and byte-at-a-time parses give the same error.
        limit = self._max_line + 2
        i = buf.find(b"\n", 0, limit)
        if i == -1:
            if len(buf) >= limit:
                raise RemoteProtocolError(
                    f"chunk-size line longer than {self._max_line} bytes", 400, Reason.BAD_REQUEST
                )
            if eof:
                raise _truncated()
            return False
        if i == 0 or buf[i - 1] != CR:
            raise RemoteProtocolError("bare LF in chunk framing", 400, Reason.INVALID_CR_LF)
        line = bytes(buf[: i - 1])
        if b"\r" in line:
            raise RemoteProtocolError("bare CR in chunk framing", 400, Reason.INVALID_CR_LF)
        size = parse_chunk_size(line)
        del buf[: i + 1]
        if size == 0:
            self._state = _TRAILERS
            return True
        self._total += size
        if self._max_body is not None and self._total > self._max_body:
            raise _too_large(self._max_body)
        self._remaining = size
        self._state = _DATA
        return True

    def _read_data_crlf(self, buf: bytearray, eof: bool) -> bool:
        if buf[:2] == b"\r\n":
            del buf[:2]
            self._state = _SIZE
            return True
        if buf:
            first = buf[0]
            if first == LF:
                raise RemoteProtocolError("bare LF after chunk data", 400, Reason.INVALID_CR_LF)
            if first != CR:
                raise RemoteProtocolError(
                    "chunk data not followed by CRLF", 400, Reason.BAD_REQUEST
                )
            if len(buf) >= 2:
                raise RemoteProtocolError("bare CR after chunk data", 400, Reason.INVALID_CR_LF)
        if eof:
            raise _truncated()
        return False

    def _read_trailers(self, buf: bytearray, eof: bool) -> EndOfMessage | None:
        if buf[:2] == b"\r\n":
            del buf[:2]
            self._state = _DONE
            return END_OF_MESSAGE
        end = buf.find(b"\r\n\r\n", self._search_from)
        if end == -1:
            self._search_from = max(0, len(buf) - 3)
            self._scanner.scan(buf, len(buf), eof=eof)
            if eof:
                raise _truncated()
            return None
        self._scanner.scan(buf, end + 4)
        block = bytes(buf[:end])
        del buf[: end + 4]
        self._state = _DONE
        return EndOfMessage(tuple(parse_field_lines(block)))
