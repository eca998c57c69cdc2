"""Test catalogue section A against a running listener: parsing, smuggling, limits, forwarding.

Each malformed request must get its status (and the listener closes the connection), must never
reach a worker, and the listener's log must carry the http.sys-style reason.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration.listener.conftest import Site, exchange, statuses
from tests.support.controller import http, wait_until

pytestmark = pytest.mark.integration

H = b"Host: 127.0.0.1\r\n"
SMUGGLED = b"GET /admin/smuggled HTTP/1.1\r\n"


def _errors(site: Site) -> list[dict[str, object]]:
    return site.ctl.events("listener_request_error")


def _assert_reason_logged(site: Site, since: int, status: int, reason: str) -> None:
    """A ``listener_request_error`` logged after the first ``since`` ones names this status and
    reason (the listener flushes its log about once a second)."""

    def logged() -> bool:
        return any(
            e.get("status") == status and e.get("reason") == reason for e in _errors(site)[since:]
        )

    try:
        wait_until(logged, 5, f"{status} {reason} in the log")
    except AssertionError:
        raise AssertionError(
            f"expected {status} {reason} in the log; logged since: {_errors(site)[since:]}"
        ) from None


REJECTS = [
    # (name, request, status) — catalogue rows 1-7, 10, 13
    (
        "cl-te",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-cl-case",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"transfer-encoding: chunked\r\nCONTENT-LENGTH: 5\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "dup-cl-differing",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        400,
    ),
    (
        "dup-cl-identical",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
    ("cl-list", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello", 400),
    ("cl-plus", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl-minus", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("cl-hex", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", 400),
    ("cl-space", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 5 5\r\n\r\nhello", 400),
    ("cl-empty", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", 400),
    ("cl-underscore", b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 1_0\r\n\r\n", 400),
    (
        "cl-overflow",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 18446744073709551616\r\n\r\n",
        400,
    ),
    (
        "te-xchunked",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    (
        "te-chunked-identity",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        501,
    ),
    (
        "te-space-colon",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-vtab",
        b"POST /echo/a HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-twice",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-http10",
        b"POST /echo/a HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("obs-fold", b"GET /echo/a HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400),
    ("bare-cr", b"GET /echo/a HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n", 400),
    ("nul-in-value", b"GET /echo/a HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400),
    ("bad-field-name", b"GET /echo/a HTTP/1.1\r\n" + H + b"X(A): b\r\n\r\n", 400),
    ("bare-lf-line", b"GET /echo/a HTTP/1.1\n" + H + b"\r\n", 400),
    ("bare-lf-header", b"GET /echo/a HTTP/1.1\r\nHost: 127.0.0.1\n\r\n", 400),
    (
        "chunk-lf",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-nonhex",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-0x",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-17-digits",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-trailing-space",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-missing-crlf",
        b"POST /echo/a HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        400,
    ),
    ("no-host", b"GET /echo/a HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET /echo/a HTTP/1.1\r\n" + H + H + b"\r\n", 400),
    ("bad-host", b"GET /echo/a HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("http2-line", b"GET /echo/a HTTP/2.0\r\n" + H + b"\r\n", 505),
]


# The reason each row is logged with, in http.sys's spelling (notes/http-front-end.md section 2.1).
REASONS = {
    "cl-te": "BadRequest",
    "te-cl-case": "BadRequest",
    "dup-cl-differing": "BadRequest",
    "dup-cl-identical": "BadRequest",
    "cl-list": "BadRequest",
    "cl-plus": "Number",
    "cl-minus": "Number",
    "cl-hex": "Number",
    "cl-space": "Number",
    "cl-empty": "Number",
    "cl-underscore": "Number",
    "cl-overflow": "Number",
    "te-xchunked": "N/I",
    "te-chunked-identity": "N/I",
    "te-space-colon": "Header",
    "te-vtab": "Header",
    "te-twice": "BadRequest",
    "te-http10": "BadRequest",
    "obs-fold": "Header",
    "bare-cr": "Invalid_CR/LF",
    "nul-in-value": "Header",
    "bad-field-name": "Header",
    "bare-lf-line": "Invalid_CR/LF",
    "bare-lf-header": "Invalid_CR/LF",
    "chunk-lf": "Invalid_CR/LF",
    "chunk-nonhex": "Number",
    "chunk-0x": "Number",
    "chunk-17-digits": "Number",
    "chunk-trailing-space": "Number",
    "chunk-missing-crlf": "BadRequest",
    "no-host": "Hostname",
    "two-hosts": "Hostname",
    "bad-host": "Hostname",
    "http2-preface": "Version_N/S",
    "http2-line": "Version_N/S",
}


def test_every_rejected_row_names_its_reason() -> None:
    """The table above and REJECTS list the same rows."""
    assert [r[0] for r in REJECTS] == list(REASONS)


@pytest.mark.parametrize(("name", "raw", "status"), REJECTS, ids=[r[0] for r in REJECTS])
def test_malformed_requests_are_refused_closed_and_never_reach_a_worker(
    site: Site, name: str, raw: bytes, status: int
) -> None:
    """Status, a closed connection, the http.sys reason in the log, and nothing in the worker's
    log."""
    before = site.seen()
    logged = len(_errors(site))
    got, closed = exchange(site.port, raw, half_close=True)
    assert [status] == statuses(got), got[:200]
    assert closed
    _assert_reason_logged(site, logged, status, REASONS[name])
    assert before == site.seen()[: len(before)]
    assert not any(p.startswith("/echo/a") for p in site.seen()[len(before) :])


def test_the_reason_is_logged_the_http_sys_way(site: Site) -> None:
    """A CL+TE request is logged with status 400, reason BadRequest and the client's address."""
    logged = len(_errors(site))
    exchange(site.port, REJECTS[0][1], half_close=True)
    _assert_reason_logged(site, logged, 400, "BadRequest")
    mine = [e for e in _errors(site)[logged:] if e.get("reason") == "BadRequest"]
    assert "127.0.0.1" == mine[0].get("client")


SMUGGLING = [
    (
        "cl-te",
        b"POST /echo/x HTTP/1.1\r\n"
        + H
        + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/smuggled HTTP/1.1\r\n"
        + H
        + b"\r\n",
    ),
    (
        "te-cl",
        b"POST /echo/x HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"
        + SMUGGLED
        + H
        + b"\r\n",
    ),
    (
        "te-obfuscated",
        b"POST /echo/x HTTP/1.1\r\n"
        + H
        + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n5c\r\n"
        + SMUGGLED
        + H
        + b"\r\n0\r\n\r\n",
    ),
    (
        "te-folded",
        b"POST /echo/x HTTP/1.1\r\n"
        + H
        + b"Content-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"
        + SMUGGLED
        + H
        + b"\r\n",
    ),
]


@pytest.mark.parametrize(("name", "raw"), SMUGGLING, ids=[s[0] for s in SMUGGLING])
def test_smuggling_attempts_get_one_response_and_admin_sees_nothing(
    site: Site, name: str, raw: bytes
) -> None:
    """Exactly one response on the wire; /admin/smuggled in no worker's log."""
    got, _ = exchange(site.port, raw, half_close=True)
    assert 1 == len(statuses(got)), got[:300]
    time.sleep(0.2)
    assert not any("smuggled" in p for p in site.seen("admin"))
    assert not any("smuggled" in p for p in site.seen("echo"))


def test_pipelined_requests_are_answered_in_order_by_the_right_queue(site: Site) -> None:
    """Three pipelined requests for two URL groups: three responses, in order."""
    raw = (
        b"GET /echo/one HTTP/1.1\r\n"
        + H
        + b"\r\n"
        + b"GET /admin/two HTTP/1.1\r\n"
        + H
        + b"\r\n"
        + b"GET /echo/three HTTP/1.1\r\n"
        + H
        + b"Connection: close\r\n\r\n"
    )
    got, closed = exchange(site.port, raw, timeout=5)
    assert [200, 200, 200] == statuses(got)
    paths = [p.decode() for p in re.findall(rb'"path": "([^"]*)"', got)]
    assert ["/echo/one", "/admin/two", "/echo/three"] == paths
    assert closed


@pytest.mark.parametrize(
    ("name", "raw", "status"),
    [
        ("line-over-8KiB", b"GET /echo/" + b"a" * 8192 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
        (
            "field-over-limit",
            b"GET /echo/a HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 16384 + b"\r\n\r\n",
            431,
        ),
        (
            "head-over-16KiB",
            b"GET /echo/a HTTP/1.1\r\n"
            + H
            + b"".join(b"X-%d: %s\r\n" % (i, b"c" * 1000) for i in range(20))
            + b"\r\n",
            431,
        ),
        (
            "too-many-fields",
            b"GET /echo/a HTTP/1.1\r\n"
            + H
            + b"".join(b"X-%d: v\r\n" % i for i in range(101))
            + b"\r\n",
            431,
        ),
        (
            "cl-over-1MiB",
            b"POST /echo/a HTTP/1.1\r\n" + H + b"Content-Length: 1048577\r\n\r\n",
            413,
        ),
    ],
)
def test_limits_answer_414_431_413_even_in_one_send(
    site: Site, name: str, raw: bytes, status: int
) -> None:
    """The head arrives in a single send; the body of a 413 is never read."""
    got, closed = exchange(site.port, raw)
    assert [status] == statuses(got)
    assert closed


def test_a_chunked_body_passing_the_limit_gets_413_and_a_close(site: Site) -> None:
    """1 MiB + a few bytes in chunks: 413, closed."""
    chunk = b"%x\r\n" % 65536 + b"z" * 65536 + b"\r\n"
    raw = [b"POST /echo/big HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"] + [
        chunk
    ] * 17
    got, closed = exchange(site.port, raw, timeout=5)
    assert 413 in statuses(got)
    assert closed


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/echo/%2e%2e/admin/x", "/admin/x"),  # decoded, then resolved: routed to admin
        (b"/echo/a/../b", "/echo/b"),
        (b"/echo//b", "/echo/b"),
    ],
)
def test_path_tricks_are_routed_on_the_normalised_path(
    site: Site, target: bytes, expected: str
) -> None:
    """The worker sees the normalised path it was routed by."""
    got, _ = exchange(
        site.port, b"GET " + target + b" HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    )
    assert [200] == statuses(got)
    assert expected == json.loads(got.split(b"\r\n\r\n", 1)[1])["path"]


@pytest.mark.parametrize(
    "target", [b"/echo/%00x", b"/echo/%0d%0aX-Injected:%201", b"/echo/a%2fb", b"/echo\\..\\admin"]
)
def test_ambiguous_paths_are_rejected(site: Site, target: bytes) -> None:
    """Encoded NUL, CR/LF, '/' and a backslash: 400."""
    got, closed = exchange(site.port, b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert [400] == statuses(got)
    assert closed


def test_http_1_2_is_served_as_1_1(site: Site) -> None:
    """RFC 9110 §2.5."""
    got, _ = exchange(site.port, b"GET /echo/v HTTP/1.2\r\n" + H + b"Connection: close\r\n\r\n")
    assert [200] == statuses(got)


def test_expect_100_continue_oversized_gets_413_without_100(site: Site) -> None:
    """Over the body limit: 413 and no 100 Continue."""
    got, _ = exchange(
        site.port,
        b"POST /echo/e HTTP/1.1\r\n"
        + H
        + b"Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n",
    )
    assert [413] == statuses(got)
    assert b"100 Continue" not in got


def test_expect_100_continue_normal_gets_100_then_the_answer(site: Site) -> None:
    """100 Continue first, the final response after the body."""
    import socket

    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo/e HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert [200] == statuses(first + rest)[-1:]
    assert 5 == json.loads((first + rest).rsplit(b"\r\n\r\n", 1)[1])["body_length"]


@pytest.mark.parametrize("path", [b"/bad/clte", b"/bad/cl", b"/bad/lf"])
def test_a_worker_with_broken_framing_gets_the_client_a_502_and_the_connection_goes_on(
    site: Site, path: bytes
) -> None:
    """502 for the bad answer; the next request on the same client connection succeeds."""
    raw = (
        b"GET "
        + path
        + b" HTTP/1.1\r\n"
        + H
        + b"\r\n"
        + b"GET /bad/fine HTTP/1.1\r\n"
        + H
        + b"Connection: close\r\n\r\n"
    )
    got, _ = exchange(site.port, raw, timeout=5)
    assert [502, 200] == statuses(got)


def test_forwarding_headers_are_the_listeners_own_and_connection_nominated_ones_go(
    site: Site,
) -> None:
    """Client X-Forwarded-For/Forwarded are replaced; Connection: X-Secret removes X-Secret."""
    answer = http(
        site.port,
        "/echo/h",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "Forwarded": "for=6.6.6.6",
            "X-Secret": "s3cret",
            "Connection": "X-Secret",
        },
    )
    headers = answer.json()["headers"]
    assert isinstance(headers, dict)
    assert "127.0.0.1" == headers["x-forwarded-for"]
    assert "6.6.6.6" not in headers.get("forwarded", "")
    assert "x-secret" not in headers
