"""The access log as text (``--log-format text``): ``key=value`` lines as the controller's own log,
with the values a client controls quoted so that a line always splits back into its fields."""

from __future__ import annotations

import json
import shlex

from orchestrator.backends.linux.listener.fast import format_access_text, format_log_text

RECORD = (
    10.5,
    "127.0.0.1:5000",
    b"example.test",
    b"GET",
    b'/a b"c=d',
    200,
    12,
    1.2345,
    "api",
    "",
    0.5,
)


def test_an_access_record_reads_as_key_value_text() -> None:
    """Time, event, pid, then the request; empty values and ones with spaces, quotes or equals
    signs are JSON-quoted."""
    line = format_access_text(RECORD, 1_700_000_000.0, 7)
    assert line.startswith("2023-11-14T22:13:30.500Z event=access pid=7 ")
    fields = dict(part.split("=", 1) for part in shlex.split(line.split(" ", 1)[1]))
    assert {
        "event": "access",
        "pid": "7",
        "client": "127.0.0.1:5000",
        "host": "example.test",
        "method": "GET",
        "target": '/a b"c=d',
        "status": "200",
        "bytes": "12",
        "duration_ms": "1.234",
        "queue": "api",
        "group": "",
        "upstream_ms": "0.500",
    } == fields
    assert 'target="/a b\\"c=d"' in line
    assert json.loads(line.split("target=", 1)[1].split(" status=")[0]) == '/a b"c=d'


def test_the_text_log_keeps_error_lines_and_ends_each_line() -> None:
    """Lines already formatted pass through; every line ends with a newline."""
    text = format_log_text(["already a line", RECORD], 0.0, 7)
    lines = text.split("\n")
    assert ["already a line", ""] == [lines[0], lines[-1]]
    assert 3 == len(lines)
