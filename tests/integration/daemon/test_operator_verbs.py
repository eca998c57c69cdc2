"""Operator verbs against a real controller: ``restart`` under load, ``reload [--force]``, and
``status`` telling the truth (a rejected manifest's errors first, the rejection gone once fixed, a
URL group whose port another process holds shown as failing, with exit code 3)."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest

from orchestrator.cli.main import main
from tests.support.controller import (
    ANY_PORT,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration

#: Counts non-2xx answers across wrk's threads (each runs its own Lua state) and prints the
#: socket errors; wrk's own text shows those lines only when they are non-zero.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, total, e.connect, e.read, e.write, e.timeout))
end
"""


def _wrk_result(output: str) -> dict[str, int]:
    found = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    assert found, output
    return {k: int(v) for k, v in (pair.split("=") for pair in found.group(1).split())}


@pytest.mark.skipif(not os.path.exists("/usr/bin/wrk"), reason="wrk is not installed (.ci/run)")
def test_restart_under_load_fails_no_request_and_replaces_every_pid(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """wrk (2 threads, 16 connections, 8 s) runs while ``restart`` recycles the pool: no answer
    is non-2xx, no socket error, and the pool ends with none of its old pids."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        old = ctl.pids(names.hello)
        assert old
        script = os.path.join(world_dir, "count.lua")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(WRK_SCRIPT)
        before = ctl.accepted()
        url = f"http://127.0.0.1:{ctl.port}/hello/"
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c16", "-d8s", "-s", script, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: ctl.accepted() >= before + 16, 10, "wrk's connections")
            assert 0 == main(["restart", names.hello, "--run-dir", ctl.run_dir])
            assert wrk.poll() is None, "the restart must finish while the load still runs"
            output, _ = wrk.communicate(timeout=60)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
        result = _wrk_result(output)
        assert result["requests"] > 0, output
        assert {"non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0} == {
            k: result[k] for k in ("non2xx", "connect", "read", "write", "timeout")
        }, output
        new = ctl.pids(names.hello)
        assert new
        assert not old & new
        printed = capsys.readouterr().out
        assert all(str(p) in printed for p in old | new), printed


def test_restart_of_an_unknown_pool_is_one_line_naming_the_pools(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown pool changes nothing: exit 1 and one line that lists the pools there are."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        pids = ctl.pids(names.hello)
        assert 1 == main(["restart", "nosuch", "--run-dir", ctl.run_dir])
        err = capsys.readouterr().err.strip()
        assert 1 == len(err.splitlines()), err
        assert "nosuch" in err
        assert names.hello in err
        assert names.notes in err
        assert pids == ctl.pids(names.hello)


def _unknown_queue(manifest: str, names: Names) -> str:
    """The user's edit: the notes group and pool pointed at a queue that does not exist (two
    errors), which leaves queue notes used by nothing (a warning, located before them)."""
    edited = manifest.replace(f"    queue: {names.notes}\n", "    queue: nosuch\n")
    assert edited.count("queue: nosuch") == 2
    return edited


def test_status_shows_a_rejected_manifests_errors_first_and_drops_the_line_once_fixed(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edit to an unknown queue: text status lists the error (not the warning the same edit
    causes), counts the warning and exits 3; once the file is fixed and applied, the rejection is
    gone and status exits 0."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        assert 0 == main(["status", "--run-dir", ctl.run_dir])
        capsys.readouterr()
        ctl.write("site.yaml", _unknown_queue(manifest, names))
        wait_until(lambda: ctl.state().get("rejected"), 15, "the rejection")
        assert 3 == main(["status", "--run-dir", ctl.run_dir])
        text = capsys.readouterr().out
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("rejected manifest"))
        assert "(2 errors, 1 warning)" in lines[at], text
        assert ["nosuch", "nosuch"] == [
            re.sub(r'.*unknown queue "(\w+)".*', r"\1", line) for line in lines[at + 1 : at + 3]
        ], text
        assert "warning" not in "\n".join(lines[at + 1 : at + 3]), text
        ctl.write("site.yaml", manifest.replace("interval: 2s", "interval: 3s"))
        wait_until(
            lambda: ctl.state().get("rejected") is None and ctl.converged(), 30, "the fix applied"
        )
        assert 0 == main(["status", "--run-dir", ctl.run_dir])
        assert "rejected manifest" not in capsys.readouterr().out


def test_reverting_a_rejected_edit_clears_the_rejection(world_dir: str, names: Names) -> None:
    """Fixed by undoing the edit (the files are again the manifest in force): nothing is
    re-applied, and status no longer reports the rejection."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        ctl.write("site.yaml", _unknown_queue(manifest, names))
        wait_until(lambda: ctl.state().get("rejected"), 15, "the rejection")
        ctl.write("site.yaml", manifest)
        wait_until(lambda: ctl.state().get("rejected") is None, 15, "the rejection to go")


def test_reload_reports_and_force_retries_a_rejected_manifest(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reload`` on files unchanged since their rejection says so (exit 1); ``--force`` judges
    them again (a fresh manifest_rejected event) and prints the error; after a fix it applies."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest, args=("--no-watch",)) as ctl:
        assert 0 == main(["reload", "--run-dir", ctl.run_dir])
        assert "no changes" in capsys.readouterr().out
        ctl.write("site.yaml", _unknown_queue(manifest, names))
        assert 1 == main(["reload", "--run-dir", ctl.run_dir])
        out = capsys.readouterr().out
        assert "rejected" in out, out
        assert "nosuch" in out, out
        assert 1 == len(ctl.events("manifest_rejected"))
        assert 1 == main(["reload", "--run-dir", ctl.run_dir])
        assert "--force" in capsys.readouterr().out
        assert 1 == main(["reload", "--force", "--run-dir", ctl.run_dir])
        assert "nosuch" in capsys.readouterr().out
        wait_until(lambda: len(ctl.events("manifest_rejected")) == 2, 10, "a fresh rejection")
        ctl.write("site.yaml", manifest.replace("interval: 2s", "interval: 3s"))
        assert 0 == main(["reload", "--run-dir", ctl.run_dir])
        assert "applied manifest" in capsys.readouterr().out


def _group_row(text: str, name: str) -> str:
    """The URL GROUP table's row of group ``name`` in text status."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("URL GROUP"))
    return next(line for line in lines[start:] if line.startswith(name + " "))


def test_status_shows_a_url_group_whose_port_is_taken_as_failing_until_it_is_freed(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another process holds the port of a URL group: status lists the group as failing with the
    reason and exits 3; once the port is free, the controller's retry creates it and status
    exits 0."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    manifest = quickstart_manifest(ANY_PORT, names).replace(
        f'urls: ["http://127.0.0.1:{ANY_PORT}/notes/"]',
        f'urls: ["http://127.0.0.1:{taken}/notes/"]',
    )
    try:
        with running_controller(world_dir, manifest, converge=False) as ctl:

            def group_failing() -> bool:
                groups = ctl.state().get("urlGroups")
                return any(
                    isinstance(g, dict) and g.get("name") == names.notes and g["state"] == "failing"
                    for g in groups or []  # type: ignore[union-attr]
                )

            wait_until(group_failing, 30, "the URL group to fail")
            assert 3 == main(["status", "--run-dir", ctl.run_dir])
            text = capsys.readouterr().out
            row = _group_row(text, names.notes)
            assert "failing" in row, text
            assert str(taken) in row, text
            assert re.search(r"in use|taken", row), row
            holder.close()
            ctl.wait_converged(60)
            assert 0 == main(["status", "--run-dir", ctl.run_dir])
            assert "enabled" in _group_row(capsys.readouterr().out, names.notes)
    finally:
        holder.close()
