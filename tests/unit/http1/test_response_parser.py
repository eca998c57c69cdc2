"""ResponseParser: strict framing of worker replies; every failure is a 502 for the client."""

from __future__ import annotations

import pytest

from orchestrator.http1 import (
    PAUSED,
    ConnectionClosed,
    EndOfMessage,
    Framing,
    LocalProtocolError,
    Reason,
    RemoteProtocolError,
    Response,
    ResponseParser,
    State,
)

from ._support import Outcome, feed


def _run(data: bytes, *, eof: bool = False, method: bytes = b"GET", **kwargs: object) -> Outcome:
    return feed([data], eof=eof, parser=ResponseParser(request_method=method, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "method", "framing", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"GET", Framing.LENGTH, b"ok"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"GET",
            Framing.CHUNKED,
            b"ok",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", b"HEAD", Framing.NONE, b""),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", b"GET", Framing.NONE, b""),
        (
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET",
            Framing.NONE,
            b"",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil close", b"GET", Framing.CLOSE, b"until close"),
        (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", b"GET", Framing.LENGTH, b""),
    ],
)
def test_response_body_is_framed_by_method_status_and_fields(
    data: bytes, method: bytes, framing: Framing, body: bytes
) -> None:
    """HEAD, 204 and 304 have no body; CL and chunked as announced; otherwise until EOF."""
    outcome = _run(data, eof=True, method=method)
    assert outcome.error is None
    response = outcome.events[0]
    assert isinstance(response, Response)
    assert framing is response.framing
    assert body == outcome.body
    assert 1 == outcome.ends


def test_interim_responses_precede_the_final_one() -> None:
    """100 Continue and 103 Early Hints come first, each ended, then the final response."""
    outcome = _run(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    )
    assert outcome.error is None
    codes = [e.status_code for e in outcome.events if isinstance(e, Response)]
    assert [100, 103, 200] == codes
    assert 3 == outcome.ends


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            Reason.BAD_REQUEST,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", Reason.NUMBER),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Reason.BAD_REQUEST),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", Reason.INVALID_CR_LF),
        (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", Reason.INVALID_CR_LF),
        (b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", Reason.HEADER),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Reason.NOT_IMPLEMENTED),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Reason.BAD_REQUEST),
        (b"HTTP/1.1 2000 OK\r\n\r\n", Reason.BAD_REQUEST),
        (b"HTTP/1.1 099 OK\r\n\r\n", Reason.BAD_REQUEST),
        (b"HTTP/1.2 200 OK\r\n\r\n", Reason.VERSION_NS),
        (b"ICY 200 OK\r\n\r\n", Reason.BAD_REQUEST),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX", Reason.BAD_REQUEST),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", Reason.BAD_REQUEST),
    ],
)
def test_broken_reply_is_a_502_with_the_reason(data: bytes, reason: Reason) -> None:
    """CL+TE, bad CL, bare CR/LF, bad fields, unsupported codings, bad status lines, truncation."""
    outcome = _run(data, eof=True)
    assert isinstance(outcome.error, RemoteProtocolError)
    assert (502, reason) == (outcome.error.error_status_hint, outcome.error.reason)


def test_kept_alive_connection_waits_for_the_next_request() -> None:
    """After a final response the parser is PAUSED until start_next_response()."""
    parser = ResponseParser()
    outcome = feed([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], parser=parser)
    assert PAUSED is outcome.last
    parser.start_next_response(b"HEAD")
    parser.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n")
    response = parser.next_event()
    assert isinstance(response, Response)
    assert Framing.NONE is response.framing
    assert isinstance(parser.next_event(), EndOfMessage)


def test_bytes_after_a_complete_response_are_refused() -> None:
    """A worker cannot answer a request it was not sent: response-splitting defence."""
    outcome = _run(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
    assert isinstance(outcome.error, RemoteProtocolError)
    assert 502 == outcome.error.error_status_hint
    assert 1 == outcome.ends


def test_start_next_response_refuses_unsolicited_bytes_too() -> None:
    """Buffered bytes seen when the next request is about to go out are refused as well."""
    parser = ResponseParser()
    feed([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], parser=parser)
    parser.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.start_next_response(b"GET")


def test_start_next_response_mid_body_is_a_local_error() -> None:
    """The previous response must be complete first."""
    parser = ResponseParser()
    parser.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert isinstance(parser.next_event(), Response)
    with pytest.raises(LocalProtocolError):
        parser.start_next_response(b"GET")


def test_close_delimited_body_ends_at_eof_and_cannot_keep_alive() -> None:
    """Without CL or chunked the body runs to EOF; the connection is then closed."""
    parser = ResponseParser()
    outcome = feed([b"HTTP/1.1 200 OK\r\n\r\nab", b"cd"], eof=True, parser=parser)
    assert outcome.error is None
    assert not outcome.events[0].keep_alive  # type: ignore[union-attr]
    assert b"abcd" == outcome.body
    assert isinstance(outcome.last, ConnectionClosed)


def test_connection_close_response_is_not_kept_alive() -> None:
    """`Connection: close` from the worker means the upstream connection is not reused."""
    parser = ResponseParser()
    outcome = feed(
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"], parser=parser
    )
    assert not outcome.events[0].keep_alive  # type: ignore[union-attr]
    assert State.MUST_CLOSE is parser.state


def test_switching_protocols_stops_parsing() -> None:
    """A 101 ends HTTP on this connection; the rest is available as trailing data."""
    parser = ResponseParser()
    outcome = feed(
        [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n\x81\x00"], parser=parser
    )
    assert PAUSED is outcome.last
    assert State.SWITCHED is parser.state
    assert (b"\x81\x00", False) == parser.trailing_data


def test_response_body_limit_is_a_502() -> None:
    """max_body_bytes caps what a worker may send."""
    outcome = _run(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 11, eof=True, max_body_bytes=10)
    assert isinstance(outcome.error, RemoteProtocolError)
    assert (502, Reason.ENTITY_TOO_LARGE) == (outcome.error.error_status_hint, outcome.error.reason)


def test_eof_before_any_response_is_a_clean_close() -> None:
    """The proxy decides what an upstream that closes without answering means (a 502)."""
    outcome = _run(b"", eof=True)
    assert outcome.error is None
    assert isinstance(outcome.last, ConnectionClosed)


def test_a_closing_response_does_not_spoil_the_next_connection() -> None:
    """Same for responses: a bodiless `Connection: close` reply leaves llhttp closed; the next
    upstream connection's reply must still parse."""
    closing = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    kept = b"HTTP/1.1 204 No Content\r\n\r\n"
    for data in (kept, closing, kept, closing, kept):
        parser = ResponseParser(request_method=b"GET")
        parser.receive_data(data)
        assert isinstance(parser.next_event(), Response), data
        assert isinstance(parser.next_event(), EndOfMessage)
