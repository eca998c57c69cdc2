"""Captured output: line splitting and cutting, the bounded ring, tagging, the journal check, and the
hub reading real pipes (a flood of one pool never costs another pool its lines)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import pytest

from orchestrator.controller.logs import UnknownPool, resolve_pool, serve_logs
from orchestrator.controller.output import (
    CUT_MARK,
    LineSplitter,
    OutputHub,
    OutputLine,
    Ring,
    format_line,
    journal_stream,
)
from tests.support.controller import wait_until


def _line(seq: int, text: str, pool: str | None = "api", stream: str = "stdout") -> OutputLine:
    return OutputLine(seq, 1_700_000_000.25, pool, 42, stream, text)


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\nb\n"], ["a", "b"]),
        ([b"par", b"tial\n", b"x"], ["partial"]),
        ([b"crlf\r\n"], ["crlf"]),
        ([b"\xff bad utf-8\n"], ["\ufffd bad utf-8"]),
        ([b"\n\n"], ["", ""]),
    ],
)
def test_the_splitter_yields_whole_lines_only(chunks: list[bytes], expected: list[str]) -> None:
    """Lines come out when their newline arrives, without it; bytes that are not UTF-8 are
    replaced, not fatal."""
    splitter = LineSplitter()
    out = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert expected == out


def test_a_line_longer_than_the_limit_is_cut_once_and_its_rest_dropped() -> None:
    """A 50-byte line with a 10-byte limit: its first 10 bytes, marked; the rest of it is dropped
    up to its newline, and the next line is whole."""
    splitter = LineSplitter(max_bytes=10)
    out = splitter.feed(b"x" * 30) + splitter.feed(b"y" * 20 + b"\nnext\n")
    assert ["x" * 10 + CUT_MARK, "next"] == out


def test_the_last_line_without_a_newline_is_kept_at_end_of_file() -> None:
    """A process that exits mid-line still has its last words shown."""
    splitter = LineSplitter()
    assert [] == splitter.feed(b"bye")
    assert ["bye"] == splitter.finish()
    assert [] == splitter.finish()


def test_the_ring_drops_its_oldest_lines_beyond_its_line_bound() -> None:
    """Five lines into a ring of three: the last three stay, two are counted as dropped."""
    ring = Ring(max_lines=3, max_bytes=1000)
    for i in range(5):
        ring.append(_line(i, f"l{i}"))
    assert ["l2", "l3", "l4"] == [line.text for line in ring.lines()]
    assert 2 == ring.dropped


def test_the_ring_drops_its_oldest_lines_beyond_its_byte_bound() -> None:
    """Lines of 10 bytes into a ring of 25 bytes: two stay."""
    ring = Ring(max_lines=100, max_bytes=25)
    for i in range(4):
        ring.append(_line(i, f"{i}" * 10))
    assert ["2" * 10, "3" * 10] == [line.text for line in ring.lines()]
    assert 20 == ring.bytes


@pytest.mark.parametrize(
    ("fmt", "journal", "line", "expected"),
    [
        ("text", False, _line(1, "hello"), "api[42]: hello"),
        ("text", True, _line(1, "oops", stream="stderr"), "<3>api[42]: oops"),
        ("text", True, _line(1, "<0>forged"), "<6>api[42]: <0>forged"),
        ("text", False, _line(1, "started", pool=None), "listener[42]: started"),
    ],
)
def test_text_lines_read_pool_pid_line(
    fmt: str, journal: bool, line: OutputLine, expected: str
) -> None:
    """``pool[pid]: line``; on the journal the stream's priority comes first, so a line that
    starts with its own priority cannot choose it."""
    assert expected == format_line(line, fmt, journal)


def test_json_lines_carry_pool_pid_and_stream() -> None:
    """One object a line with the tags and the line as a string (quotes and all)."""
    record = json.loads(format_line(_line(1, 'say "hi"', stream="stderr"), "json"))
    assert {
        "ts": 1_700_000_000.25,
        "event": "output",
        "pool": "api",
        "pid": 42,
        "stream": "stderr",
        "line": 'say "hi"',
    } == record


def test_the_listeners_own_events_stay_one_json_object_with_the_tags_added() -> None:
    """The listener's structured lines are events of their own (``listener_request_error``), not
    strings inside an ``output`` record; a worker's JSON line is always a string."""
    text = '{"event":"listener_core","implementation":"compiled","pid":42}'
    listener = json.loads(format_line(_line(1, text, pool=None, stream="stderr"), "json"))
    assert ("listener_core", "listener", "stderr") == (
        listener["event"],
        listener["pool"],
        listener["stream"],
    )
    worker = json.loads(format_line(_line(1, text), "json"))
    assert ("output", text) == (worker["event"], worker["line"])


def test_the_journal_is_recognised_by_the_device_and_inode_of_stderr() -> None:
    """``JOURNAL_STREAM`` names the fd's own file: a match is the journal; a stale value (a
    redirected child) or a malformed one is not."""
    read, write = os.pipe()
    try:
        st = os.fstat(write)
        assert journal_stream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, write)
        assert not journal_stream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, write)
        assert not journal_stream({"JOURNAL_STREAM": "junk"}, write)
        assert not journal_stream({}, write)
    finally:
        os.close(read)
        os.close(write)


@pytest.fixture
def hub() -> Iterator[tuple[OutputHub, list[str]]]:
    written: list[str] = []
    hub = OutputHub("text", written.append, max_lines=100, max_bytes=1 << 20)
    hub.start()
    try:
        yield hub, written
    finally:
        hub.stop()


def _attach(hub: OutputHub, pool: str | None, pid: int, stream: str = "stdout") -> int:
    read, write = os.pipe()
    hub.attach(pool, pid, stream, read)
    return write


def test_the_hub_reads_pipes_into_each_pools_ring_and_the_log(
    hub: tuple[OutputHub, list[str]],
) -> None:
    """Two pools write: each ring holds its own pool's lines only, tagged, and the log has both."""
    out, written = hub
    api, web = _attach(out, "api", 7), _attach(out, "web", 8, "stderr")
    os.write(api, b"api one\napi two\n")
    os.write(web, b"web one\n")
    os.close(api)
    os.close(web)
    wait_until(lambda: len(out.lines("api")) == 2 and out.lines("web"), 5, "the lines")
    assert [("api", 7, "stdout", "api one"), ("api", 7, "stdout", "api two")] == [
        (line.pool, line.pid, line.stream, line.text) for line in out.lines("api")
    ]
    assert ["web one"] == [line.text for line in out.lines("web")]
    wait_until(lambda: "web[8]: web one" in "".join(written), 5, "the echo")
    assert "api[7]: api two\n" in "".join(written)


def test_a_flooding_pool_loses_only_its_own_oldest_lines(
    hub: tuple[OutputHub, list[str]],
) -> None:
    """20,000 lines from one pool through a 100-line ring, with another pool's line written before:
    the flooder keeps its newest 100 in order, the quiet pool keeps its line, and the writer
    never waits on the controller for long (it finishes)."""
    out, _ = hub
    quiet = _attach(out, "quiet", 1)
    os.write(quiet, b"still here\n")
    flood = _attach(out, "flood", 2)

    def write_all() -> None:
        for start in range(0, 20_000, 1000):
            os.write(flood, b"".join(b"line %d\n" % i for i in range(start, start + 1000)))
        os.close(flood)

    writer = threading.Thread(target=write_all)
    writer.start()
    writer.join(30)
    assert not writer.is_alive()
    wait_until(
        lambda: out.lines("flood") and out.lines("flood")[-1].text == "line 19999", 10, "the end"
    )
    assert [f"line {i}" for i in range(19_900, 20_000)] == [x.text for x in out.lines("flood")]
    assert ["still here"] == [line.text for line in out.lines("quiet")]
    os.close(quiet)


def test_tail_and_since_select_the_newest_lines() -> None:
    """``tail`` keeps the last N; ``since`` those stamped at or after a time."""
    now = [100.0]
    hub = OutputHub("text", None, wall=lambda: now[0])
    hub.start()
    try:
        fd = _attach(hub, "api", 3)
        for i in range(4):
            now[0] = 100.0 + i
            os.write(fd, b"l%d\n" % i)
            wait_until(lambda i=i: len(hub.lines("api")) == i + 1, 5, f"line {i}")
        assert ["l2", "l3"] == [line.text for line in hub.lines("api", tail=2)]
        assert ["l1", "l2", "l3"] == [line.text for line in hub.lines("api", since=101.0)]
        assert [] == hub.lines("api", tail=0)
        os.close(fd)
    finally:
        hub.stop()


def test_an_unknown_pool_is_refused_with_the_known_ones() -> None:
    """The error lists the pools and the listener; ``listener`` and ``worker/NAME`` resolve."""
    with pytest.raises(UnknownPool, match=r'unknown pool "nope"; known: api, web, listener'):
        resolve_pool("nope", ["web", "api"])
    assert resolve_pool("listener", ["listener"]) is None
    assert "listener" == resolve_pool("worker/listener", ["listener"])
    assert "api" == resolve_pool("api", ["api"])


def test_serving_logs_sends_the_buffered_lines_then_a_result() -> None:
    """Without ``follow``: one event per buffered line of that pool, then the result."""
    hub = OutputHub("text", None)
    hub.start()
    try:
        fd = _attach(hub, "api", 5)
        other = _attach(hub, "web", 6)
        os.write(other, b"not mine\n")
        os.write(fd, b"a\nb\n")
        wait_until(lambda: len(hub.lines("api")) == 2 and hub.lines("web"), 5, "the lines")
        sent: list[dict[str, object]] = []

        def send(message: dict[str, object]) -> bool:
            sent.append(message)
            return True

        serve_logs(send, hub, ["api", "web"], {"pool": "api", "tail": 1}, threading.Event())
        assert 2 == len(sent)
        event = sent[0]["event"]
        assert isinstance(event, dict)
        assert ("api", 5, "b") == (event["pool"], event["pid"], event["line"])
        assert {"ok": True, "result": {"pool": "api", "lines": 1}} == sent[1]
        os.close(fd)
        os.close(other)
    finally:
        hub.stop()
