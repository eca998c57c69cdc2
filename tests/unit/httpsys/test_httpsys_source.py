"""The runner's http.sys source on Linux, against a scripted queue port (no DLL).

The port hands out ``ReceivedRequest`` values the way ``HttpReceiveHttpRequest`` would (the first
part of the body copied in, ``more_body`` for the rest), serves entity-body reads from a script and
records every response. Threads are real; every wait is bounded.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from orchestrator.httpapi.worker import ReceivedRequest
from orchestrator.runner.errors import BootError, ClientDisconnected
from orchestrator.runner.httpsys_source import (
    BODY_CHUNK_BYTES,
    HttpSysSource,
    QueueBody,
    QueueRequest,
    attach_queue,
    merge_headers,
)
from orchestrator.runner.wsgi import WsgiBridge

TIMEOUT_S = 5.0


def _win_error(code: int) -> OSError:
    exc = OSError(f"win32 error {code}")
    exc.winerror = code  # type: ignore[attr-defined]
    return exc


@dataclass
class Sent:
    request_id: int
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    disconnect: bool


@dataclass
class ScriptedPort:
    """A request queue in memory: ``push`` requests, read what was sent."""

    incoming: queue.Queue[ReceivedRequest | OSError] = field(default_factory=queue.Queue)
    bodies: dict[int, list[bytes]] = field(default_factory=dict)
    body_reads: list[tuple[int, int]] = field(default_factory=list)
    sent: queue.Queue[Sent] = field(default_factory=queue.Queue)
    respond_error: OSError | None = None
    shut_down: bool = False
    closed: bool = False

    def push(
        self,
        request_id: int,
        path: str = "/app/x",
        *,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        rest: Iterable[bytes] = (),
    ) -> None:
        chunks = list(rest)
        self.bodies[request_id] = chunks
        self.incoming.put(
            ReceivedRequest(
                request_id=request_id,
                connection_id=1,
                url_context=77,
                method=method,
                version=(1, 1),
                raw_url=path,
                full_url=f"http://127.0.0.1:8080{path}",
                host="127.0.0.1:8080",
                path=path.split("?")[0],
                query="",
                headers=(("Host", "127.0.0.1:8080"), *headers),
                remote=("10.1.2.3", 50000),
                body=body,
                more_body=bool(chunks),
            )
        )

    def receive(self) -> QueueRequest:
        """The next pushed request; 995 once closed (as a closed handle ends a receive)."""
        for _ in range(int(TIMEOUT_S * 4 / 0.05)):
            if self.closed:
                raise _win_error(995)
            try:
                item = self.incoming.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, OSError):
                raise item
            return item
        raise _win_error(995)

    def read_body(self, request_id: int, max_bytes: int) -> bytes:
        self.body_reads.append((request_id, max_bytes))
        chunks = self.bodies[request_id]
        if not chunks:
            return b""
        data, rest = chunks[0][:max_bytes], chunks[0][max_bytes:]
        if rest:
            chunks[0] = rest
        else:
            chunks.pop(0)
        return data

    def respond(
        self,
        request_id: int,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        disconnect: bool,
    ) -> None:
        if self.respond_error is not None:
            error, self.respond_error = self.respond_error, None
            raise error
        self.sent.put(Sent(request_id, status, reason, list(headers), body, disconnect))

    def shutdown(self) -> None:
        self.shut_down = True

    def close(self) -> None:
        self.closed = True

    def next_sent(self) -> Sent:
        return self.sent.get(timeout=TIMEOUT_S)


def _app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
    path = str(environ["PATH_INFO"])
    if path == "/boom":
        raise RuntimeError("on purpose")
    if path == "/echo":
        stream = environ["wsgi.input"]
        pieces = []
        while piece := stream.read(3):  # type: ignore[attr-defined]
            pieces.append(piece)
        body = b"|".join(pieces)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/cookies":
        start_response("200 OK", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [b""]
    start_response(
        "201 Created",
        [("Content-Type", "text/plain"), ("Vary", "Accept"), ("Vary", "Cookie")],
    )
    return [
        f"{environ['REQUEST_METHOD']} {path} {environ['REMOTE_ADDR']} "
        f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}".encode()
    ]


@pytest.fixture
def serving() -> Iterable[tuple[ScriptedPort, HttpSysSource, list[str]]]:
    port = ScriptedPort()
    fatal: list[str] = []
    source = HttpSysSource(
        port, WsgiBridge(_app, errors=io.StringIO()), threads=2, on_fatal=fatal.append
    )
    source.start()
    try:
        yield port, source, fatal
    finally:
        source.stop_accepting()
        source.wait_idle(TIMEOUT_S)
        source.close()


def test_a_request_is_answered_with_one_complete_response(
    serving: tuple[ScriptedPort, HttpSysSource, list[str]],
) -> None:
    """Status, reason, folded repeats, a Content-Length, the body; the environ saw the real client."""
    port, _, _ = serving
    port.push(1)
    sent = port.next_sent()
    assert (1, 201, "Created", False) == (
        sent.request_id,
        sent.status,
        sent.reason,
        sent.disconnect,
    )
    assert [
        ("Content-Type", "text/plain"),
        ("Vary", "Accept, Cookie"),
        ("Content-Length", str(len(sent.body))),
    ] == sent.headers
    assert b"GET /app/x 10.1.2.3 127.0.0.1:8080" == sent.body


def test_the_body_is_streamed_from_http_sys_only_as_the_app_reads_it(
    serving: tuple[ScriptedPort, HttpSysSource, list[str]],
) -> None:
    """The part that came with the request first, then entity-body reads of a whole chunk each
    (however small the app's reads), only when the app reads."""
    port, _, _ = serving
    port.push(2, "/echo", method="POST", body=b"abcd", rest=[b"efg", b"hi"])
    sent = port.next_sent()
    assert b"abc|def|ghi" == sent.body
    assert [(2, BODY_CHUNK_BYTES)] * 3 == port.body_reads  # efg, hi, then the end (b"")
    port.push(3, "/app/x", method="POST", body=b"ab", rest=[b"unread"])
    assert 201 == port.next_sent().status
    assert all(request == 2 for request, _ in port.body_reads)  # never read: never fetched


def test_small_reads_of_a_large_body_cross_into_http_sys_once_per_chunk() -> None:
    """50 KB read 7 bytes at a time: every byte in order, and 3 entity-body calls (two chunks and
    the end), not one per read."""
    port = ScriptedPort()
    payload = bytes(range(256)) * 200 + b"end"  # 51,203 bytes
    port.bodies[9] = [payload[100 : 100 + 40_000], payload[40_100:]]
    body = QueueBody(port, 9, payload[:100], more=True)
    pieces = []
    while piece := body.read(7):
        pieces.append(piece)
    assert payload == b"".join(pieces)
    assert all(len(p) == 7 for p in pieces[:-1])
    assert [(9, BODY_CHUNK_BYTES)] * 3 == port.body_reads
    assert body.complete


def test_a_body_read_that_fails_is_a_client_disconnect_and_the_end() -> None:
    """A failed entity-body read (the client went away) raises ClientDisconnected, then reads b""."""

    class Failing(ScriptedPort):
        def read_body(self, request_id: int, max_bytes: int) -> bytes:
            raise _win_error(1229)

    body = QueueBody(Failing(), 5, b"ab", more=True)
    assert b"ab" == body.read(2)
    with pytest.raises(ClientDisconnected):
        body.read(2)
    assert b"" == body.read(2)
    assert body.complete


def test_an_app_exception_is_a_500_and_the_worker_keeps_serving(
    serving: tuple[ScriptedPort, HttpSysSource, list[str]],
) -> None:
    """The bridge answers 500 and closes; the next request is served by the same source."""
    port, source, fatal = serving
    port.push(3, "/boom")
    failed = port.next_sent()
    assert (500, True) == (failed.status, failed.disconnect)
    port.push(4)
    assert 201 == port.next_sent().status
    assert [] == fatal
    assert source.served >= 2


def test_head_sends_the_length_but_no_body(
    serving: tuple[ScriptedPort, HttpSysSource, list[str]],
) -> None:
    """HEAD: Content-Length of what GET would send, empty entity."""
    port, _, _ = serving
    port.push(5, method="HEAD")
    sent = port.next_sent()
    assert b"" == sent.body
    assert ("Content-Length", str(len(b"HEAD /app/x 10.1.2.3 127.0.0.1:8080"))) in sent.headers


def test_each_set_cookie_header_is_sent_as_given_never_folded(
    serving: tuple[ScriptedPort, HttpSysSource, list[str]],
) -> None:
    """Cookies cannot be comma-folded (an Expires date has a comma): each goes to the port as its
    own field, in order; other repeats are folded."""
    port, _, _ = serving
    port.push(6, "/cookies")
    sent = port.next_sent()
    assert 200 == sent.status
    assert [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")] == [
        h for h in sent.headers if h[0].lower() == "set-cookie"
    ]
    assert [
        ("Vary", "Accept, Cookie"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("WWW-Authenticate", "Basic"),
        ("WWW-Authenticate", "Negotiate"),
    ] == merge_headers(
        [
            ("Vary", "Accept"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("WWW-Authenticate", "Basic"),
            ("Vary", "Cookie"),
            ("WWW-Authenticate", "Negotiate"),
        ]
    )


def test_a_client_gone_while_sending_does_not_stop_the_source(
    serving: tuple[ScriptedPort, HttpSysSource, list[str]],
) -> None:
    """1236 on send is a disconnected client: logged, and the next request is served."""
    port, _, fatal = serving
    port.respond_error = _win_error(1236)
    port.push(7)
    port.push(8)
    assert 8 == port.next_sent().request_id
    assert [] == fatal


def test_losing_the_queue_while_serving_is_fatal() -> None:
    """995/6 on receive while not stopping: the process must end so the controller replaces it."""
    port = ScriptedPort()
    fatal: list[str] = []
    source = HttpSysSource(
        port, WsgiBridge(_app, errors=io.StringIO()), threads=1, on_fatal=fatal.append
    )
    source.start()
    port.incoming.put(_win_error(6))
    for _ in range(100):
        if fatal:
            break
        threading.Event().wait(0.05)
    assert fatal
    source.close()


def test_stopping_waits_for_requests_in_flight_then_shuts_down_and_closes() -> None:
    """wait_idle is false while a request runs, true after; close shuts down and closes the queue."""
    release = threading.Event()
    entered = threading.Event()

    def slow(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        entered.set()
        release.wait(TIMEOUT_S)
        start_response("200 OK", [])
        return [b"done"]

    port = ScriptedPort()
    source = HttpSysSource(port, WsgiBridge(slow, errors=io.StringIO()), threads=2)
    source.start()
    port.push(9)
    assert entered.wait(TIMEOUT_S)
    source.stop_accepting()
    assert not source.wait_idle(0.2)
    release.set()
    assert source.wait_idle(TIMEOUT_S)
    assert b"done" == port.next_sent().body
    source.close()
    assert (True, True) == (port.shut_down, port.closed)


def test_attach_queue_needs_windows_and_takes_the_handle_out_of_the_environment() -> None:
    """On Linux it is a boot error (exit 3); the handle variable is removed either way."""
    env = {"ORCHESTRATOR_QUEUE": "api", "ORCHESTRATOR_QUEUE_HANDLE": "0x1c"}
    with pytest.raises(BootError, match="Windows"):
        attach_queue(env)
    assert {"ORCHESTRATOR_QUEUE": "api"} == env
    assert "ORCHESTRATOR_QUEUE_HANDLE" not in os.environ or os.name == "nt"
