"""`RequestParser` (client side of the listener) and `ResponseParser` (worker side): bytes in, events out.

Owns: the receive buffer, the order of checks on a head, and driving `state.StateMachine`.

How a head is handled (the order matters, see `validate.HeadScanner`):
1. Find the end of the head (`CRLF CRLF`, a C-level search). While it is missing, scan the partial head
   for limit and bare CR/LF violations, so a head that never ends still fails as early as it can.
2. Cheap size checks; only a head that could break a byte or count limit gets the line-by-line scan.
3. Parse the start line ourselves (version policy, HTTP/1.2 rewritten to 1.1 for llhttp), but hold any
   error back: a positional error earlier in the bytes must win, whatever the read boundaries were.
4. Tokenise the head with llhttp (`_llhttp`). If llhttp refuses it, the slow path re-checks the head in
   Python to say exactly why (status and reason); if llhttp accepts it, it has no bare CR/LF.
5. Framing and Host policy (`validate.check_request_fields`), then the 413 check on Content-Length.
Bodies never go through llhttp: `readers.py` frames them, so we always know where the next message
starts (pipelining) and can stop at a boundary (`pause()`).

Must not import: anything from `orchestrator`; no sockets, no asyncio, no time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from orchestrator.http1._llhttp import HeadRejected, Rejection, shared_tokenizer
from orchestrator.http1.errors import (
    LocalProtocolError,
    ProtocolError,
    Reason,
    RemoteProtocolError,
)
from orchestrator.http1.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    Framing,
    NextEvent,
    trusted_request,
    trusted_response,
)
from orchestrator.http1.readers import (
    DEFAULT_MAX_CHUNK_LINE_BYTES,
    NO_BODY,
    BodyReader,
    ChunkedReader,
    LengthReader,
    UntilCloseReader,
)
from orchestrator.http1.state import Input, State, StateMachine
from orchestrator.http1.validate import (
    CR,
    LF,
    SPECIAL_REQUEST_FIELDS,
    SPECIAL_RESPONSE_FIELDS,
    HeadScanner,
    Limits,
    RequestLine,
    StatusLine,
    check_request_fields,
    check_response_fields,
    parse_field_lines,
    parse_request_line,
    parse_status_line,
)

DEFAULT_MAX_URL_BYTES: Final = 8192
DEFAULT_MAX_HEADER_BYTES: Final = 16384
DEFAULT_MAX_FIELD_BYTES: Final = 8192
DEFAULT_MAX_HEADER_FIELDS: Final = 100
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024

_LEADING_CRLF: Final = re.compile(rb"(?:\r\n)+")
_CONNECTION_CLOSED: Final = ConnectionClosed()


class _Parser:
    """What both directions share: buffer, EOF, sticky errors, head search, body readers."""

    __slots__ = (
        "_buf",
        "_count_from",
        "_end_input",
        "_eof",
        "_error",
        "_fast_limit",
        "_held",
        "_limits",
        "_machine",
        "_max_body",
        "_max_chunk_line",
        "_reader",
        "_scanner",
        "_search_from",
    )

    def __init__(
        self,
        *,
        limits: Limits,
        max_body_bytes: int | None,
        max_chunk_line_bytes: int,
    ) -> None:
        if max_body_bytes is not None and max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0 or None")
        if max_chunk_line_bytes < 1:
            raise ValueError("max_chunk_line_bytes must be >= 1")
        self._limits = limits
        self._max_body = max_body_bytes
        self._max_chunk_line = max_chunk_line_bytes
        self._buf = bytearray()
        # A body piece that arrived on an empty buffer, passed on as the next Data without being
        # copied into the buffer (a body only passes through the listener). Always the oldest
        # unparsed bytes: anything received after it goes to the buffer behind it.
        self._held: bytes | None = None
        self._eof = False
        self._error: ProtocolError | None = None
        self._machine = StateMachine()
        self._reader: BodyReader = NO_BODY
        self._end_input = Input.END_KEEP_ALIVE
        self._scanner = HeadScanner(limits)
        self._search_from = 0
        # A head no longer than this cannot break a line or head byte limit (a line's bytes before
        # its LF are at most len(head) - 1, and may be limit + 1 counting the CR).
        self._fast_limit = min(
            limits.head_bytes, limits.first_line_bytes + 2, limits.field_bytes + 2
        )
        # Every field line takes at least 4 bytes ("a:" CRLF), so a shorter head cannot hold too many.
        self._count_from = 4 * (limits.fields + 1)

    # -- public ------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The connection state (see `state.State`)."""
        return self._machine.state

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes buffered but not parsed, and whether EOF was seen.

        After an upgrade (state SWITCHED) these are the first bytes of the other protocol.
        """
        self._unhold()
        return bytes(self._buf), self._eof

    def receive_data(self, data: bytes) -> None:
        """Add bytes received from the peer; `b""` means the peer closed its sending side (EOF).

        Raises:
            RemoteProtocolError: again, if the parser is in the ERROR state.
            LocalProtocolError: bytes after EOF.
        """
        if self._error is not None:
            raise self._error.copy()
        if not data:
            self._eof = True
            return
        if self._eof:
            raise self._fail(LocalProtocolError("received data after EOF"))
        if self._machine.state is State.MUST_CLOSE:
            return  # nothing after a closing message is ever parsed; do not buffer it either
        if (
            not self._buf
            and self._held is None
            and self._machine.state is State.BODY
            and self._reader.passes_through
        ):
            self._held = data
            return
        self._unhold()
        self._buf += data

    def _unhold(self) -> None:
        if self._held is not None:
            self._buf += self._held
            self._held = None

    def next_event(self) -> NextEvent:
        """Return the next event, or `NEED_DATA` / `PAUSED`.

        Raises:
            RemoteProtocolError: the peer broke the protocol; `error_status_hint` and `reason` say how.
                Every later call raises again (the state is sticky ERROR).
        """
        if self._error is not None:
            raise self._error.copy()
        try:
            return self._next_event()
        except ProtocolError as exc:
            raise self._fail(exc) from None

    # -- internals ---------------------------------------------------------------------------------

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        if self._machine.state is not State.ERROR:
            self._machine.process(Input.ERROR)
        self._error = exc
        return exc

    def _next_event(self) -> NextEvent:
        raise NotImplementedError

    def _read_body(self) -> NextEvent:
        held = self._held
        if held is not None:
            self._held = None
            data, rest = self._reader.pass_through(held)
            if rest:
                self._buf += rest  # the bytes after the body: the next message's
            if data is not None:
                self._machine.process(Input.DATA)
                return data
        event = self._reader.read(self._buf, self._eof)
        if event is None:
            return NEED_DATA
        if type(event) is Data:
            self._machine.process(Input.DATA)
            return event
        if self._machine.process(self._end_input) is State.MUST_CLOSE:
            self._buf.clear()
        return event

    def _take_head(self) -> bytes | None:
        """Return the next complete head (consumed from the buffer), or None if it is incomplete.

        Raises:
            RemoteProtocolError: a limit or bare CR/LF violation, or EOF inside a head.
        """
        buf = self._buf
        if buf[:2] == b"\r\n" and self._scanner.pos == 0:
            # RFC 9112 §2.2: ignore empty lines before a message (llhttp does the same).
            match = _LEADING_CRLF.match(buf)
            assert match is not None
            del buf[: match.end()]
            self._scanner.reset()
            self._search_from = 0
        end = buf.find(b"\r\n\r\n", self._search_from)
        if end == -1:
            if buf:
                self._search_from = max(0, len(buf) - 3)
                self._scanner.scan(buf, len(buf), eof=self._eof)
            if self._eof and buf:
                raise RemoteProtocolError(
                    "connection closed inside a message head", 400, Reason.BAD_REQUEST
                )
            return None
        n = end + 4
        if (
            n > self._fast_limit
            or buf[0] == CR
            or buf[0] == LF
            or (n > self._count_from and buf.count(b"\r\n", 0, n) - 2 > self._limits.fields)
        ):
            self._scanner.scan(buf, n)
        if n == len(buf):
            head = bytes(buf)
            buf.clear()
        else:
            head = bytes(buf[:n])
            del buf[:n]
        self._scanner.reset()
        self._search_from = 0
        return head

    def _diagnose(
        self,
        head: bytes,
        pending: RemoteProtocolError | None,
        rejected: HeadRejected,
        check_fields: Callable[[list[tuple[bytes, bytes]]], object],
    ) -> RemoteProtocolError:
        """Say precisely why llhttp refused `head`: the slow path, run only on bad input.

        The same checks as the fast path, in the same order, but in Python: positional violations,
        then the start line (ours, then llhttp's method and URL verdicts), then field syntax, then the
        framing policy (`check_fields`); only if all pass does llhttp's other complaint decide.
        """
        HeadScanner(self._limits).scan(head, len(head))
        if pending is not None:
            return pending
        # llhttp's complaints about the start line come before anything in the fields.
        if rejected.kind is Rejection.METHOD:
            return RemoteProtocolError(
                f"method not implemented ({rejected.detail})", 501, Reason.NOT_IMPLEMENTED
            )
        if rejected.kind is Rejection.URL:
            return RemoteProtocolError(
                f"invalid request-target ({rejected.detail})", 400, Reason.URL
            )
        line_end = head.find(b"\r\n")
        try:
            check_fields(parse_field_lines(head[line_end + 2 : -4]))
        except RemoteProtocolError as exc:
            return exc
        return RemoteProtocolError(f"malformed head ({rejected.detail})", 400, Reason.BAD_REQUEST)


class RequestParser(_Parser):
    """Parses what a client sends: pipelined requests with their bodies, strictly.

    Usage (h11-style)::

        p = RequestParser(max_url_bytes=8192, max_header_bytes=16384, max_header_fields=100)
        p.receive_data(data)            # b"" for EOF
        while (event := p.next_event()) not in (NEED_DATA, PAUSED):
            ...                         # Request, then Data*, then EndOfMessage; or ConnectionClosed

    Call `pause()` to stop at the end of the current message (the proxy handles one request at a time)
    and `resume()` once the response is written.

    Args:
        max_url_bytes: longest request line (without CRLF); longer gets 414.
        max_header_bytes: longest head, request line to final empty line; longer gets 431.
        max_field_bytes: longest single field line (without CRLF); longer gets 431.
        max_header_fields: most field lines; more gets 431. Trailers use the same three limits.
        max_body_bytes: largest body (None: no limit); a larger Content-Length gets 413 at the head,
            a chunked body gets 413 at the chunk that passes it.
        max_chunk_line_bytes: longest chunk-size line including extensions; longer gets 400.
    """

    __slots__ = ("_pause",)

    def __init__(
        self,
        *,
        max_url_bytes: int = DEFAULT_MAX_URL_BYTES,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        max_header_fields: int = DEFAULT_MAX_HEADER_FIELDS,
        max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
        max_chunk_line_bytes: int = DEFAULT_MAX_CHUNK_LINE_BYTES,
    ) -> None:
        super().__init__(
            limits=Limits(max_url_bytes, max_field_bytes, max_header_bytes, max_header_fields),
            max_body_bytes=max_body_bytes,
            max_chunk_line_bytes=max_chunk_line_bytes,
        )
        self._pause = False

    @property
    def at_rest(self) -> bool:
        """Between messages with nothing buffered, no EOF, no error and no pause: a new parser with
        the same limits would behave exactly like this one."""
        return (
            self._error is None
            and not self._eof
            and not self._buf
            and self._held is None
            and not self._pause
            and self._machine.state is State.IDLE
        )

    @property
    def paused(self) -> bool:
        """True while `next_event()` returns PAUSED because `pause()` took effect."""
        return self._pause and self._machine.state in (State.IDLE, State.DONE)

    def pause(self) -> None:
        """Stop at the next message boundary: after the current message's EndOfMessage, or at once if
        no message has started. Bytes keep being buffered; nothing is parsed until `resume()`."""
        self._pause = True

    def resume(self) -> None:
        """Undo `pause()`: the next `next_event()` goes on with the next pipelined request."""
        self._pause = False

    def next_event(self) -> NextEvent:
        """Return the next event, or `NEED_DATA` / `PAUSED`.

        Raises:
            RemoteProtocolError: the client broke the protocol; `error_status_hint` and `reason` say
                how. Every later call raises again (the state is sticky ERROR).
        """
        # The base class's wrapper, inlined: this runs three times per request on the hot path.
        if self._error is not None:
            raise self._error.copy()
        try:
            machine = self._machine
            while True:
                state = machine.state
                if state is State.BODY:
                    return self._read_body()
                if state is State.IDLE:
                    if self._pause:
                        return PAUSED
                    if not self._buf and not self._eof:
                        return NEED_DATA
                    return self._read_request_head()
                if state is State.DONE:
                    if self._pause:
                        return PAUSED
                    machine.process(Input.NEXT)
                    continue
                if state is State.MUST_CLOSE:
                    if self._eof:
                        machine.process(Input.EOF)
                        return _CONNECTION_CLOSED
                    return PAUSED
                if state is State.CLOSED:
                    return _CONNECTION_CLOSED
                return PAUSED  # SWITCHED: the bytes that follow are not ours to parse
        except ProtocolError as exc:
            raise self._fail(exc) from None

    def _read_request_head(self) -> NextEvent:
        head = self._take_head()
        if head is None:
            if self._eof and not self._buf:
                self._machine.process(Input.EOF)
                return _CONNECTION_CLOSED
            return NEED_DATA
        line_end = head.find(b"\r\n")
        pending: RemoteProtocolError | None = None
        line: RequestLine | None = None
        try:
            line = parse_request_line(head[:line_end])
        except RemoteProtocolError as exc:
            pending = exc
        feed = head
        if line is not None and line[4]:
            # HTTP/1.2..1.9 must be served as 1.1 (RFC 9110 §2.5) but llhttp refuses them. The version
            # was validated as the last 8 bytes of the request line, so only those bytes change.
            feed = head[: line_end - 8] + b"HTTP/1.1" + head[line_end:]
        try:
            fields, specials = shared_tokenizer(
                response=False, special=SPECIAL_REQUEST_FIELDS
            ).tokenize(feed)
        except HeadRejected as rejected:

            def check_fields(fields: list[tuple[bytes, bytes]]) -> object:
                assert line is not None  # a pending start-line error is reported before this runs
                return check_request_fields(_specials(fields, SPECIAL_REQUEST_FIELDS), head, line)

            raise self._diagnose(head, pending, rejected, check_fields) from None
        if pending is not None:
            raise pending
        assert line is not None
        length, chunked, keep_alive, expect_continue, host, connection, upgrade = (
            check_request_fields(specials, head, line)
        )
        if length is not None and self._max_body is not None and length > self._max_body:
            # Refused at the head, before any body byte is read and before any 100 Continue.
            raise RemoteProtocolError(
                f"Content-Length {length} over the {self._max_body}-byte limit",
                413,
                Reason.ENTITY_TOO_LARGE,
            )
        if chunked:
            self._reader = ChunkedReader(
                max_body=self._max_body,
                trailer_limits=self._limits,
                max_line=self._max_chunk_line,
            )
        elif length:
            self._reader = LengthReader(length)
        else:
            self._reader = NO_BODY
        if upgrade is not None:
            self._end_input = Input.END_SWITCH
        elif keep_alive:
            self._end_input = Input.END_KEEP_ALIVE
        else:
            self._end_input = Input.END_CLOSE
        request = trusted_request(
            line[0],
            line[1],
            line[2],
            tuple(fields),
            length,
            chunked,
            keep_alive,
            expect_continue,
            host,
            connection,
            upgrade,
        )
        self._machine.process(Input.HEAD)
        return request


class ResponseParser(_Parser):
    """Parses a worker's response(s) with strict framing checks; every failure is a 502 for the client.

    Refuses CL+TE, duplicate or invalid Content-Length, Transfer-Encoding other than exactly `chunked`,
    bare CR/LF, malformed status lines and fields. A reply to HEAD, and 1xx/204/304, has no body; a
    reply with neither Content-Length nor chunked runs until EOF. After a complete final response the
    parser returns PAUSED until `start_next_response()`; a byte arriving before then is an error
    (a worker may not answer a request it was not sent: response-splitting defence).

    Args:
        request_method: the method of the request this response answers (b"HEAD" means no body).
        max_header_bytes, max_field_bytes, max_header_fields: head limits (the status line shares
            max_field_bytes).
        max_body_bytes: largest body accepted (None: no limit).
        max_chunk_line_bytes: longest chunk-size line.
    """

    __slots__ = ("_request_method",)

    def __init__(
        self,
        *,
        request_method: bytes = b"GET",
        max_header_bytes: int = 65536,
        max_field_bytes: int = 65536,
        max_header_fields: int = 200,
        max_body_bytes: int | None = None,
        max_chunk_line_bytes: int = DEFAULT_MAX_CHUNK_LINE_BYTES,
    ) -> None:
        super().__init__(
            limits=Limits(max_field_bytes, max_field_bytes, max_header_bytes, max_header_fields),
            max_body_bytes=max_body_bytes,
            max_chunk_line_bytes=max_chunk_line_bytes,
        )
        self._request_method = request_method

    @property
    def reusable(self) -> bool:
        """The response completed, the worker keeps the connection, and nothing followed the
        response: another request may go on this connection."""
        return (
            self._error is None
            and not self._eof
            and not self._buf
            and self._held is None
            and self._machine.state is State.DONE
        )

    def start_next_response(self, request_method: bytes) -> None:
        """Expect the response to the next request sent on this (kept-alive) upstream connection.

        Raises:
            LocalProtocolError: the previous response is not complete, or the connection cannot be reused.
            RemoteProtocolError: the worker already sent bytes nobody asked for.
        """
        if self._error is not None:
            raise self._error.copy()
        if self._machine.state is not State.DONE:
            raise self._fail(
                LocalProtocolError(f"cannot start a response in state {self._machine.state.value}")
            )
        if self._buf:
            raise self._fail(_unsolicited())
        self._machine.process(Input.NEXT)
        self._request_method = request_method

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        if isinstance(exc, RemoteProtocolError) and exc.error_status_hint != 502:
            # Whatever was wrong with the worker's reply, the client gets a 502 Bad Gateway.
            exc = RemoteProtocolError(exc.msg, 502, exc.reason)
        return super()._fail(exc)

    def _next_event(self) -> NextEvent:
        machine = self._machine
        state = machine.state
        if state is State.BODY:
            return self._read_body()
        if state is State.IDLE:
            return self._read_response_head()
        if state is State.DONE:
            if self._buf:
                raise _unsolicited()
            if self._eof:
                machine.process(Input.EOF)
                return _CONNECTION_CLOSED
            return PAUSED
        if state is State.MUST_CLOSE:
            if self._eof:
                machine.process(Input.EOF)
                return _CONNECTION_CLOSED
            return PAUSED
        if state is State.CLOSED:
            return _CONNECTION_CLOSED
        return PAUSED  # SWITCHED after 101

    def _read_response_head(self) -> NextEvent:
        head = self._take_head()
        if head is None:
            if self._eof and not self._buf:
                self._machine.process(Input.EOF)
                return _CONNECTION_CLOSED
            return NEED_DATA
        line_end = head.find(b"\r\n")
        pending: RemoteProtocolError | None = None
        status: StatusLine | None = None
        try:
            status = parse_status_line(head[:line_end])
        except RemoteProtocolError as exc:
            pending = exc
        try:
            fields, specials = shared_tokenizer(
                response=True, special=SPECIAL_RESPONSE_FIELDS
            ).tokenize(head)
        except HeadRejected as rejected:

            def check_fields(fields: list[tuple[bytes, bytes]]) -> object:
                assert (
                    status is not None
                )  # a pending status-line error is reported before this runs
                return check_response_fields(
                    _specials(fields, SPECIAL_RESPONSE_FIELDS), head, http_1_0=status[0] == b"1.0"
                )

            raise self._diagnose(head, pending, rejected, check_fields) from None
        if pending is not None:
            raise pending
        assert status is not None
        http_version, code, reason = status
        length, chunked, connection = check_response_fields(
            specials, head, http_1_0=http_version == b"1.0"
        )
        if http_version == b"1.0":
            keep_alive = b"keep-alive" in connection and b"close" not in connection
        else:
            keep_alive = b"close" not in connection
        if code < 200:
            framing = Framing.NONE
            keep_alive = code != 101
            end_input = Input.END_SWITCH if code == 101 else Input.END_INTERIM
        else:
            if self._request_method == b"HEAD" or code in (204, 304):
                framing = Framing.NONE
            elif chunked:
                framing = Framing.CHUNKED
            elif length is not None:
                framing = Framing.LENGTH
            else:
                framing = Framing.CLOSE
                keep_alive = False
            end_input = Input.END_KEEP_ALIVE if keep_alive else Input.END_CLOSE
        if framing is Framing.CHUNKED:
            self._reader = ChunkedReader(
                max_body=self._max_body,
                trailer_limits=self._limits,
                max_line=self._max_chunk_line,
            )
        elif framing is Framing.LENGTH and length:
            if self._max_body is not None and length > self._max_body:
                raise RemoteProtocolError(
                    f"response Content-Length {length} over the limit", 502, Reason.ENTITY_TOO_LARGE
                )
            self._reader = LengthReader(length)
        elif framing is Framing.CLOSE:
            self._reader = UntilCloseReader(self._max_body)
        else:
            self._reader = NO_BODY
        self._end_input = end_input
        response = trusted_response(
            code,
            reason,
            http_version,
            tuple(fields),
            length,
            chunked,
            keep_alive,
            connection,
            framing,
        )
        self._machine.process(Input.HEAD)
        return response


def _specials(
    fields: list[tuple[bytes, bytes]], names: frozenset[bytes]
) -> list[tuple[bytes, bytes]]:
    return [field for field in fields if field[0] in names]


def _unsolicited() -> RemoteProtocolError:
    return RemoteProtocolError(
        "worker sent bytes after the end of its response", 502, Reason.BAD_REQUEST
    )
