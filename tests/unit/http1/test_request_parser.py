"""RequestParser behaviour beyond the catalogue: pausing, EOF, stickiness, keep-alive, upgrades."""

from __future__ import annotations

import pytest

from orchestrator.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    Reason,
    RemoteProtocolError,
    Request,
    RequestParser,
    State,
)

from ._support import parse

H = b"Host: example.com\r\n"
GET = b"GET / HTTP/1.1\r\n" + H + b"\r\n"


def test_pause_stops_after_the_current_message_and_resume_continues() -> None:
    """The proxy handles one request at a time: pause() holds the next pipelined request back."""
    parser = RequestParser()
    parser.receive_data(GET + b"GET /2 HTTP/1.1\r\n" + H + b"\r\n")
    assert isinstance(parser.next_event(), Request)
    parser.pause()
    assert isinstance(parser.next_event(), EndOfMessage)
    assert PAUSED is parser.next_event()
    assert parser.paused
    assert State.DONE is parser.state
    parser.resume()
    second = parser.next_event()
    assert isinstance(second, Request)
    assert b"/2" == second.target


def test_pause_before_a_head_holds_it_back() -> None:
    """With no message in progress, pause() takes effect at once."""
    parser = RequestParser()
    parser.pause()
    parser.receive_data(GET)
    assert PAUSED is parser.next_event()
    parser.resume()
    assert isinstance(parser.next_event(), Request)


def test_eof_at_a_message_boundary_is_a_clean_close() -> None:
    """EOF between messages yields ConnectionClosed, then keeps yielding it."""
    parser = RequestParser()
    parser.receive_data(GET)
    parser.receive_data(b"")
    events = [parser.next_event() for _ in range(4)]
    assert isinstance(events[0], Request)
    assert isinstance(events[1], EndOfMessage)
    assert all(isinstance(e, ConnectionClosed) for e in events[2:])
    assert State.CLOSED is parser.state


def test_eof_after_only_empty_lines_is_a_clean_close() -> None:
    """Leading CRLFs are ignored (RFC 9112 §2.2), so CRLF then EOF is not an error."""
    outcome = parse(b"\r\n\r\n", eof=True)
    assert outcome.error is None
    assert isinstance(outcome.last, ConnectionClosed)


def test_errors_are_sticky() -> None:
    """After an error every call raises again, with the same status and reason."""
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as first:
        parser.next_event()
    for call in (parser.next_event, lambda: parser.receive_data(GET)):
        with pytest.raises(RemoteProtocolError) as again:
            call()
        assert (first.value.error_status_hint, first.value.reason) == (
            again.value.error_status_hint,
            again.value.reason,
        )
    assert State.ERROR is parser.state


def test_data_after_eof_is_a_local_error() -> None:
    """Feeding bytes after EOF is a bug in the caller."""
    parser = RequestParser()
    parser.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        parser.receive_data(GET)
    assert State.ERROR is parser.state


def test_connection_close_stops_parsing_and_discards_what_follows() -> None:
    """Nothing after a closing request is parsed (or even buffered)."""
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET /x HTTP/1.1\r\n")
    assert not parser.next_event().keep_alive  # type: ignore[union-attr]
    assert isinstance(parser.next_event(), EndOfMessage)
    assert PAUSED is parser.next_event()
    parser.receive_data(b"more")
    assert (b"", False) == parser.trailing_data
    parser.receive_data(b"")
    assert isinstance(parser.next_event(), ConnectionClosed)


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n" + H + b"\r\n", True),
        (b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\n" + H + b"Connection: Keep-Alive, CLOSE\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", False),
    ],
)
def test_keep_alive_follows_version_and_connection(head: bytes, keep_alive: bool) -> None:
    """HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`."""
    (request,) = parse(head).requests
    assert keep_alive is request.keep_alive


def test_upgrade_request_stops_http_parsing_and_keeps_the_tunnel_bytes() -> None:
    """After an Upgrade request the rest is another protocol: available, never parsed as HTTP."""
    parser = RequestParser()
    parser.receive_data(
        b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /admin HTTP/1.1\r\n\r\n"
    )
    request = parser.next_event()
    assert isinstance(request, Request)
    assert (b"websocket", False) == (request.upgrade, request.keep_alive)
    assert isinstance(parser.next_event(), EndOfMessage)
    assert PAUSED is parser.next_event()
    assert State.SWITCHED is parser.state
    assert (b"GET /admin HTTP/1.1\r\n\r\n", False) == parser.trailing_data


def test_absolute_form_authority_overrides_host() -> None:
    """RFC 9112 §3.2.2: the target's authority wins over the Host field."""
    (request,) = parse(b"GET http://Other.Example:81/p HTTP/1.1\r\n" + H + b"\r\n").requests
    assert b"other.example:81" == request.host


def test_host_is_lower_cased_and_headers_keep_order_and_duplicates() -> None:
    """Names are lower-cased, values stripped of OWS; repeats and order are preserved."""
    (request,) = parse(
        b"GET / HTTP/1.1\r\nHost: EXAMPLE.com\r\nX-A: 1 \r\nx-a:\t2\r\nX-B: \r\n\r\n"
    ).requests
    assert b"example.com" == request.host
    assert ((b"host", b"EXAMPLE.com"), (b"x-a", b"1"), (b"x-a", b"2"), (b"x-b", b"")) == (
        request.headers
    )


def test_connection_tokens_are_lower_cased_and_empty_elements_dropped() -> None:
    """Connection is a list: `a, , B` gives (a, b)."""
    (request,) = parse(
        b"GET / HTTP/1.1\r\n" + H + b"Connection: a, , B\r\nConnection: c\r\n\r\n"
    ).requests
    assert (b"a", b"b", b"c") == request.connection


def test_http_1_0_request_may_omit_host() -> None:
    """Host is mandatory only from HTTP/1.1 (RFC 9112 §3.2)."""
    (request,) = parse(b"GET / HTTP/1.0\r\n\r\n").requests
    assert b"" == request.host


def test_expect_100_continue_is_ignored_on_http_1_0() -> None:
    """RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request."""
    (request,) = parse(
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
    ).requests
    assert not request.expect_continue


def test_body_is_delivered_as_it_arrives() -> None:
    """Data events follow the reads; EndOfMessage comes when the length is reached."""
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n\r\nabc")
    assert isinstance(parser.next_event(), Request)
    assert Data(b"abc") == parser.next_event()
    assert NEED_DATA is parser.next_event()
    parser.receive_data(b"defGET")
    assert Data(b"def") == parser.next_event()
    assert isinstance(parser.next_event(), EndOfMessage)
    assert NEED_DATA is parser.next_event()


def test_a_body_that_arrives_on_its_own_passes_through_without_a_copy() -> None:
    """Body bytes received after the head, with nothing buffered, become the Data event as they
    are (the same object): a body the listener only forwards is never copied into the buffer."""
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n")
    assert isinstance(parser.next_event(), Request)
    assert NEED_DATA is parser.next_event()
    first, second = b"0123", b"456789"
    parser.receive_data(first)
    assert parser.next_event().data is first  # type: ignore[union-attr]
    parser.receive_data(second)
    assert parser.next_event().data is second  # type: ignore[union-attr]
    assert isinstance(parser.next_event(), EndOfMessage)


def test_bytes_after_a_passed_through_body_start_the_next_request() -> None:
    """A piece holding the end of a body and the next (pipelined) request: Data gets the body's
    part only, and the rest is parsed as the next request."""
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\n")
    assert isinstance(parser.next_event(), Request)
    parser.receive_data(b"abc" + GET)
    assert Data(b"abc") == parser.next_event()
    assert isinstance(parser.next_event(), EndOfMessage)
    parser.receive_data(b"")  # later pieces still queue behind the held bytes
    assert isinstance(parser.next_event(), Request)


def test_pieces_received_before_the_next_event_keep_their_order() -> None:
    """Two pieces received before the body is read come out in order (the second joins the first
    in the buffer), then the end."""
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n\r\n")
    assert isinstance(parser.next_event(), Request)
    parser.receive_data(b"abc")
    parser.receive_data(b"def")
    got = b""
    while not isinstance(event := parser.next_event(), EndOfMessage):
        assert isinstance(event, Data)
        got += event.data
    assert b"abcdef" == got


def test_chunk_extensions_and_trailers_are_parsed() -> None:
    """Quoted extensions are skipped; trailers come with EndOfMessage."""
    outcome = parse(
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b'3;a=1;b="x\\"y"\r\nabc\r\n0;z\r\nX-Sum: 9\r\n\r\n'
    )
    assert outcome.error is None
    assert b"abc" == outcome.body
    assert EndOfMessage(((b"x-sum", b"9"),)) == outcome.events[-1]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"3\r\nabc\r\n0\r\nX-A: 1\r\n X-B: 2\r\n\r\n", Reason.HEADER),
        (b"3\r\nabc\r\n0\r\nX-A : 1\r\n\r\n", Reason.HEADER),
        (
            b"3\r\nabc\r\n0\r\n" + b"".join(b"T%d: v\r\n" % i for i in range(101)) + b"\r\n",
            Reason.REQUEST_LENGTH,
        ),
        (b"3\r\nabc\r\n0\r\nX: " + b"v" * 9000 + b"\r\n\r\n", Reason.FIELD_LENGTH),
        (b"1" + b";a" * 3000 + b"\r\nx\r\n0\r\n\r\n", Reason.BAD_REQUEST),
    ],
)
def test_malformed_trailers_and_overlong_chunk_lines_are_refused(
    body: bytes, reason: Reason
) -> None:
    """Trailers get the same field and limit checks as the head; chunk lines have a length limit."""
    outcome = parse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert isinstance(outcome.error, RemoteProtocolError)
    assert reason is outcome.error.reason


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_url_bytes": 0},
        {"max_header_fields": 0},
        {"max_body_bytes": -1},
        {"max_chunk_line_bytes": 0},
    ],
)
def test_nonsensical_limits_are_refused(kwargs: dict[str, int]) -> None:
    """Limits must be positive (max_body_bytes may be None for no limit)."""
    with pytest.raises(ValueError, match="must be"):
        RequestParser(**kwargs)


def test_no_body_limit_when_max_body_bytes_is_none() -> None:
    """max_body_bytes=None accepts any valid Content-Length."""
    (request,) = parse(
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999\r\n\r\n", max_body_bytes=None
    ).requests
    assert 99999999999 == request.content_length


@pytest.mark.parametrize(
    "closing",
    [
        b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n" + H + b"\r\n",
        b"GET / HTTP/1.0\r\n" + H + b"Connection: keep-alive\r\nConnection: close\r\n\r\n",
    ],
)
def test_a_closing_request_does_not_spoil_the_next_connection(closing: bytes) -> None:
    """The llhttp tokenizer is shared by every parser on a thread: one left in llhttp's closed state
    by a request that ends its connection must not be fed the next connection's head (it would
    refuse it with a 400)."""
    for data in (GET, closing, GET, closing, GET):
        parser = RequestParser()
        parser.receive_data(data)
        assert isinstance(parser.next_event(), Request), data
        assert isinstance(parser.next_event(), EndOfMessage)


def test_parsers_on_other_threads_tokenize_on_their_own() -> None:
    """The worker runner parses on several threads: none is handed a parser another one holds, so
    every request comes out with its own target and Host, whatever the interleaving."""
    import sys
    import threading

    barrier = threading.Barrier(4)
    wrong: list[tuple[int, int]] = []

    def work(n: int) -> None:
        barrier.wait()
        for i in range(1500):
            parser = RequestParser()
            parser.receive_data(f"GET /{n}/{i} HTTP/1.1\r\nHost: h{n}.test\r\n\r\n".encode())
            req = parser.next_event()
            assert isinstance(req, Request)
            if req.target != f"/{n}/{i}".encode() or (b"host", f"h{n}.test".encode()) not in [
                (k.lower(), v) for k, v in req.headers
            ]:
                wrong.append((n, i))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert [] == wrong


def test_parsers_that_are_not_pooled_are_freed_at_once_not_by_the_collector() -> None:
    """Heads with bodies and closing heads leave their llhttp parser behind: it must go by
    reference counting (a listener with 10,000 connections pays for every collection)."""
    import gc

    heads = [
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n" + H + b"\r\n",
    ]
    gc.collect()
    gc.disable()
    try:
        for _ in range(300):
            for head in heads:
                parser = RequestParser()
                parser.receive_data(head)
                assert isinstance(parser.next_event(), Request)
        assert 0 == gc.collect()
    finally:
        gc.enable()


def test_an_upgrade_head_does_not_leave_its_parser_for_the_next_one() -> None:
    """llhttp stops paused after an Upgrade or CONNECT head; that parser is never reused."""
    from orchestrator.http1._llhttp import shared_tokenizer
    from orchestrator.http1.validate import SPECIAL_REQUEST_FIELDS

    tokenizer = shared_tokenizer(response=False, special=SPECIAL_REQUEST_FIELDS)
    tokenizer._free.clear()
    tokenizer.tokenize(b"GET / HTTP/1.1\r\n" + H + b"Upgrade: x\r\nConnection: upgrade\r\n\r\n")
    tokenizer.tokenize(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    assert [] == tokenizer._free
    tokenizer.tokenize(GET)
    assert 1 == len(tokenizer._free)
