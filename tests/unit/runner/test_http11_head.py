"""Request heads: strict parsing, framing decisions, and reading heads off a stream."""

from __future__ import annotations

import pytest

from orchestrator.runner.errors import ClientDisconnected, HttpError
from orchestrator.runner.http11 import (
    MAX_HEADERS,
    BufferedReader,
    ChunkedBody,
    EmptyBody,
    LengthBody,
    encode_response_head,
    error_response,
    make_body,
    parse_request_head,
)
from tests.unit.runner.scripted import ScriptedRecv, byte_at_a_time, split_randomly


def test_a_simple_get_parses_into_method_target_version_and_headers() -> None:
    """Names keep their case; values are trimmed of surrounding whitespace."""
    head = parse_request_head(b"GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\nX-Thing:  v a l \t")
    assert ("GET", "/a?b=1", "HTTP/1.1") == (head.method, head.target, head.version)
    assert [("Host", "example.org"), ("X-Thing", "v a l")] == head.headers
    assert (None, False, True, False) == (
        head.content_length,
        head.chunked,
        head.keep_alive,
        head.expect_continue,
    )


@pytest.mark.parametrize(
    ("raw", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: h", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close", False),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, Close", False),
        (b"GET / HTTP/1.0", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive", True),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive", True),
    ],
)
def test_keep_alive_follows_the_version_default_and_connection_tokens(
    raw: bytes, keep_alive: bool
) -> None:
    """HTTP/1.1 persists unless ``close``; HTTP/1.0 only with ``keep-alive``."""
    assert keep_alive == parse_request_head(raw).keep_alive


def test_content_length_and_chunked_framing_are_recognised() -> None:
    """A length is plain decimal digits; ``chunked`` is case-insensitive."""
    head = parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 005")
    assert 5 == head.content_length
    head = parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked")
    assert head.chunked
    assert head.content_length is None


def test_expect_100_continue_is_noted_for_http11_only() -> None:
    """HTTP/1.0 clients do not wait for 100 Continue, so it is never sent to them."""
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1"
    assert parse_request_head(raw).expect_continue
    raw = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1"
    assert not parse_request_head(raw).expect_continue


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /", 400),
        (b"GET  / HTTP/1.1\r\nHost: h", 400),
        (b"GET / HTTP/1.1 \r\nHost: h", 400),
        (b"G(T / HTTP/1.1\r\nHost: h", 400),
        (b"GET /\x7f HTTP/1.1\r\nHost: h", 400),
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h", 400),
        (b"GET / HTTP/1.1\nHost: h", 400),
        (b"GET / HTTP/1.1\r\nHost: h\nX: y", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX : y", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\n: y", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: y\r\n  folded", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nNoColon", 400),
        (b"GET / HTTP/1.1", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +1", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked", 400),
        (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked", 400),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked", 501),
        (b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity", 501),
        (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: the-unexpected", 417),
        (b"GET / HTTP/2.0\r\nHost: h", 505),
        (b"GET / HTTP/1.1\r\nHost: a b", 400),
        (b"GET /a#b HTTP/1.1\r\nHost: h", 400),
        (b"GET http://u@h/ HTTP/1.1\r\nHost: h", 400),
        (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443", 501),
        (b"GET / http/1.1\r\nHost: h", 400),
        (b"GET / HTTP/1.10\r\nHost: h", 400),
    ],
)
def test_malformed_or_ambiguous_heads_are_refused_with_a_status(raw: bytes, status: int) -> None:
    """Everything that two parsers could read differently is an error, never a guess."""
    with pytest.raises(HttpError) as info:
        parse_request_head(raw)
    assert status == info.value.status


def test_too_many_header_fields_is_a_431() -> None:
    """The header count is bounded like gunicorn's ``limit_request_fields``, with room for the fields
    the listener adds to a request at its own limit of 100."""
    raw = b"GET / HTTP/1.1\r\nHost: h" + b"\r\nX: y" * (MAX_HEADERS - 1)
    assert MAX_HEADERS == len(parse_request_head(raw).headers)
    with pytest.raises(HttpError) as info:
        parse_request_head(raw + b"\r\nX: y")
    assert 431 == info.value.status


def test_a_higher_minor_version_is_served_as_http11() -> None:
    """RFC 9110 §2.5: HTTP/1.2 is handled as 1.1, as the listener does."""
    head = parse_request_head(b"GET / HTTP/1.2\r\nHost: h")
    assert ("HTTP/1.1", True) == (head.version, head.keep_alive)


PIPELINED = (
    b"\r\nGET /one HTTP/1.1\r\nHost: h\r\n\r\n"
    b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    b"GET /three HTTP/1.1\r\nHost: h\r\n\r\n"
)


@pytest.mark.parametrize(
    "pieces",
    [
        [PIPELINED],
        byte_at_a_time(PIPELINED),
        *(split_randomly(PIPELINED, seed) for seed in range(5)),
    ],
    ids=["whole", "bytewise", *(f"seed{s}" for s in range(5))],
)
def test_pipelined_requests_are_read_in_order_however_the_bytes_arrive(
    pieces: list[bytes],
) -> None:
    """Heads and bodies come off one buffered stream without losing the next request."""
    reader = BufferedReader(ScriptedRecv(pieces))
    targets = []
    while (raw := reader.read_head()) is not None:
        head = parse_request_head(raw)
        targets.append(head.target)
        body = make_body(head, reader)
        assert (b"abc" if head.method == "POST" else b"") == body.read()
    assert ["/one", "/two", "/three"] == targets


def test_eof_before_any_byte_is_a_clean_close() -> None:
    """A keep-alive client closing between requests is not an error."""
    assert BufferedReader(ScriptedRecv([])).read_head() is None


def test_eof_inside_a_head_is_a_disconnect() -> None:
    """Half a head is never parsed."""
    with pytest.raises(ClientDisconnected):
        BufferedReader(ScriptedRecv([b"GET / HTTP/1.1\r\nHo"])).read_head()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /" + b"a" * 70_000, 414),
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 70_000, 431),
        (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: y\r\n" * 11_000 + b"\r\n", 431),
        (b"GET / HTTP/1.1\nHost: h\n\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: h\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb", 400),
    ],
)
def test_heads_are_bounded_at_64_kib_and_bare_lf_fails_fast(data: bytes, status: int) -> None:
    """No head is buffered past 64 KiB, and a bare LF or CR is refused without waiting for more."""
    reader = BufferedReader(ScriptedRecv([data[i : i + 4096] for i in range(0, len(data), 4096)]))
    with pytest.raises(HttpError) as info:
        reader.read_head()
    assert status == info.value.status


def test_make_body_picks_the_reader_the_framing_calls_for() -> None:
    """Chunked, Content-Length, or no body at all (RFC 9112 §6.3)."""
    reader = BufferedReader(ScriptedRecv([]))
    assert isinstance(
        make_body(parse_request_head(b"GET / HTTP/1.1\r\nHost: h"), reader), EmptyBody
    )
    post = parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0")
    assert isinstance(make_body(post, reader), EmptyBody)
    post = parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2")
    assert isinstance(make_body(post, reader), LengthBody)
    post = parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked")
    assert isinstance(make_body(post, reader), ChunkedBody)


def test_response_heads_and_error_responses_are_encoded_as_latin1_with_crlf() -> None:
    """The status line is always HTTP/1.1; error responses close."""
    assert b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n" == encode_response_head("200 OK", [("A", "b")])
    response = error_response(400)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in response
    assert response.endswith(b"\r\n\r\nBad Request\n")
