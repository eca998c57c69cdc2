"""Section A of notes/test-catalogue.md at the parser level: status hint and http.sys reason per input.

The listener turns each `RemoteProtocolError` into its `error_status_hint` and closes; these tests pin
the hint and the logged reason. Cases that need a socket or a worker (exactly one response on the
wire, which worker got what) are the listener's integration tests; here we check the parser half:
what is refused, and that nothing after a refusal is ever parsed as a request.
"""

from __future__ import annotations

import pytest

from orchestrator.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Reason,
    RemoteProtocolError,
    Request,
    RequestParser,
    ResponseParser,
    write_request_head,
)

from ._support import feed, parse

H = b"Host: example.com\r\n"


def _refused(data: bytes, *, eof: bool = True, **limits: object) -> RemoteProtocolError:
    outcome = parse(data, eof=eof, **limits)
    assert isinstance(outcome.error, RemoteProtocolError), outcome
    assert not any(isinstance(e, EndOfMessage) for e in outcome.events), outcome.events
    return outcome.error


REFUSED = [
    # A1: Content-Length and Transfer-Encoding together, any case and order.
    (
        "A1 CL then TE",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A1 TE then CL",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A1 lower case",
        b"POST / HTTP/1.1\r\n" + H + b"content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A1 mixed case",
        b"POST / HTTP/1.1\r\n" + H + b"cOnTeNt-LeNgTh: 5\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A1 CL with TE identity",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    # A2: duplicate Content-Length, identical or not.
    (
        "A2 differing",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A2 identical",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A2 list",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    # A3: invalid Content-Length values.
    ("A3 plus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\n", 400, Reason.NUMBER),
    ("A3 minus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, Reason.NUMBER),
    ("A3 hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\n", 400, Reason.NUMBER),
    (
        "A3 two numbers",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5 5\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    ("A3 empty", b"POST / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", 400, Reason.NUMBER),
    (
        "A3 underscore",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1_0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A3 2**64",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 18446744073709551616\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A3 2**63",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 9223372036854775808\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    # A4: Transfer-Encoding obfuscations; an unknown coding is 501, a malformed field 400.
    (
        "A4 xchunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n",
        501,
        Reason.NOT_IMPLEMENTED,
    ),
    (
        "A4 chunked, identity",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n",
        501,
        Reason.NOT_IMPLEMENTED,
    ),
    (
        "A4 chunked not last",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
        501,
        Reason.NOT_IMPLEMENTED,
    ),
    (
        "A4 gzip, chunked",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        Reason.NOT_IMPLEMENTED,
    ),
    (
        "A4 identity",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n",
        501,
        Reason.NOT_IMPLEMENTED,
    ),
    (
        "A4 space before colon",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n",
        400,
        Reason.HEADER,
    ),
    (
        "A4 tab before value",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\tchunked\r\n\r\n",
        400,
        Reason.HEADER,
    ),
    (
        "A4 space and tab before value",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \tchunked\r\n\r\n",
        400,
        Reason.HEADER,
    ),
    (
        "A4 vertical tab",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0bchunked\r\n\r\n",
        400,
        Reason.HEADER,
    ),
    (
        "A4 two TE lines",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A4 chunked twice",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A4 empty element",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: ,chunked\r\n\r\n",
        400,
        Reason.HEADER,
    ),
    (
        "A4 TE in HTTP/1.0",
        b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    # A5: field syntax.
    ("A5 space before colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400, Reason.HEADER),
    ("A5 tab before colon", b"GET / HTTP/1.1\r\n" + H + b"X-A\t: b\r\n\r\n", 400, Reason.HEADER),
    ("A5 obs-fold space", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400, Reason.HEADER),
    ("A5 obs-fold tab", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n", 400, Reason.HEADER),
    (
        "A5 bare CR in value",
        b"GET / HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    ("A5 NUL in value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400, Reason.HEADER),
    ("A5 SOH in value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x01c\r\n\r\n", 400, Reason.HEADER),
    ("A5 DEL in value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x7fc\r\n\r\n", 400, Reason.HEADER),
    ("A5 non-token name", b"GET / HTTP/1.1\r\n" + H + b"X@A: b\r\n\r\n", 400, Reason.HEADER),
    ("A5 space in name", b"GET / HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n", 400, Reason.HEADER),
    ("A5 empty name", b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n", 400, Reason.HEADER),
    ("A5 no colon", b"GET / HTTP/1.1\r\n" + H + b"X-A b\r\n\r\n", 400, Reason.HEADER),
    # A6: bare LF as a line terminator, in the head and anywhere in chunk framing.
    ("A6 request line", b"GET / HTTP/1.1\n" + H + b"\r\n", 400, Reason.INVALID_CR_LF),
    ("A6 field line", b"GET / HTTP/1.1\r\nHost: example.com\n\r\n", 400, Reason.INVALID_CR_LF),
    ("A6 only LF", b"GET / HTTP/1.1\nHost: example.com\n\n", 400, Reason.INVALID_CR_LF),
    ("A6 leading LF", b"\nGET / HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.INVALID_CR_LF),
    (
        "A6 chunk size line",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    (
        "A6 after chunk data",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    (
        "A6 in extension",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    (
        "A6 last chunk",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\n\r\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    (
        "A6 in trailers",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    (
        "A6 trailer section end",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\n",
        400,
        Reason.INVALID_CR_LF,
    ),
    # A7: chunk-size syntax and the CRLF after chunk data.
    (
        "A7 non-hex",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nz\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 plus",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 minus",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 0x prefix",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 17 hex digits",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 overflow",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 trailing space",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 trailing tab",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\t\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 space before extension",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 empty extension",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A7 missing CRLF after data",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
        400,
        Reason.BAD_REQUEST,
    ),
    (
        "A7 missing last chunk",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nfoo\r\n\r\n",
        400,
        Reason.NUMBER,
    ),
    (
        "A7 EOF mid body",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel",
        400,
        Reason.BAD_REQUEST,
    ),
    # A10: Host.
    ("A10 no Host", b"GET / HTTP/1.1\r\n\r\n", 400, Reason.HOSTNAME),
    (
        "A10 two Host lines",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        400,
        Reason.HOSTNAME,
    ),
    (
        "A10 two Host lines, same value",
        b"GET / HTTP/1.1\r\n" + H + H + b"\r\n",
        400,
        Reason.HOSTNAME,
    ),
    ("A10 Host with space", b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400, Reason.HOSTNAME),
    (
        "A10 Host with userinfo",
        b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n",
        400,
        Reason.HOSTNAME,
    ),
    ("A10 Host with path", b"GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n", 400, Reason.HOSTNAME),
    (
        "A10 Host port too big",
        b"GET / HTTP/1.1\r\nHost: example.com:65536\r\n\r\n",
        400,
        Reason.HOSTNAME,
    ),
    ("A10 Host empty port", b"GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", 400, Reason.HOSTNAME),
    ("A10 Host empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, Reason.HOSTNAME),
    ("A10 Host unclosed IPv6", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, Reason.HOSTNAME),
    ("A10 two Hosts in HTTP/1.0", b"GET / HTTP/1.0\r\n" + H + H + b"\r\n", 400, Reason.HOSTNAME),
    # A12: raw bytes in the target are refused; encoded ones are routing's business.
    ("A12 fragment", b"GET /a#b HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.URL),
    ("A12 raw NUL", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.URL),
    ("A12 raw DEL", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.URL),
    ("A12 raw UTF-8", b"GET /\xce\xb4 HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.URL),
    (
        "A12 userinfo in absolute-form",
        b"GET http://u:p@example.com/ HTTP/1.1\r\n" + H + b"\r\n",
        400,
        Reason.URL,
    ),
    (
        "A12 authority-form without CONNECT",
        b"GET example.com:80 HTTP/1.1\r\n" + H + b"\r\n",
        400,
        Reason.URL,
    ),
    ("A12 asterisk without OPTIONS", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.URL),
    ("A12 two spaces", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.BAD_REQUEST),
    # A13: HTTP/2 on an HTTP/1 connection.
    ("A13 PRI preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, Reason.VERSION_NS),
    ("A13 GET HTTP/2.0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505, Reason.VERSION_NS),
    ("A13 HTTP/3.0", b"GET / HTTP/3.0\r\n" + H + b"\r\n", 505, Reason.VERSION_NS),
    ("A13 HTTP/0.9 spelled out", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505, Reason.VERSION_NS),
    ("A13 lower-case version", b"GET / http/1.1\r\n" + H + b"\r\n", 400, Reason.BAD_REQUEST),
    ("A13 two-digit minor", b"GET / HTTP/1.10\r\n" + H + b"\r\n", 400, Reason.BAD_REQUEST),
    ("A13 no version", b"GET /\r\n\r\n", 400, Reason.BAD_REQUEST),
    # Methods.
    (
        "CONNECT",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        501,
        Reason.NOT_IMPLEMENTED,
    ),
    ("unknown method", b"FROB / HTTP/1.1\r\n" + H + b"\r\n", 501, Reason.NOT_IMPLEMENTED),
    ("method not a token", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400, Reason.VERB),
    # EOF inside a head.
    ("EOF inside the head", b"GET / HTTP/1.1\r\nHost: exa", 400, Reason.BAD_REQUEST),
]


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [pytest.param(d, s, r, id=i) for i, d, s, r in REFUSED],
)
def test_policy_violation_is_refused_with_its_status_and_reason(
    data: bytes, status: int, reason: Reason
) -> None:
    """Each catalogue input is refused with the listed status hint and http.sys reason."""
    error = _refused(data)
    assert (status, reason) == (error.error_status_hint, error.reason), error.msg


LIMITS_REFUSED = [
    (
        "A11 request line 8 KiB + 1",
        b"GET /" + b"a" * (8192 - 13) + b" HTTP/1.1\r\n" + H + b"\r\n",
        414,
        Reason.URL_LENGTH,
    ),
    (
        "A11 field over the limit",
        b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 8190 + b"\r\n\r\n",
        431,
        Reason.FIELD_LENGTH,
    ),
    (
        "A11 head over 16 KiB",
        b"GET / HTTP/1.1\r\n"
        + H
        + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 4000) for i in range(5))
        + b"\r\n",
        431,
        Reason.REQUEST_LENGTH,
    ),
    (
        "A11 101 fields",
        b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n",
        431,
        Reason.REQUEST_LENGTH,
    ),
    (
        "A11 CL 1 MiB + 1",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1048577\r\n\r\n",
        413,
        Reason.ENTITY_TOO_LARGE,
    ),
    (
        "A11 head never ends",
        b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 20000,
        431,
        Reason.FIELD_LENGTH,
    ),
    ("A11 request line never ends", b"GET /" + b"a" * 10000, 414, Reason.URL_LENGTH),
]


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [pytest.param(d, s, r, id=i) for i, d, s, r in LIMITS_REFUSED],
)
def test_limit_is_enforced_even_when_the_whole_head_arrives_in_one_read(
    data: bytes, status: int, reason: Reason
) -> None:
    """414/431/413 with default limits, counted by us, with the whole input in a single read."""
    error = _refused(data, eof=False)
    assert (status, reason) == (error.error_status_hint, error.reason), error.msg


AT_LIMIT = [
    (
        "request line of exactly 8 KiB",
        b"GET /" + b"a" * (8192 - 14) + b" HTTP/1.1\r\n" + H + b"\r\n",
    ),
    ("field line of exactly 8 KiB", b"GET / HTTP/1.1\r\n" + H + b"X: " + b"v" * 8189 + b"\r\n\r\n"),
    (
        "100 fields",
        b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(99)) + b"\r\n",
    ),
    (
        "Content-Length of exactly 1 MiB",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1048576\r\n\r\n",
    ),
]


@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in AT_LIMIT])
def test_input_exactly_at_a_limit_is_accepted(data: bytes) -> None:
    """Limits are inclusive: exactly the limit passes."""
    outcome = parse(data)
    assert outcome.error is None
    assert len(outcome.requests) == 1


def test_head_of_exactly_max_header_bytes_is_accepted_and_one_more_byte_is_not() -> None:
    """The whole head, request line to the final empty line, may be max_header_bytes long."""
    base = b"GET / HTTP/1.1\r\n" + H + b"X: "
    fill = 16384 - len(base) - 4
    at_limit = base + b"v" * fill + b"\r\n\r\n"
    assert 16384 == len(at_limit)
    assert parse(at_limit, max_field_bytes=16384).error is None
    error = _refused(base + b"v" * (fill + 1) + b"\r\n\r\n", max_field_bytes=16384)
    assert (431, Reason.REQUEST_LENGTH) == (error.error_status_hint, error.reason)


def test_content_length_over_the_limit_is_refused_before_any_body_byte() -> None:
    """A11/A14: the 413 comes from the head alone, so no 100 Continue is sent and no body is read."""
    parser = RequestParser()
    parser.receive_data(
        b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 1048577\r\n\r\n"
    )
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_event()
    assert (413, Reason.ENTITY_TOO_LARGE) == (info.value.error_status_hint, info.value.reason)


def test_chunked_body_passing_the_limit_is_refused_at_the_chunk_that_passes_it() -> None:
    """A11: chunked bodies are counted as they arrive; 413 before the offending chunk's data."""
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
    assert isinstance(parser.next_event(), Request)
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    for _ in range(16):  # exactly 1 MiB
        parser.receive_data(chunk)
        while parser.next_event() is not NEED_DATA:
            pass
    parser.receive_data(b"1\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_event()
    assert (413, Reason.ENTITY_TOO_LARGE) == (info.value.error_status_hint, info.value.reason)


def test_expect_100_continue_is_exposed_and_the_body_waits() -> None:
    """A14: a normal-sized request with Expect: 100-continue yields its head alone, flagged."""
    parser = RequestParser()
    parser.receive_data(
        b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\nContent-Length: 5\r\n\r\n"
    )
    request = parser.next_event()
    assert isinstance(request, Request)
    assert request.expect_continue
    assert NEED_DATA is parser.next_event()
    parser.receive_data(b"hello")
    assert Data(b"hello") == parser.next_event()
    assert isinstance(parser.next_event(), EndOfMessage)


def test_http_1_2_is_served_as_http_1_1() -> None:
    """A13: RFC 9110 §2.5, a higher minor version is handled as 1.1."""
    outcome = parse(b"GET / HTTP/1.2\r\n" + H + b"\r\n")
    assert outcome.error is None
    (request,) = outcome.requests
    assert (b"1.1", True) == (request.http_version, request.keep_alive)


SMUGGLING = [
    (
        "CL.TE",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE.CL",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5c\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n0\r\n\r\n",
    ),
    (
        "TE.CL obfuscated coding",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n"
        + b"5c\r\nGET /admin HTTP/1.1\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE space before colon",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE tab",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 35\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE folded",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 35\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE hidden by obs-fold",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"X: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE hidden by bare LF",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"X: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE twice",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\nTransfer-encoding: identity\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "TE in HTTP/1.0",
        b"POST / HTTP/1.0\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "CL twice",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Content-Length: 0\r\nContent-Length: 37\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "bare LF in chunk framing",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "chunk size with leading zeros",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n0000000000000000002\r\nab\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "chunk extension with bare CR",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n2;x\rGET /admin HTTP/1.1\r\n\r\nab\r\n0\r\n\r\n",
    ),
]


@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in SMUGGLING])
def test_smuggling_attempt_never_yields_the_smuggled_request(data: bytes) -> None:
    """A8: at most one request comes out, it is refused, and `/admin` is never parsed as a request."""
    outcome = parse(data, eof=True)
    assert isinstance(outcome.error, RemoteProtocolError)
    assert len(outcome.requests) <= 1
    assert all(b"admin" not in r.target for r in outcome.requests)


def test_pipelined_requests_come_out_in_order_with_their_bodies() -> None:
    """A9: three pipelined requests for two URL groups, each with its own body and end."""
    data = (
        b"POST /api/a HTTP/1.1\r\nHost: api.example\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /static/x HTTP/1.1\r\nHost: www.example\r\n\r\n"
        b"POST /api/b HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nde\r\n0\r\n\r\n"
    )
    outcome = parse(data)
    assert outcome.error is None
    summary = [
        (type(e).__name__, getattr(e, "host", None), getattr(e, "target", getattr(e, "data", None)))
        for e in outcome.events
    ]
    assert [
        ("Request", b"api.example", b"/api/a"),
        ("Data", None, b"abc"),
        ("EndOfMessage", None, None),
        ("Request", b"www.example", b"/static/x"),
        ("EndOfMessage", None, None),
        ("Request", b"api.example", b"/api/b"),
        ("Data", None, b"de"),
        ("EndOfMessage", None, None),
    ] == summary


@pytest.mark.parametrize(
    "target", [b"/%2e%2e/etc", b"/a/../b", b"//x", b"/%00", b"/%0d%0a", b"/a\\b", b"/a?b=c"]
)
def test_target_is_passed_through_byte_for_byte_for_routing_to_normalise(target: bytes) -> None:
    """A12: the parser refuses raw control bytes only; normalisation belongs to routing."""
    outcome = parse(b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert outcome.error is None
    assert [target] == [r.target for r in outcome.requests]


WORKER_REPLIES = [
    ("CL+TE", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("invalid CL", b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"),
    ("duplicate CL", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
    ("bare-LF status line", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
    ("bare-LF field line", b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"),
    ("TE gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    ("HTTP/2.0 status line", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
]


@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in WORKER_REPLIES])
def test_bad_worker_reply_is_a_502_and_a_fresh_upstream_parser_works(data: bytes) -> None:
    """A15: the client gets 502 for a broken reply; the next request uses a new upstream parser."""
    outcome = feed([data], eof=True, parser=ResponseParser())
    assert isinstance(outcome.error, RemoteProtocolError)
    assert 502 == outcome.error.error_status_hint
    good = feed([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], parser=ResponseParser())
    assert good.error is None
    assert b"ok" == good.body


def test_forwarded_headers_are_the_listeners_and_connection_named_fields_are_stripped() -> None:
    """A15: client-sent X-Forwarded-*/Forwarded never reach the worker; nor does X-Secret."""
    outcome = parse(
        b"GET / HTTP/1.1\r\n" + H + b"X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
        b"Connection: X-Secret\r\nX-Secret: hunter2\r\nX-Kept: 1\r\n\r\n"
    )
    (request,) = outcome.requests
    head = write_request_head(
        request,
        x_forwarded_for=b"192.0.2.7",
        x_forwarded_proto=b"http",
        forwarded=b"for=192.0.2.7;proto=http",
    )
    lowered = head.lower()
    assert b"6.6.6.6" not in lowered
    assert b"evil" not in lowered
    assert b"https" not in lowered
    assert b"x-secret" not in lowered
    assert b"hunter2" not in lowered
    assert b"x-forwarded-for: 192.0.2.7\r\n" in head
    assert b"forwarded: for=192.0.2.7;proto=http\r\n" in head
    assert b"x-kept: 1\r\n" in head
