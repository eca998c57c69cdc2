"""Request bodies behind ``wsgi.input``: lazy, bounded, and strict about chunk syntax."""

from __future__ import annotations

import random

import pytest

from orchestrator.runner.errors import ClientDisconnected, HttpError
from orchestrator.runner.http11 import BufferedReader, ChunkedBody, LengthBody
from tests.unit.runner.scripted import ScriptedRecv, byte_at_a_time, split_randomly


def chunked(data: bytes, sizes: list[int], *, ext: bool = False, trailers: bytes = b"") -> bytes:
    """``data`` in chunked coding with the given chunk sizes (the rest in one last chunk)."""
    out = []
    i = 0
    for size in [*sizes, len(data)]:
        piece = data[i : i + size]
        if not piece:
            continue
        out.append(b"%x%s\r\n%s\r\n" % (len(piece), b";name=value" if ext else b"", piece))
        i += len(piece)
    return b"".join(out) + b"0\r\n" + trailers + b"\r\n"


DATA = bytes(random.Random(7).randrange(256) for _ in range(3000)) + b"\nline two\nthree"
ENCODED = chunked(DATA, [1, 2, 100, 1000], ext=True, trailers=b"X-Sum: 1\r\n")


@pytest.mark.parametrize(
    "pieces",
    [[ENCODED], byte_at_a_time(ENCODED), *(split_randomly(ENCODED, seed) for seed in range(8))],
    ids=["whole", "bytewise", *(f"seed{s}" for s in range(8))],
)
def test_chunked_bodies_decode_to_the_original_bytes(pieces: list[bytes]) -> None:
    """Extensions and trailers are skipped; the body ends exactly at the last chunk."""
    body = ChunkedBody(BufferedReader(ScriptedRecv([*pieces, b"NEXT"])))
    assert DATA == body.read()
    assert body.complete
    assert b"" == body.read(10)


def test_chunked_reads_of_a_size_return_that_many_bytes_across_chunks() -> None:
    """``read(n)`` behaves like a file: exactly ``n`` bytes until the end."""
    body = ChunkedBody(BufferedReader(ScriptedRecv(split_randomly(ENCODED, 99))))
    parts = []
    while part := body.read(333):
        parts.append(part)
    assert DATA == b"".join(parts)
    assert all(len(p) == 333 for p in parts[:-1])


def test_chunked_body_is_not_read_before_the_app_asks() -> None:
    """Nothing is pulled from the wire at construction: bodies are streamed, never preloaded."""
    recv = ScriptedRecv([ENCODED])
    body = ChunkedBody(BufferedReader(recv))
    assert 0 == recv.calls
    assert not body.complete
    body.read(1)
    assert 1 == recv.calls


def test_readline_and_iteration_split_lines_across_chunks() -> None:
    """Lines may span chunk boundaries; iteration yields them in order."""
    encoded = chunked(b"alpha\nbeta\ngam", [3, 5, 1])
    body = ChunkedBody(BufferedReader(ScriptedRecv(byte_at_a_time(encoded))))
    assert b"alp" == body.readline(3)
    assert b"ha\n" == body.readline()
    assert [b"beta\n", b"gam"] == list(body)


def test_readlines_reads_to_the_end() -> None:
    """``readlines()`` is the rest of the body as lines."""
    body = LengthBody(BufferedReader(ScriptedRecv([b"a\nb\nc"])), 5)
    assert [b"a\n", b"b\n", b"c"] == body.readlines()


@pytest.mark.parametrize(
    "encoded",
    [
        b"g\r\nabc\r\n0\r\n\r\n",
        b"-1\r\nabc\r\n0\r\n\r\n",
        b" 3\r\nabc\r\n0\r\n\r\n",
        b"3 \r\nabc\r\n0\r\n\r\n",
        b"0x3\r\nabc\r\n0\r\n\r\n",
        b"3\nabc\r\n0\r\n\r\n",
        b"3\r\nabcX\r\n0\r\n\r\n",
        b"3\r\nabc0\r\n\r\n",
        b"3;\x01\r\nabc\r\n0\r\n\r\n",
        b"11111111111111111\r\n",
        b"3\r\nabc\r\n0\r\nX-Trailer: y\n\r\n",
        b"3" + b";e" * 3000 + b"\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_malformed_chunked_bodies_are_a_400(encoded: bytes) -> None:
    """Bad sizes, whitespace, bare LF, missing CRLF after data and huge lines are refused."""
    body = ChunkedBody(BufferedReader(ScriptedRecv([encoded])))
    with pytest.raises(HttpError) as info:
        body.read()
    assert 400 == info.value.status


def test_huge_trailer_sections_are_refused() -> None:
    """Trailers are read and dropped, but not without bound."""
    encoded = (
        b"0\r\n" + b"X-T: " + b"y" * 100 + b"\r\n" * 1 + (b"X-U: " + b"z" * 100 + b"\r\n") * 200
    )
    body = ChunkedBody(BufferedReader(ScriptedRecv([encoded, b"\r\n"])))
    with pytest.raises(HttpError) as info:
        body.read()
    assert 431 == info.value.status


@pytest.mark.parametrize("encoded", [b"5\r\nab", b"5\r\nabcde\r\n", b"5\r", b""])
def test_a_chunked_body_cut_short_is_a_disconnect(encoded: bytes) -> None:
    """EOF inside the body means the client went away; there is nobody to answer."""
    body = ChunkedBody(BufferedReader(ScriptedRecv([encoded])))
    with pytest.raises(ClientDisconnected):
        body.read()


def test_length_body_stops_at_content_length_and_leaves_the_next_request() -> None:
    """Reading past the length reads as EOF; the following bytes stay buffered."""
    reader = BufferedReader(ScriptedRecv([b"hello", b" worldGET / HTTP/1.1\r\n"]))
    body = LengthBody(reader, 11)
    assert b"hel" == body.read(3)
    assert b"lo world" == body.read(100)
    assert b"" == body.read()
    assert body.complete
    assert b"GET" == reader.read(3)


def test_a_length_body_cut_short_is_a_disconnect() -> None:
    """Fewer bytes than Content-Length then EOF."""
    body = LengthBody(BufferedReader(ScriptedRecv([b"abc"])), 10)
    with pytest.raises(ClientDisconnected):
        body.read()


def test_first_read_hook_runs_once_before_the_first_wire_read() -> None:
    """The connection sends 100 Continue from this hook, so only when the app wants the body."""
    calls = []
    body = LengthBody(BufferedReader(ScriptedRecv([b"abcdef"])), 6)
    body.on_first_read = lambda: calls.append("continue")
    assert [] == calls
    body.read(2)
    body.read(2)
    assert ["continue"] == calls


def test_drain_discards_up_to_a_bound_and_reports_completion() -> None:
    """Small remainders are drained for keep-alive; large ones are left for a close."""
    body = LengthBody(BufferedReader(ScriptedRecv([b"x" * 100])), 100)
    assert not body.drain(10)
    assert body.drain(1000)
    encoded = chunked(b"y" * 50, [10])
    chunks = ChunkedBody(BufferedReader(ScriptedRecv([encoded])))
    chunks.read(50)
    assert not chunks.complete  # the last chunk has not been read yet
    assert chunks.drain(0) is False
    assert chunks.drain(10)
