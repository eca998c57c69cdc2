"""The WSGI bridge against a recording responder: PEP 3333 rules, errors, close()."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.runner.errors import ClientDisconnected, HttpError
from orchestrator.runner.http11 import EmptyBody
from orchestrator.runner.wsgi import Peer, Request, WsgiBridge


class RecordingResponder:
    """A ``Responder`` that records calls; ``fail_writes`` simulates a client that went away."""

    def __init__(self, *, fail_writes: bool = False) -> None:
        self.headers_sent = False
        self.starts: list[tuple[str, list[tuple[str, str]], int | None, bool]] = []
        self.body = b""
        self.finished = False
        self.fail_writes = fail_writes

    def start(
        self, status: str, headers: list[tuple[str, str]], content_length: int | None, close: bool
    ) -> None:
        assert not self.headers_sent
        self.starts.append((status, headers, content_length, close))

    def write(self, data: bytes) -> None:
        if self.fail_writes:
            raise ClientDisconnected("gone")
        self.headers_sent = True
        self.body += data

    def finish(self) -> None:
        self.headers_sent = True
        self.finished = True


def serve(app: Any, responder: RecordingResponder | None = None) -> tuple[bool, RecordingResponder]:
    responder = responder or RecordingResponder()
    request = Request("GET", "/", "HTTP/1.1", [("Host", "h")], EmptyBody(), Peer(is_proxy=True))
    ok = WsgiBridge(app).handle(request, responder)
    return ok, responder


class ClosingIterable:
    """An app iterable that records whether close() was called."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("iteration failed")
            yield chunk

    def close(self) -> None:
        self.closed = True


def test_a_list_response_is_sent_with_a_computed_length() -> None:
    """The whole body is known, so a length is sent instead of chunking."""
    ok, r = serve(lambda e, sr: (sr("200 OK", [("X-A", "1")]), [b"ab", b"cd"])[1])
    assert ok
    assert [("200 OK", [("X-A", "1")], 4, False)] == r.starts
    assert (b"abcd", True) == (r.body, r.finished)


def test_a_generator_response_has_no_length_and_headers_wait_for_the_first_body_bytes() -> None:
    """Headers go out with the first non-empty chunk (PEP 3333), here after an empty one."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        yield b"x"

    ok, r = serve(app)
    assert ok
    assert [("200 OK", [], None, False)] == r.starts
    assert b"x" == r.body


def test_the_apps_content_length_and_connection_close_become_framing_arguments() -> None:
    """Framing headers are taken out of the list and passed to the transport."""
    headers = [("Content-Length", "1"), ("Connection", "close"), ("X", "y")]
    ok, r = serve(lambda e, sr: (sr("201 Created", headers), [b"z"])[1])
    assert not ok  # the app asked for the connection to close
    assert [("201 Created", [("X", "y")], 1, True)] == r.starts


def test_an_exception_before_start_response_is_a_500_with_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The traceback is logged and the client gets a plain 500."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR, logger="orchestrator.runner"):
        ok, r = serve(app)
    assert not ok
    assert [
        ("500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8")], 22, True)
    ] == r.starts
    assert b"Internal Server Error\n" == r.body
    assert "KeyError: 'boom'" in caplog.text


def test_an_exception_while_iterating_after_headers_cuts_the_response_and_closes_it() -> None:
    """Nothing more can be said once headers went out; close() is still called."""
    body = ClosingIterable([b"first", b"second"], fail_at=1)

    def app(environ: dict[str, Any], start_response: Any) -> ClosingIterable:
        start_response("200 OK", [])
        return body

    ok, r = serve(app)
    assert not ok
    assert [("200 OK", [], None, False)] == r.starts
    assert (b"first", False) == (r.body, r.finished)
    assert body.closed


def test_close_is_called_after_a_successful_response() -> None:
    """PEP 3333: the server calls close() on the iterable whatever happens."""
    body = ClosingIterable([b"a"])
    ok, _ = serve(lambda e, sr: (sr("200 OK", []), body)[1])
    assert ok
    assert body.closed


def test_close_is_called_when_the_client_goes_away() -> None:
    """A failed write ends the response quietly (no 500) and still closes the iterable."""
    body = ClosingIterable([b"a", b"b"])
    ok, r = serve(lambda e, sr: (sr("200 OK", []), body)[1], RecordingResponder(fail_writes=True))
    assert not ok
    assert body.closed
    assert 1 == len(r.starts)


def test_exc_info_replaces_the_status_before_headers_are_sent() -> None:
    """An error handler may call start_response again with exc_info until the head is out."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise ValueError("late")
        except ValueError:
            start_response("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
        return [b"busy"]

    ok, r = serve(app)
    assert ok
    assert ("503 Service Unavailable", [("Retry-After", "1")], 4, False) == r.starts[-1]


def test_start_response_twice_without_exc_info_is_an_app_error() -> None:
    """The second call raises inside the app, which becomes a 500."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]

    ok, r = serve(app)
    assert not ok
    assert "500 Internal Server Error" == r.starts[-1][0]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200", []),
        ("OK", []),
        ("200 OK\r\nX: y", []),
        ("200 OK", [("X", "a\r\nSet-Cookie: evil")]),
        ("200 OK", [("Bad Name", "v")]),
        ("200 OK", [("Content-Length", "abc")]),
        ("200 OK", [("Content-Length", "1"), ("Content-Length", "1")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("Upgrade", "h2c")]),
        ("200 OK", [("X", 1)]),
        (b"200 OK", []),
        ("200 OK", (("X", "y"),)),
    ],
)
def test_malformed_status_or_headers_from_the_app_become_a_500(status: Any, headers: Any) -> None:
    """Response splitting, hop-by-hop headers and wrong types never reach the wire."""
    ok, r = serve(lambda e, sr: (sr(status, headers), [b"x"])[1])
    assert not ok
    assert ["500 Internal Server Error"] == [s[0] for s in r.starts]


def test_a_body_that_is_not_bytes_is_an_app_error() -> None:
    """str chunks are a common bug; they must not be encoded silently."""
    ok, r = serve(lambda e, sr: (sr("200 OK", []), iter(["text"]))[1])
    assert not ok
    assert "500 Internal Server Error" == r.starts[-1][0]


def test_returning_without_start_response_is_an_app_error() -> None:
    """There is no status to send."""
    ok, r = serve(lambda e, sr: [])
    assert not ok
    assert "500 Internal Server Error" == r.starts[-1][0]


def test_the_legacy_write_callable_sends_body_bytes() -> None:
    """``write()`` from start_response sends at once, before the returned iterable."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"early ")
        return [b"late"]

    ok, r = serve(app)
    assert ok
    assert b"early late" == r.body


def test_a_bad_request_body_raised_through_the_app_is_answered_with_its_status() -> None:
    """A malformed chunk found while the app reads wsgi.input is the client's 400, not a 500."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise HttpError(400, "invalid chunk size line")

    ok, r = serve(app)
    assert not ok
    assert "400 Bad Request" == r.starts[-1][0]


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified", "101 Switching"])
def test_no_length_is_computed_for_statuses_without_a_body(status: str) -> None:
    """204 must not carry Content-Length; 304's would describe another response."""
    ok, r = serve(lambda e, sr: (sr(status, []), [])[1])
    assert ok
    assert None is r.starts[0][2]
