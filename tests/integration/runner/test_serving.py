"""The runner as a real process on a Unix socket (``--bind``): requests, bodies, keep-alive, errors."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runner.harness import (
    APPS,
    RunnerProcess,
    Spawner,
    connection,
    get,
    raw_exchange,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def sock_path(workdir: Path) -> str:
    return str(workdir / "w.sock")


@pytest.fixture
def runner(spawner: Spawner, sock_path: str) -> RunnerProcess:
    """One runner serving tests/integration/runner/apps/runnerapp.py on a Unix socket."""
    return spawner.start(
        "--bind", f"unix:{sock_path}", "--app-dir", APPS, "--threads", "4", "runnerapp:app"
    )


def test_get_returns_the_apps_response(runner: RunnerProcess, sock_path: str) -> None:
    """A plain GET is answered with the app's status, headers and body."""
    status, body, response = get(sock_path, "/hello")
    assert (200, b"hello\n") == (status, body)
    assert "6" == response.getheader("Content-Length")
    assert response.getheader("Date")


def test_post_with_content_length_is_echoed(runner: RunnerProcess, sock_path: str) -> None:
    """A Content-Length body reaches wsgi.input intact."""
    payload = os.urandom(200_000)
    with connection(sock_path) as conn:
        conn.request("POST", "/echo", body=payload)
        response = conn.getresponse()
        assert (200, payload) == (response.status, response.read())


def test_post_with_a_chunked_body_is_echoed(runner: RunnerProcess, sock_path: str) -> None:
    """A chunked body is decoded for the app."""
    parts = [b"first,", b"", b"second," * 1000, b"third"]
    with connection(sock_path) as conn:
        conn.request("POST", "/echo", body=iter(parts), encode_chunked=True)
        response = conn.getresponse()
        assert (200, b"".join(parts)) == (response.status, response.read())


def _generate(total: int, seed: int) -> Iterator[bytes]:
    block = random.Random(seed).randbytes(1024 * 1024)
    for offset in range(0, total, len(block)):
        yield block[: min(len(block), total - offset)]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_body_is_streamed_not_buffered(
    runner: RunnerProcess, sock_path: str, chunked: bool
) -> None:
    """256 MiB through a hashing app: right digest, and the worker's peak RSS stays far below it."""
    total = 256 * 1024 * 1024
    expected = hashlib.sha256()
    for block in _generate(total, 3):
        expected.update(block)
    headers = {} if chunked else {"Content-Length": str(total)}
    with connection(sock_path, timeout=60) as conn:
        conn.request(
            "POST", "/hash", body=_generate(total, 3), headers=headers, encode_chunked=chunked
        )
        response = conn.getresponse()
        info = json.loads(response.read())
    assert 200 == response.status
    assert (expected.hexdigest(), total) == (info["sha256"], info["bytes"])
    assert info["maxrss_kib"] < 96 * 1024, info


def test_keep_alive_serves_several_requests_on_one_connection(
    runner: RunnerProcess, sock_path: str
) -> None:
    """Ten requests, GET and POST mixed, reuse one connection (the front end pools them)."""
    with connection(sock_path) as conn:
        conn.request("GET", "/pid")
        first = conn.getresponse()
        pid = first.read()
        sock = conn.sock
        for i in range(9):
            if i % 2:
                conn.request("POST", "/echo", body=f"body {i}".encode())
                expected = f"body {i}".encode()
            else:
                conn.request("GET", "/pid")
                expected = pid
            response = conn.getresponse()
            assert (200, expected) == (response.status, response.read())
        assert sock is conn.sock  # http.client did not have to reconnect


def test_pipelined_requests_are_answered_in_order(runner: RunnerProcess, sock_path: str) -> None:
    """Three requests in one write, the last with Connection: close; three responses in order."""
    wire = raw_exchange(
        sock_path,
        b"GET /hello HTTP/1.1\r\nHost: q\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: q\r\nContent-Length: 5\r\n\r\nabcde"
        b"GET /stream HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n",
    )
    assert 3 == wire.count(b"HTTP/1.1 200 OK\r\n")
    first, second, third = wire.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"\r\n\r\nhello\n")
    assert second.endswith(b"\r\n\r\nabcde")
    assert b"Transfer-Encoding: chunked" in third
    assert third.endswith(b"7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n")


def test_an_unread_body_is_drained_so_the_connection_stays_usable(
    runner: RunnerProcess, sock_path: str
) -> None:
    """The app ignores a POST body; the next request on the connection still parses."""
    with connection(sock_path) as conn:
        conn.request("POST", "/hello", body=b"x" * 100_000)
        response = conn.getresponse()
        assert (200, b"hello\n") == (response.status, response.read())
        conn.request("GET", "/hello")
        assert b"hello\n" == conn.getresponse().read()


def test_http10_without_a_length_is_close_delimited(runner: RunnerProcess, sock_path: str) -> None:
    """HTTP/1.0 has no chunked coding: the body ends with the connection."""
    wire = raw_exchange(sock_path, b"GET /stream HTTP/1.0\r\n\r\n")
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in wire
    assert wire.endswith(b"\r\n\r\npart 0\npart 1\npart 2\n")


def test_an_app_exception_is_a_500_and_the_next_request_is_served(
    runner: RunnerProcess, sock_path: str
) -> None:
    """The traceback goes to stderr, the connection closes, the process keeps serving."""
    status, body, response = get(sock_path, "/boom")
    assert (500, b"Internal Server Error\n") == (status, body)
    assert "close" == response.getheader("Connection")
    assert (200, b"hello\n") == get(sock_path, "/hello")[:2]
    assert "RuntimeError: the app failed" in runner.stderr
    assert "Traceback" in runner.stderr


def test_an_exception_after_the_headers_cuts_the_response_short(
    runner: RunnerProcess, sock_path: str
) -> None:
    """Nothing can be said once the head is out: the chunked body never gets its last chunk."""
    wire = raw_exchange(sock_path, b"GET /boom-late HTTP/1.1\r\nHost: q\r\n\r\n")
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n")
    assert wire.endswith(b"7\r\npartial\r\n")
    assert (200, b"hello\n") == get(sock_path, "/hello")[:2]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"400",
        ),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
    ],
    ids=["garbage", "cl-and-te", "long-target", "bad-chunk"],
)
def test_malformed_requests_are_refused_and_closed(
    runner: RunnerProcess, sock_path: str, data: bytes, status: bytes
) -> None:
    """A 4xx and a close; the app never sees the request; the next client is fine."""
    wire = raw_exchange(sock_path, data)
    assert wire.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"Connection: close\r\n" in wire
    assert (200, b"hello\n") == get(sock_path, "/hello")[:2]


def test_forwarded_headers_from_the_front_end_shape_the_environ(
    runner: RunnerProcess, sock_path: str
) -> None:
    """Over the queue socket, X-Forwarded-For/Proto and Host decide REMOTE_ADDR, scheme and server."""
    headers = {
        "Host": "example.org",
        "X-Forwarded-For": "203.0.113.5, 198.51.100.7",
        "X-Forwarded-Proto": "https",
    }
    status, body, _ = get(sock_path, "/environ", **headers)
    assert 200 == status
    assert {
        "REMOTE_ADDR": "198.51.100.7",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "PATH_INFO": "/environ",
    } == json.loads(body)


def test_expect_100_continue_is_answered_when_the_app_reads(
    runner: RunnerProcess, sock_path: str
) -> None:
    """The client waits for 100 Continue before sending the body (curl does this for big uploads)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(sock_path)
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: q\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
        )
        assert b"HTTP/1.1 100 Continue\r\n\r\n" == sock.recv(4096)
        sock.sendall(b"abc")
        assert sock.recv(4096).endswith(b"\r\n\r\nabc")


def test_an_app_factory_call_spec_is_served(spawner: Spawner, workdir: Path) -> None:
    """``runnerapp:create_app("...")`` calls the factory with the literal argument."""
    path = str(workdir / "f.sock")
    spawner.start("--bind", f"unix:{path}", "--app-dir", APPS, 'runnerapp:create_app("howdy")')
    assert (200, b"howdy") == get(path, "/")[:2]


def test_tcp_bind_serves_and_trusts_no_forwarded_headers(spawner: Spawner) -> None:
    """``--bind 127.0.0.1:0`` picks a port (logged); the TCP peer is REMOTE_ADDR."""
    runner = spawner.start("--bind", "127.0.0.1:0", "--app-dir", APPS, "runnerapp:app")
    line = next(ln for ln in runner.stderr.splitlines() if "listening on 127.0.0.1:" in ln)
    port = int(line.split("listening on 127.0.0.1:")[1].split()[0])
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/environ", headers={"X-Forwarded-For": "6.6.6.6"})
        environ = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert "127.0.0.1" == environ["REMOTE_ADDR"]
    assert "http" == environ["wsgi.url_scheme"]
