"""The real Wine 8 httpapi.dll driven through _ffi/RealBinding by Windows CPython (marker wine).

Each test runs a scenario script under Wine and checks its JSON events and, where there is traffic,
what a Linux http.client on 127.0.0.1 receives. Functions that abort under Wine are never called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.wine.scenarios.lifecycle_program import WINE8_EXPECTED

pytestmark = [pytest.mark.wine, pytest.mark.timeout(180)]

ERROR_OPERATION_ABORTED = 995


def test_lifecycle_answers_match_the_recorded_wine8_table(
    windows_python: Callable[..., Any], free_port: Any
) -> None:
    """Every call of the lifecycle probe gets the result WINE8_EXPECTED records (and the fake gives)."""
    proc = windows_python("lifecycle", free_port())
    caps = proc.expect("capabilities")
    assert ("8.0", 1) == (caps["wine"], caps["urls_per_group"])
    assert 0 == proc.finish()
    steps = {e["name"]: e["code"] for e in proc.events if e["event"] == "step"}
    assert WINE8_EXPECTED == steps
    assert "done" == proc.events[-1]["event"]


def test_longest_prefix_routing_across_two_queues(
    windows_python: Callable[..., Any], free_port: Any, http_request: Callable[..., Any]
) -> None:
    """/app/ (ctx 11) and /app/deep/ (ctx 21) on two queues; removal falls back; explicit host."""
    port, port2 = free_port(), free_port()
    proc = windows_python("routing", port, port2)
    ready = proc.expect("ready")
    assert {"a": 1, "b": 1, "c": 1} == ready["groups"]

    def route(path: str, host: str | None = None, on: int = port) -> tuple[object, object]:
        reply = http_request(on, path, host=host)
        assert 200 == reply.status, f"{path}: {reply}"
        body = reply.json()
        assert body["queue"] == reply.headers["X-Queue"]
        return body["queue"], body["context"]

    assert ("a", 11) == route("/app/x")
    assert ("b", 21) == route("/app/deep/y")
    assert ("a", 11) == route("/app")
    assert ("a", 11) == route("/app/x", host="anything.example")
    assert ("c", 31) == route("/", host="localhost", on=port2)
    proc.send("remove-deep")
    assert 0 == proc.expect("removed")["groups"]
    assert ("a", 11) == route("/app/deep/y")
    # No prefix matches: Windows would answer 404; Wine's http.sys never answers.
    assert http_request(port, "/elsewhere/", timeout=2).timed_out
    proc.send("stop")
    disposed = proc.expect("disposed")
    assert [False, False, False] == disposed["alive"]
    assert 0 == proc.finish()
    ended = {e["queue"]: e["code"] for e in proc.events if e["event"] == "receiver-ended"}
    assert {
        "a": ERROR_OPERATION_ABORTED,
        "b": ERROR_OPERATION_ABORTED,
        "c": ERROR_OPERATION_ABORTED,
    } == ended


def test_worker_process_serves_an_inherited_queue_handle(
    windows_python: Callable[..., Any], free_port: Any, http_request: Callable[..., Any]
) -> None:
    """A second python.exe receives on the controller's inherited handle and answers Linux."""
    port = free_port()
    proc = windows_python("controller", port, 2)
    controller = proc.expect("controller-ready")
    worker = proc.expect("worker-ready")
    assert worker["handle"] == controller["handle"]
    assert worker["pid"] != controller["pid"]
    first = http_request(port, "/svc/hello")
    second = http_request(port, "/svc/echo", method="POST", body=b"payload")
    assert (201, 201) == (first.status, second.status)
    assert ("Created", "application/json") == (first.reason, first.headers["Content-Type"])
    for reply, path in ((first, "/svc/hello"), (second, "/svc/echo")):
        body = reply.json()
        assert (worker["pid"], 77, path) == (body["pid"], body["context"], body["path"])
    assert "payload" == second.json()["body"]
    assert 0 == proc.expect("worker-exited")["code"]
    assert 0 == proc.finish()
