"""Edges of an exchange the raw echo worker (tests/support/apps/rawecho.py) produces on demand: a
worker that writes more than its response, a client that half-closes before its answer. Both were
found by the differential twin test, in the general path, and both run here against each core.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.listener.conftest import Site, exchange, statuses
from tests.support.controller import http

pytestmark = pytest.mark.integration


def test_a_connection_with_bytes_after_its_response_is_never_reused(raw_site: Site) -> None:
    """The worker follows its response with "EXTRA" and keeps the connection: the listener closes
    that connection instead of pooling it, so the next requests are answered (they used to meet a
    closed connection or no answer at all) and never see the stray bytes."""
    chunked = (
        b"POST /after HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    for _ in range(10):
        assert 200 == http(raw_site.port, "/first?r=extra-open", timeout=5).status
        # A chunked body takes the general path, which resumes a pooled connection's parser.
        got, closed = exchange(raw_site.port, chunked, timeout=5)
        assert [200] == statuses(got)
        assert closed  # as the request asked (Connection: close), not left hanging
        assert b"EXTRA" not in got
        assert 200 == http(raw_site.port, "/first?r=extra-open", timeout=5).status
        after = http(raw_site.port, "/after", timeout=5)  # the fast path's way
        assert 200 == after.status
        assert b"EXTRA" not in after.body


def test_a_client_eof_during_its_exchange_gets_the_answer_then_the_close(raw_site: Site) -> None:
    """EOF sent right after the request: the response still comes, and the listener then closes
    at once (it kept the connection until the 3 s idle timer when the EOF arrived while the
    response was on its way)."""
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", raw_site.port), timeout=5) as sock:
            sock.sendall(b"GET /bye HTTP/1.1\r\nHost: example.test\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            started = time.monotonic()
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
            waited = time.monotonic() - started
        assert [200] == statuses(got)
        assert waited < 2.0, f"closed only after {waited:.1f}s (the idle timer is 3 s)"
