"""The llhttp request corpus (nodejs/llhttp, MIT; tests/data/http/) replayed against a running
listener, following tests/data/http's README: every must-reject case is refused (4xx, 501, 505 or a
close) and never reaches a worker; no accept case gets a 5xx or reaches a worker more often than it has
messages. Missing-Host accept cases are replayed again with a Host added, so the accept path runs.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time

import pytest

from tests.integration.listener.conftest import Site, statuses
from tests.support.controller import REPO, http

pytestmark = pytest.mark.integration

with open(
    os.path.join(REPO, "tests", "data", "http", "llhttp-requests.json"), encoding="utf-8"
) as _fh:
    CORPUS = json.load(_fh)
CASES = CORPUS["cases"]


def _send(port: int, raw: bytes, half_close: bool) -> tuple[bytes, bool]:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)
        got = b""
        deadline = time.monotonic() + 3
        shut = half_close
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if not shut:  # it may be waiting for more: tell it there is none
                    sock.shutdown(socket.SHUT_WR)
                    shut = True
                    continue
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False


def _seen(site: Site) -> int:
    return len(json.loads(http(site.port, "/__seen").body))


def _with_host(raw: bytes) -> bytes:
    line_end = raw.find(b"\r\n")
    return raw[: line_end + 2] + b"Host: example.com\r\n" + raw[line_end + 2 :]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_the_corpus_case_gets_the_answer_its_verdict_requires(
    corpus_site: Site, case: dict[str, object]
) -> None:
    """Reject: 4xx/501/505 or closed, nothing reaches a worker. Accept: no 5xx, bounded worker hits."""
    raw = base64.b64decode(str(case["raw_b64"]))
    half = bool(case.get("then_eof") or case.get("unterminated_head"))
    before = _seen(corpus_site)
    got, closed = _send(corpus_site.port, raw, half)
    codes = statuses(got)
    reached = _seen(corpus_site) - before
    if case["expect"] == "reject":
        assert closed or codes, got[:200]
        assert all(400 <= c < 500 or c in (501, 505) for c in codes), codes
        assert 0 == reached
        return
    assert not any(500 <= c < 600 and c not in (501, 505) for c in codes), (codes, got[:300])
    if codes and 400 <= codes[0] < 600:
        assert case.get("strict_proxy_may_reject") or case.get("missing_host"), codes
    assert (
        reached <= int(str(case["messages"])) or case.get("trailing_error") or case.get("upgrade")
    )


MISSING_HOST = [
    c
    for c in CASES
    if c.get("missing_host") and c["expect"] == "accept" and not c.get("strict_proxy_may_reject")
]


@pytest.mark.parametrize("case", MISSING_HOST, ids=[c["id"] for c in MISSING_HOST])
def test_missing_host_cases_with_a_host_are_served(
    corpus_site: Site, case: dict[str, object]
) -> None:
    """With a Host added, the accept path is exercised: no 5xx, at least the first one served."""
    raw = _with_host(base64.b64decode(str(case["raw_b64"])))
    got, _ = _send(corpus_site.port, raw, bool(case.get("then_eof")))
    codes = statuses(got)
    assert not any(500 <= c < 600 and c not in (501, 505) for c in codes), (codes, got[:300])
