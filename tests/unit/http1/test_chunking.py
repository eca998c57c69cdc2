"""Read boundaries never change the outcome (gunicorn's byte-at-a-time and random splits, reproducible).

For every corpus vector, a set of valid requests and hypothesis-built garbage under small limits, the
events (adjacent Data merged) or the error (class, status hint, reason) must be identical whether the
bytes arrive in one read, one byte per read, or split at hypothesis-chosen offsets. This is what makes
the head checks position-based (see `validate.HeadScanner`).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._support import SMALL_LIMITS, feed, load_corpus, raw, split

H = b"Host: example.com\r\n"
VALID = [
    b"GET / HTTP/1.1\r\n" + H + b"\r\n",
    b"\r\n\r\nGET /a?b=c HTTP/1.1\r\n" + H + b"Accept: */*\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
    b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\nhello world",
    b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
    b'5;name="va\\"l";x\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\nY: u\r\n\r\n',
    b"GET /1 HTTP/1.1\r\n" + H + b"\r\nPOST /2 HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc"
    b"GET /3 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET http://example.com:8080/x HTTP/1.2\r\n" + H + b"\r\n",
    b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n",
]
CORPUS = load_corpus()["cases"]
INPUTS = [pytest.param(d, id=f"valid-{i}") for i, d in enumerate(VALID)] + [
    pytest.param(raw(c), id=c["id"]) for c in CORPUS
]

# Fragments that build heads which hit every limit and framing rule under SMALL_LIMITS.
VOCAB = [
    b"GET / HTTP/1.1",
    b"POST /x HTTP/1.1",
    b"GET /" + b"a" * 30 + b" HTTP/1.1",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"Host: a",
    b"X: ",
    b"v" * 6,
    b"v" * 20,
    b":",
    b" ",
    b"\t",
    b"Content-Length: 3",
    b"Transfer-Encoding: chunked",
    b"abc",
    b"0",
    b"5",
    b"3;x=y",
    b"\x00",
    b"HTTP/2.0",
    b"HTTP/1.2",
    b"\r\n\r\n",
    b"Connection: upgrade\r\nUpgrade: x",
    b"Connection: close",
    b"Expect: 100-continue",
    b"\x7f",
]
LIMITS = [pytest.param(SMALL_LIMITS, id="small-limits"), pytest.param({}, id="default-limits")]
garbage = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=40).map(b"".join)


def _key(chunks: list[bytes], **limits: Any) -> tuple[object, ...]:
    outcome = feed(chunks, eof=True, **limits)
    # How the final drain ended (PAUSED, ConnectionClosed) matters only when nothing failed.
    last = type(outcome.last) if outcome.error is None else None
    return (*outcome.key(), last)


@pytest.mark.parametrize("data", INPUTS)
def test_byte_at_a_time_gives_the_same_outcome_as_one_read(data: bytes) -> None:
    """Feeding one byte per read yields the same events or error as feeding everything at once."""
    assert _key([data]) == _key([data[i : i + 1] for i in range(len(data))])


@pytest.mark.parametrize("data", INPUTS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_splits_give_the_same_outcome_as_one_read(
    data: bytes, choices: st.DataObject
) -> None:
    """Splitting the input at arbitrary offsets does not change the outcome."""
    cuts = choices.draw(
        st.lists(st.integers(min_value=1, max_value=max(1, len(data) - 1)), max_size=8)
    )
    assert _key([data]) == _key(split(data, cuts))


@pytest.mark.parametrize("limits", LIMITS)
@settings(max_examples=300, deadline=None)
@given(garbage, st.lists(st.integers(min_value=1, max_value=400), max_size=10))
def test_garbage_is_judged_the_same_however_it_is_split(
    limits: dict[str, Any], data: bytes, cuts: list[int]
) -> None:
    """Which limit or framing error wins depends only on the bytes, never on the read boundaries.

    Small limits exercise the positional scanner; default limits leave short heads to llhttp, so
    this also checks that llhttp refuses every bare CR/LF the scanner would have caught.
    """
    assert _key([data], **limits) == _key(split(data, cuts), **limits)


@pytest.mark.parametrize("limits", LIMITS)
@settings(max_examples=100, deadline=None)
@given(garbage)
def test_garbage_byte_at_a_time_is_judged_like_one_read(
    limits: dict[str, Any], data: bytes
) -> None:
    """The byte-at-a-time extreme of the property above."""
    one_by_one = [data[i : i + 1] for i in range(len(data))]
    assert _key([data], **limits) == _key(one_by_one, **limits)
