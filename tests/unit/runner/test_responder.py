"""HTTP/1.1 response framing: Content-Length, chunked, close-delimited, and bodiless responses."""

from __future__ import annotations

import pytest

from orchestrator.runner.connection import WireResponder
from orchestrator.runner.errors import ClientDisconnected


class FakeSocket:
    """Records ``sendall`` calls; can fail like a reset connection."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.fail = fail

    def sendall(self, data: bytes) -> None:
        if self.fail:
            raise ConnectionResetError("reset")
        self.sent.append(data)

    @property
    def wire(self) -> bytes:
        return b"".join(self.sent)


def respond(
    chunks: list[bytes],
    *,
    status: str = "200 OK",
    length: int | None = None,
    close: bool = False,
    method: str = "GET",
    version: str = "HTTP/1.1",
    keep_alive: bool = True,
) -> tuple[bytes, WireResponder, FakeSocket]:
    sock = FakeSocket()
    r = WireResponder(sock, method, version, keep_alive)  # type: ignore[arg-type]
    r.start(status, [("X", "y"), ("Date", "fixed")], length, close)
    for chunk in chunks:
        r.write(chunk)
    r.finish()
    return sock.wire, r, sock


def test_a_known_length_is_sent_with_the_body_in_one_send() -> None:
    """Head and first body bytes share one sendall (one packet for small responses)."""
    wire, r, sock = respond([b"hello"], length=5)
    assert b"HTTP/1.1 200 OK\r\nX: y\r\nDate: fixed\r\nContent-Length: 5\r\n\r\nhello" == wire
    assert 1 == len(sock.sent)
    assert r.keep_alive


def test_a_date_header_is_added_when_the_app_sets_none() -> None:
    """Origin servers with a clock must send Date."""
    sock = FakeSocket()
    r = WireResponder(sock, "GET", "HTTP/1.1", True)  # type: ignore[arg-type]
    r.start("200 OK", [], 0, False)
    r.finish()
    assert b"\r\nDate: " in sock.wire


def test_unknown_length_on_http11_is_chunked() -> None:
    """Each non-empty write is one chunk; finish() sends the last chunk."""
    wire, r, _ = respond([b"ab", b"cde"])
    assert wire.endswith(b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")
    assert r.keep_alive


def test_unknown_length_on_http10_is_close_delimited() -> None:
    """HTTP/1.0 has no chunked coding: the body ends when the connection does."""
    wire, r, _ = respond([b"ab"], version="HTTP/1.0", keep_alive=True)
    assert wire.endswith(b"Connection: close\r\n\r\nab")
    assert b"chunked" not in wire
    assert not r.keep_alive


def test_http10_keep_alive_is_confirmed_when_the_length_is_known() -> None:
    """A 1.0 client asked for keep-alive, and the length makes it possible."""
    wire, r, _ = respond([b"ab"], version="HTTP/1.0", length=2)
    assert b"Connection: keep-alive\r\n" in wire
    assert r.keep_alive


def test_head_responses_carry_the_length_but_no_body() -> None:
    """The length GET would send is stated; the body bytes are dropped."""
    wire, r, _ = respond([b"hello"], method="HEAD", length=5)
    assert wire.endswith(b"Content-Length: 5\r\n\r\n")
    assert r.keep_alive


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_bodiless_statuses_send_no_body_and_no_chunking(status: str) -> None:
    """204 and 304 never have a body, so there is no framing to add."""
    wire, r, _ = respond([b"ignored"], status=status)
    assert wire.endswith(b"Date: fixed\r\n\r\n")
    assert b"chunked" not in wire
    assert r.keep_alive


def test_close_is_announced_and_ends_keep_alive() -> None:
    """When the bridge asks for a close (an error, or the app said so) the client is told."""
    wire, r, _ = respond([b"x"], length=1, close=True)
    assert b"Connection: close\r\n" in wire
    assert not r.keep_alive


def test_a_client_that_did_not_want_keep_alive_is_told_close() -> None:
    """``Connection: close`` in the request is echoed."""
    wire, r, _ = respond([b"x"], length=1, keep_alive=False)
    assert b"Connection: close\r\n" in wire
    assert not r.keep_alive


def test_more_bytes_than_content_length_are_truncated_and_the_connection_closed() -> None:
    """Extra bytes would be read as the next response by the client."""
    wire, r, _ = respond([b"abc", b"def"], length=4)
    assert wire.endswith(b"\r\n\r\nabcd")
    assert not r.keep_alive


def test_fewer_bytes_than_content_length_close_the_connection() -> None:
    """The client waits for the missing bytes; only a close tells it they are not coming."""
    _, r, _ = respond([b"ab"], length=4)
    assert not r.keep_alive


def test_the_head_can_be_replaced_until_the_first_byte_is_sent() -> None:
    """The bridge turns a late failure into a 500 as long as nothing went out."""
    sock = FakeSocket()
    r = WireResponder(sock, "GET", "HTTP/1.1", True)  # type: ignore[arg-type]
    r.start("200 OK", [], None, False)
    r.start("500 Internal Server Error", [], 4, True)
    r.write(b"oops")
    r.finish()
    assert sock.wire.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    with pytest.raises(RuntimeError):
        r.start("200 OK", [], None, False)


def test_send_failures_become_client_disconnected() -> None:
    """A reset or timeout while sending is the client's departure, not an app error."""
    r = WireResponder(FakeSocket(fail=True), "GET", "HTTP/1.1", True)  # type: ignore[arg-type]
    r.start("200 OK", [], 1, False)
    with pytest.raises(ClientDisconnected):
        r.write(b"x")
    assert not r.keep_alive


def test_100_continue_is_sent_only_before_the_response_starts() -> None:
    """Once the head is out, a 100 would corrupt the stream."""
    sock = FakeSocket()
    r = WireResponder(sock, "POST", "HTTP/1.1", True)  # type: ignore[arg-type]
    r.send_continue()
    assert [b"HTTP/1.1 100 Continue\r\n\r\n"] == sock.sent
    r.start("200 OK", [], 1, False)
    r.write(b"x")
    sent = len(sock.sent)
    r.send_continue()
    assert sent == len(sock.sent)
