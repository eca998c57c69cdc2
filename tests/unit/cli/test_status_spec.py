"""``orchestrator status --json --spec``: asks the controller for its applied spec and prints the
reply, a snapshot for ``plan --live``. A one-shot server on a real unix socket stands in for the
controller's admin API, so the test sees the exact request the CLI sends."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator

import pytest

from orchestrator.cli import main
from orchestrator.controller.paths import RunDir
from orchestrator.controller.protocol import decode, encode

SPEC = {"session": {"name": "quickstart"}, "queues": {"hello": {}}}


class _OneShotController:
    """Answers one admin request with ``reply`` and records what was asked."""

    def __init__(self, run_dir: str, reply: dict[str, object]) -> None:
        self.requests: list[dict[str, object]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(RunDir(run_dir).control)
        self._sock.listen(1)
        self._reply = reply
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn, conn.makefile("rb") as stream:
            self.requests.append(decode(stream.readline()))
            conn.sendall(encode({"ok": True, "result": self._reply}))

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def run_dir() -> Iterator[str]:
    # Short: a unix socket path must fit in 108 bytes, which pytest's tmp_path may not.
    path = tempfile.mkdtemp(prefix="orch-spec-")
    yield path
    shutil.rmtree(path)


def test_spec_asks_for_the_spec_and_prints_it(
    run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The request says spec: true, and stdout is the reply, spec included, without ``_at``."""
    controller = _OneShotController(run_dir, {"_at": 1.0, "state": "running", "spec": SPEC})
    try:
        assert 0 == main(["status", "--json", "--spec", "--run-dir", run_dir])
    finally:
        controller.close()
    assert [{"op": "state", "args": {"spec": True}}] == [
        {k: r[k] for k in ("op", "args")} for r in controller.requests
    ]
    assert {"state": "running", "spec": SPEC} == json.loads(capsys.readouterr().out)


def test_plain_status_json_does_not_ask_for_the_spec(
    run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --spec the request carries no spec flag (the document stays small)."""
    controller = _OneShotController(run_dir, {"state": "running"})
    try:
        assert 0 == main(["status", "--json", "--run-dir", run_dir])
    finally:
        controller.close()
    assert [{}] == [r["args"] for r in controller.requests]
    assert {"state": "running"} == json.loads(capsys.readouterr().out)


def test_a_controller_that_sends_no_spec_is_an_error(
    run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A snapshot without a spec would fail later in plan --live; say so now, exit 1."""
    controller = _OneShotController(run_dir, {"state": "running"})
    try:
        assert 1 == main(["status", "--json", "--spec", "--run-dir", run_dir])
    finally:
        controller.close()
    captured = capsys.readouterr()
    assert "" == captured.out
    assert f"the controller at {run_dir} sent no spec" in captured.err


def test_spec_without_json_says_to_add_json(
    run_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The spec is data: --spec alone names the command to type instead, and asks nothing."""
    assert 1 == main(["status", "--spec", "--run-dir", run_dir])
    err = capsys.readouterr().err
    assert "--spec is data for 'plan --live': give --json too" in err
    assert "orchestrator status --json --spec > live.json" in err


def test_status_help_documents_spec(capsys: pytest.CaptureFixture[str]) -> None:
    """``status --help`` names --spec and shows the snapshot example."""
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    out = capsys.readouterr().out
    assert "--spec" in out
    assert "orchestrator status --json --spec > live.json" in out
