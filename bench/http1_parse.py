"""Throughput of `orchestrator.http1.RequestParser` on the listener's hot path.

Prints requests/s for: one typical 300-byte GET (7 fields) per read on a kept-alive connection;
pipelined batches of GETs in one read; a small POST with Content-Length; a chunked POST. For
comparison it also times bare httptools (llhttp) with a minimal protocol object, the floor our policy
layer sits on. Each figure is the best of five windows (noise on a shared machine only slows runs).

Run: .venv/bin/python bench/http1_parse.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import httptools

from orchestrator.http1 import NEED_DATA, EndOfMessage, RequestParser

GET = (
    b"GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n"
    b"Host: app.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)
POST = (
    b"POST /api/v1/items HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: application/json\r\n"
    b"Content-Length: 27\r\n\r\n"
    b'{"name": "widget", "n": 42}'
)
CHUNKED = (
    b"POST /upload HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
)


def run_parser(payload: bytes, per_read: int) -> Callable[[], int]:
    """One kept-alive parser; each call feeds one read holding `per_read` requests and drains it."""
    parser = RequestParser()
    data = payload * per_read

    def once() -> int:
        parser.receive_data(data)
        done = 0
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return done
            if type(event) is EndOfMessage:
                done += 1

    return once


class _Minimal:
    """httptools protocol with the two callbacks a proxy needs at minimum."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        self.done += 1


def run_httptools(payload: bytes, per_read: int) -> Callable[[], int]:
    proto = _Minimal()
    parser = httptools.HttpRequestParser(proto)
    data = payload * per_read

    def once() -> int:
        before = proto.done
        proto.headers = []
        parser.feed_data(data)
        return proto.done - before

    return once


def measure(fn: Callable[[], int], seconds: float, windows: int = 5) -> float:
    """Return requests/s: the best of `windows` runs sharing `seconds` (after a short warm-up).

    The best window, not the mean: on a shared machine noise only ever makes a run slower.
    """
    for _ in range(200):
        fn()
    best = 0.0
    for _ in range(windows):
        requests = 0
        start = time.perf_counter()
        deadline = start + seconds / windows
        while True:
            for _ in range(20):
                requests += fn()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, requests / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    args = parser.parse_args()
    print(f"typical GET is {len(GET)} bytes")
    cases: list[tuple[str, Callable[[], int]]] = [
        ("GET, 1 per read", run_parser(GET, 1)),
        ("GET, pipelined 16 per read", run_parser(GET, 16)),
        ("GET, pipelined 100 per read", run_parser(GET, 100)),
        ("POST Content-Length 27, 1 per read", run_parser(POST, 1)),
        ("POST chunked 2x16, 1 per read", run_parser(CHUNKED, 1)),
        ("bare httptools GET, 1 per read", run_httptools(GET, 1)),
        ("bare httptools GET, pipelined 16", run_httptools(GET, 16)),
    ]
    for name, fn in cases:
        rate = measure(fn, args.seconds)
        print(f"{name:<40} {rate:>12,.0f} req/s  {1e6 / rate:6.2f} us/req")


if __name__ == "__main__":
    main()
