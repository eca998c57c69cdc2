"""Test catalogue section B against a running listener: timers and resource limits (short timers
from the test manifest: headerWait 2s, idleConnection 3s, entityBody 2s)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.integration.listener.conftest import Site, exchange, statuses
from tests.support.controller import http, wait_until

pytestmark = pytest.mark.integration

H = b"Host: 127.0.0.1\r\n"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_head_that_never_finishes_is_cut_at_the_header_wait(site: Site) -> None:
    """Slowloris: a partial head gets 408 and a close after headerWait (2 s), not later."""
    start = time.monotonic()
    got, closed = exchange(
        site.port, [b"GET /echo/slow HTTP/1.1\r\n", b"X-A: 1\r\n"], pause=0.5, timeout=8
    )
    elapsed = time.monotonic() - start
    assert closed
    assert [408] == statuses(got)
    assert 1.5 < elapsed < 5.0, elapsed


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(site: Site) -> None:
    """After a response, a silent connection closes after idleConnection (3 s)."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        sock.sendall(b"GET /echo/idle HTTP/1.1\r\n" + H + b"\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            first += sock.recv(65536)
        assert [200] == statuses(first)
        start = time.monotonic()
        rest = sock.recv(65536)  # blocks until the listener closes
        assert b"" == rest
        assert 2.0 < time.monotonic() - start < 6.0


def test_a_body_that_stops_arriving_is_cut_at_the_entity_body_timer(site: Site) -> None:
    """Slow body: 10 of 100 bytes, then silence: 408 (or a close) after entityBody (2 s)."""
    got, closed = exchange(
        site.port,
        b"POST /echo/body HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\n" + b"x" * 10,
        timeout=8,
    )
    assert closed
    assert statuses(got) in ([], [408])


def test_a_full_queue_answers_503_with_retry_after(site: Site) -> None:
    """queues.tiny has maxLength 1 and one single-threaded process: overflow gets 503 QueueFull."""
    results: list[int] = []
    headers: list[dict[str, str]] = []

    def call() -> None:
        answer = http(site.port, "/tiny/slow/2", timeout=10)
        results.append(answer.status)
        headers.append(answer.headers)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert 503 in results, results
    assert 200 in results, results
    refused = [h for s, h in zip(results, headers, strict=True) if s == 503]
    assert all("retry-after" in h for h in refused)
    assert any(e.get("reason") == "QueueFull" for e in site.ctl.events("listener_request_error"))


def test_a_client_that_does_not_read_is_cut_and_memory_stays_bounded(site: Site) -> None:
    """Slow read: a 50 MB answer to a client that reads nothing is aborted by the minimum send rate;
    the listener does not buffer the worker's answer without bound (backpressure)."""
    listener_pid = int(str(site.ctl.state()["listener"]["pid"]))  # type: ignore[index]
    before = _rss_kib(listener_pid)
    cut_before = site.ctl.listener_errors("Timer_MinBytesPerSecond")
    with socket.create_connection(("127.0.0.1", site.port), timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /echo/big/50000000 HTTP/1.1\r\n" + H + b"\r\n")
        # Until the listener says it cut a connection for its send rate (the 5 s grace, then the
        # once-a-second sweep), its memory is sampled: the peak while the answer waits.
        peak = before
        deadline = time.monotonic() + 15
        while site.ctl.listener_errors("Timer_MinBytesPerSecond") == cut_before:
            assert time.monotonic() < deadline, "no connection cut for its send rate"
            peak = max(peak, _rss_kib(listener_pid))
            time.sleep(0.1)
        sock.settimeout(5)
        received = 0
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            closed = True  # cut with unread data in the listener's socket: a reset
        except TimeoutError:
            closed = False  # still open, nothing more coming: not cut
        else:
            closed = True  # what was in flight, then EOF
    assert closed, f"the listener did not cut the connection ({received} bytes read)"
    assert received < 50_000_000
    assert peak - before < 10 * 1024, (before, peak)


def _refused(port: int, path: str) -> tuple[bytes, bool]:
    """Raw answer to a GET on a disabled queue and whether the connection was reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\n" + H + b"\r\n")
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except ConnectionResetError:
            return got, True
        return got, False


def test_each_503_verbosity_answers_as_http_sys_does(site: Site) -> None:
    """Disabled queues: basic resets the connection with no answer, limited sends a bare 503,
    full names the reason; limited and full carry Retry-After."""
    got, reset = _refused(site.port, "/shut/basic/x")
    assert (got, reset) == (b"", True)

    got, reset = _refused(site.port, "/shut/limited/x")
    assert not reset
    assert statuses(got) == [503]
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"\r\nretry-after: " in head.lower()
    assert body == b"Service Unavailable\r\n"

    got, reset = _refused(site.port, "/shut/full/x")
    assert statuses(got) == [503]
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"\r\nretry-after: " in head.lower()
    assert body == b"Service Unavailable (Disabled)\r\n"
    # The reason is logged for all three, basic included (its client learns nothing).
    wait_until(
        lambda: (
            [e.get("reason") for e in site.ctl.events("listener_request_error")].count("Disabled")
            >= 3
        ),
        10,
        "three Disabled refusals in the listener's log",
    )
