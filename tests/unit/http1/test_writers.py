"""Writers: request heads re-serialised for workers, chunk framing, the listener's own responses."""

from __future__ import annotations

import pytest

from orchestrator.http1 import (
    CONTINUE,
    HOP_BY_HOP,
    LocalProtocolError,
    Request,
    ResponseParser,
    origin_form,
    write_chunk,
    write_error_response,
    write_last_chunk,
    write_request_head,
)

from ._support import feed, parse

H = b"Host: example.com\r\n"

ROUND_TRIP = [
    ("GET", b"GET /a?b=c HTTP/1.1\r\n" + H + b"Accept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"),
    ("POST with length", b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello"),
    (
        "POST chunked",
        b"POST /p HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "HTTP/1.0 keep-alive",
        b"GET /old HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
    ),
    ("absolute-form", b"GET http://Example.COM:8080/x?y HTTP/1.1\r\n" + H + b"\r\n"),
    (
        "hop-by-hop and Connection-named",
        b"GET / HTTP/1.1\r\n"
        + H
        + b"Connection: keep-alive, X-Hop\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: X\r\n"
        + b"Proxy-Connection: x\r\nX-Hop: 1\r\nX-End: 2\r\n\r\n",
    ),
]


def _reparse(head: bytes, body: bytes = b"") -> Request:
    outcome = parse(head + body)
    assert outcome.error is None, outcome.error
    (request,) = outcome.requests
    return request


@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in ROUND_TRIP])
def test_parsed_request_round_trips_through_the_serialiser(data: bytes) -> None:
    """Parse, serialise for a worker, parse again: same method, origin-form target, host, framing,
    and the end-to-end fields in order; hop-by-hop fields gone."""
    first = _reparse(data)
    head = write_request_head(first, keep_alive=True)
    second = _reparse(head)
    assert first.method == second.method
    assert origin_form(first.target) == second.target
    assert (first.host, first.content_length, first.chunked) == (
        second.host,
        second.content_length,
        second.chunked,
    )
    assert b"1.1" == second.http_version
    dropped = HOP_BY_HOP | set(first.connection) | {b"host", b"content-length"}
    expected = [f for f in first.headers if f[0] not in dropped]
    actual = [
        f for f in second.headers if f[0] not in {b"host", b"content-length", b"transfer-encoding"}
    ]
    assert expected == actual


def test_serialised_head_uses_crlf_only_and_one_framing() -> None:
    """No bare LF, and exactly one of Content-Length / Transfer-Encoding."""
    request = _reparse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
    head = write_request_head(request)
    assert head.count(b"\n") == head.count(b"\r\n")
    assert head.endswith(b"\r\n\r\n")
    assert 1 == head.lower().count(b"transfer-encoding:") + head.lower().count(b"content-length:")


def test_buffered_chunked_body_can_be_sent_with_an_exact_length() -> None:
    """content_length= replaces chunked framing (the listener buffered the body)."""
    request = _reparse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
    head = write_request_head(request, content_length=11)
    assert b"content-length: 11\r\n" in head
    assert b"transfer-encoding" not in head


def test_post_without_a_body_says_content_length_zero() -> None:
    """RFC 9110 §8.6: a POST with no content still announces its (zero) length."""
    head = write_request_head(_reparse(b"POST / HTTP/1.1\r\n" + H + b"\r\n"))
    assert b"content-length: 0\r\n" in head


def test_connection_close_is_added_unless_keep_alive() -> None:
    """One upstream connection per request by default."""
    request = _reparse(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    assert write_request_head(request).endswith(b"connection: close\r\n\r\n")
    assert b"connection" not in write_request_head(request, keep_alive=True)


def test_client_forwarding_fields_are_dropped_even_when_no_replacement_is_given() -> None:
    """The client's X-Forwarded-*/Forwarded never pass through, replaced or not."""
    request = _reparse(
        b"GET / HTTP/1.1\r\n" + H + b"X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n"
    )
    assert b"6.6.6.6" not in write_request_head(request)


def test_expect_is_not_forwarded() -> None:
    """The listener answers 100-continue itself; a worker must not send a second 100."""
    request = _reparse(
        b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx"
    )
    assert b"expect" not in write_request_head(request).lower()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"x_forwarded_for": b"1.2.3.4\r\nX-Evil: 1"},
        {"forwarded": b"for=1\n"},
        {"x_forwarded_host": b" padded"},
        {"host": b"a\x00b"},
        {"extra_headers": [(b"X-Ok", b"bad\r\nvalue")]},
        {"extra_headers": [(b"Content-Length", b"5")]},
        {"extra_headers": [(b"Bad Name", b"v")]},
        {"content_length": -1},
    ],
)
def test_caller_values_that_would_break_the_head_are_refused(kwargs: dict[str, object]) -> None:
    """Caller-supplied values are checked: no header injection, no second framing."""
    request = _reparse(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    with pytest.raises(LocalProtocolError):
        write_request_head(request, **kwargs)  # type: ignore[arg-type]


def test_http_1_0_request_without_host_needs_a_host_to_forward() -> None:
    """HTTP/1.0 may omit Host; the worker gets HTTP/1.1, which needs one."""
    request = _reparse(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        write_request_head(request)
    assert b"host: fallback.example\r\n" in write_request_head(request, host=b"fallback.example")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/a?b", b"/a?b"),
        (b"*", b"*"),
        (b"http://example.com", b"/"),
        (b"http://example.com?q=1", b"/?q=1"),
        (b"https://example.com:8443/x/y?z", b"/x/y?z"),
    ],
)
def test_origin_form_strips_scheme_and_authority(target: bytes, expected: bytes) -> None:
    """Absolute-form targets reach workers in origin-form."""
    assert expected == origin_form(target)


def test_chunk_framing_round_trips_through_the_parser() -> None:
    """write_chunk/write_last_chunk produce what ChunkedReader accepts, trailers included."""
    head = write_request_head(
        _reparse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
    )
    body = write_chunk(b"hello ") + write_chunk(b"") + write_chunk(b"x" * 300)
    body += write_last_chunk(((b"x-sum", b"abc"), (b"content-length", b"9")))
    outcome = parse(head + body)
    assert outcome.error is None
    assert b"hello " + b"x" * 300 == outcome.body
    assert ((b"x-sum", b"abc"),) == outcome.events[-1].trailers  # type: ignore[union-attr]


def test_empty_data_is_not_written_as_a_last_chunk() -> None:
    """A zero-length chunk would end the body early, so it is not written at all."""
    assert b"" == write_chunk(b"")
    assert b"0\r\n\r\n" == write_last_chunk()


@pytest.mark.parametrize("status", [400, 413, 414, 431, 501, 502, 505])
def test_error_response_has_a_length_and_closes(status: int) -> None:
    """The listener's own error responses: exact Content-Length and Connection: close."""
    data = write_error_response(status)
    outcome = feed([data], eof=True, parser=ResponseParser())
    assert outcome.error is None
    response = outcome.events[0]
    assert status == response.status_code  # type: ignore[union-attr]
    assert not response.keep_alive  # type: ignore[union-attr]
    assert len(outcome.body) == response.content_length  # type: ignore[union-attr]


def test_error_response_carries_extra_headers() -> None:
    """A 503 can say when to come back."""
    data = write_error_response(503, extra_headers=[(b"Retry-After", b"5")])
    assert b"Retry-After: 5\r\n" in data


@pytest.mark.parametrize("status", [200, 302, 399, 600])
def test_error_response_refuses_non_error_statuses(status: int) -> None:
    """Only 4xx and 5xx are error responses."""
    with pytest.raises(LocalProtocolError):
        write_error_response(status)


def test_continue_is_an_interim_response() -> None:
    """100 Continue has no body and does not end the exchange."""
    parser = ResponseParser()
    outcome = feed([CONTINUE], parser=parser)
    assert outcome.error is None
    assert 100 == outcome.events[0].status_code  # type: ignore[union-attr]
