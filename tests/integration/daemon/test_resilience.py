"""Failure and limits, end to end: OOM and pids limits, TLS, periodic recycling, a killed listener,
draining a removed app, `orchestrator down`, and no process left behind a SIGKILL'ed controller."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from orchestrator.cli import main
from tests.support.controller import (
    ANY_PORT,
    REPO,
    Controller,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration
root_only = pytest.mark.root


def _session(names: Names, extra: str = "") -> str:
    listener = f"  listener: {{user: {names.listener_user}}}\n" if names.listener_user else ""
    return f"apiVersion: orchestrator/v1\nsession:\n  name: test\n{extra}{listener}"


def _without_hello(manifest: str, names: Names) -> str:
    """The manifest with the hello queue, URL group and pool removed (blocks of lines)."""
    out, skipping = [], False
    for line in manifest.splitlines():
        if line.strip().startswith(f"{names.hello}:"):
            skipping = line.startswith("  ") and not line.startswith("   ")
            if line.strip() == f"{names.hello}: {{}}":
                skipping = False
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


@root_only
def test_a_memory_hog_is_killed_inside_its_pool_and_reported_as_oom(
    world_dir: str, names: Names
) -> None:
    """limits.memory 64MiB: the kernel kills the hog in its own cgroup; the exit says out of
    memory, not crash; the other app keeps serving."""
    hog = f'[{sys.executable}, -c, "x = []\\nwhile True: x.append(bytearray(10**6))"]'
    manifest = quickstart_manifest(ANY_PORT, names, hello_command=hog, health=False).replace(
        "    rapidFailProtection: {maxCrashes: 3, interval: 1m}\n",
        "    rapidFailProtection: {enabled: false}\n    limits: {memory: 64MiB}\n",
    )
    with running_controller(world_dir, manifest, converge=False) as ctl:
        wait_until(lambda: any(e.get("oom") for e in ctl.events("process_exit")), 30, "an OOM kill")
        exit_event = next(e for e in ctl.events("process_exit") if e.get("oom"))
        assert "out of memory" in str(exit_event["exit"])
        assert 200 == ctl.get("/notes/").status


@root_only
def test_a_fork_bomb_is_capped_by_its_pids_limit(world_dir: str, names: Names) -> None:
    """limits.pids 20: forks beyond it fail inside the pool; the controller and the other app are
    unaffected; stopping the pool leaves nothing behind."""
    bomb = (
        "import os, sys, time\\nn = 0\\nfor _ in range(200):\\n    try:\\n"
        "        pid = os.fork()\\n    except OSError:\\n        break\\n"
        "    if pid == 0:\\n        time.sleep(60); os._exit(0)\\n    n += 1\\n"
        "print(f'FORKED {n}', flush=True)\\ntime.sleep(60)\\n"
    )
    command = f'[{sys.executable}, -c, "{bomb}"]'
    manifest = quickstart_manifest(ANY_PORT, names, hello_command=command, health=False).replace(
        "    rapidFailProtection: {maxCrashes: 3, interval: 1m}\n",
        "    limits: {pids: 20}\n",
    )
    with running_controller(world_dir, manifest, converge=False) as ctl:
        line = wait_until(
            # The worker's output is captured: a line of its own in an `output` record.
            lambda: next(
                (x for e in ctl.events("output") if (x := str(e["line"])).startswith("FORKED")),
                None,
            ),
            30,
            "the fork bomb's report",
        )
        assert int(str(line).split()[1]) < 20
        assert 200 == ctl.get("/notes/").status


def test_https_prefixes_are_served_with_their_certificate(world_dir: str, names: Names) -> None:
    """An https:// prefix on the TLS address, both on port 0: the listener serves the binding's
    certificate on the port the controller bound; TLS 1.2+, ALPN http/1.1, the app answers."""
    cert, key = os.path.join(world_dir, "cert.pem"), os.path.join(world_dir, "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
    )
    manifest = (
        quickstart_manifest(ANY_PORT, names)
        .replace(f"http://127.0.0.1:{ANY_PORT}/", f"https://127.0.0.1:{ANY_PORT}/")
        .replace(
            "session:\n  name: test\n",
            f"session:\n  name: test\n  tls: [{{address: '127.0.0.1:{ANY_PORT}', certFile: {cert},"
            f" keyFile: {key}}}]\n",
        )
    )
    with running_controller(world_dir, manifest, converge=True) as ctl:
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        context.set_alpn_protocols(["http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", ctl.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert "http/1.1" == tls.selected_alpn_protocol()
            tls.sendall(b"GET /hello/tls HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"path": "/hello/tls"' in answer
        assert ctl.state()["listener"]


def test_a_periodic_recycle_replaces_the_processes_without_failing_requests(
    world_dir: str, names: Names
) -> None:
    """recycling.time 3s: new processes start, then the old ones stop; requests keep succeeding."""
    manifest = quickstart_manifest(ANY_PORT, names).replace(
        "    rapidFailProtection: {maxCrashes: 3, interval: 1m}\n",
        "    recycling: {time: 3s}\n",
    )
    with running_controller(world_dir, manifest) as ctl:
        first = ctl.pids(names.hello)

        def recycled() -> bool:
            return any(e.get("pool") == names.hello for e in ctl.events("recycle_done"))

        # Requests back to back until the recycle is done, and a few after it.
        statuses = []
        deadline = time.monotonic() + 20
        while not recycled():
            assert time.monotonic() < deadline, "no recycle within 20 s"
            statuses.append(ctl.get("/hello/", timeout=5).status)
        statuses += [ctl.get("/hello/", timeout=5).status for _ in range(20)]
        assert set(statuses) == {200}
        assert first.isdisjoint(ctl.pids(names.hello))


def test_a_killed_listener_is_restarted_and_clients_only_wait(world_dir: str, names: Names) -> None:
    """kill -9 of the listener: the ports stay the controller's, a request made at once is served."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (pid,) = ctl.state()["listener"]["pids"]  # type: ignore[index]
        os.kill(pid, signal.SIGKILL)
        start = time.monotonic()
        answer = ctl.get("/hello/", timeout=10)
        assert 200 == answer.status
        assert time.monotonic() - start < 2.0
        wait_until(lambda: pid not in ctl.state()["listener"]["pids"], 5, "a new listener")  # type: ignore[index, operator]


def test_removing_an_app_lets_its_requests_in_flight_finish(world_dir: str, names: Names) -> None:
    """An app removed from the manifest while a slow request runs: that request gets its 200."""
    slow = quickstart_manifest(ANY_PORT, names, hello_command='[orchestrator, worker, "echo:app"]')
    with running_controller(
        world_dir, slow, apps_from=os.path.join(REPO, "tests", "support", "apps")
    ) as ctl:
        result: list[int] = []
        thread = threading.Thread(
            target=lambda: result.append(ctl.get("/hello/slow/2", timeout=15).status)
        )
        thread.start()
        wait_until(lambda: "ECHO slow /hello/slow/2" in ctl.log(), 10, "the slow request to run")
        ctl.write("site.yaml", _without_hello(slow, names))
        thread.join(20)
        assert [200] == result
        wait_until(lambda: not ctl.pids(names.hello), 20, "the removed app to stop")


def test_down_stops_everything_and_the_controller(
    world_dir: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    """orchestrator down: the controller drains, stops its processes and exits 0."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        pids = ctl.pids(names.hello) | ctl.pids(names.notes)
        assert 0 == main(["down", "--run-dir", ctl.run_dir])
        assert "stopped" in capsys.readouterr().out
        assert 0 == ctl.proc.wait(timeout=30)
        from tests.integration.daemon.test_controller import alive

        assert not any(alive(p) for p in pids)


@root_only
def test_no_process_of_a_pool_user_survives_a_sigkilled_controller(
    world_dir: str, names: Names
) -> None:
    """SIGKILL of the controller: within 1 s, `ps -u` of every pool user and the listener shows nothing."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        users = {str(w["user"]) for w in ctl.workers()} | {str(ctl.state()["listener"]["user"])}  # type: ignore[index]
        os.kill(ctl.proc.pid, signal.SIGKILL)

        def none_left() -> bool:
            out = subprocess.run(
                ["ps", "-o", "stat=", "-u", ",".join(users)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            return all("Z" in s for s in out)

        wait_until(none_left, 1.0, f"no process of {sorted(users)}")


def test_two_listener_processes_share_the_ports(world_dir: str, names: Names) -> None:
    """session.listener.processes 2: two processes, one SO_REUSEPORT socket each, both serving."""
    manifest = quickstart_manifest(ANY_PORT, names).replace(
        "session:\n  name: test\n", "session:\n  name: test\n  listener: {processes: 2}\n"
    )
    if names.listener_user:
        manifest = manifest.replace("  listener: {processes: 2}\n", "").replace(
            f"  listener: {{user: {names.listener_user}}}\n",
            f"  listener: {{user: {names.listener_user}, processes: 2}}\n",
        )
    with running_controller(world_dir, manifest) as ctl:
        pids = ctl.state()["listener"]["pids"]  # type: ignore[index]
        assert 2 == len(pids)  # type: ignore[arg-type]
        # One address, one port, although each process has its own socket (port 0: the first
        # socket chose it, the second joined it).
        assert [f"127.0.0.1:{ctl.port}"] == ctl.state()["listener"]["addresses"]  # type: ignore[index]
        for _ in range(200):
            assert 200 == ctl.get("/hello/").status
        wait_until(
            lambda: len({e["pid"] for e in ctl.events("access")}) == 2,
            5,
            "access lines from both listener processes",
        )


def test_a_stopped_worker_is_found_and_replaced(world_dir: str, names: Names) -> None:
    """Catalogue D23 (SIGSTOP): a process stopped for health interval x misses (2 s x 3) is
    stopped and replaced; requests that waited in the queue meanwhile get their 200 from the new
    process, and the other app answers throughout."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        (hung,) = ctl.pids(names.hello)
        os.kill(hung, signal.SIGSTOP)
        stopped_at = time.monotonic()
        waited: list[int] = []
        waiting = [
            threading.Thread(target=lambda: waited.append(ctl.get("/hello/", timeout=40).status))
            for _ in range(3)
        ]
        for t in waiting:
            t.start()
        others = []
        while not any(e.get("pid") == hung for e in ctl.events("process_hung")):
            assert time.monotonic() - stopped_at < 20, "the stopped process was not noticed"
            others.append(ctl.get("/notes/", timeout=5).status)
            time.sleep(0.2)
        detected = time.monotonic() - stopped_at
        for t in waiting:
            t.join(40)
        assert [200, 200, 200] == waited
        assert set(others) == {200}
        assert 6 <= detected < 10, detected  # 2 s x 3 misses, then the next check
        wait_until(
            lambda: bool(ctl.pids(names.hello) - {hung}) and hung not in ctl.pids(names.hello),
            20,
            "a replacement, and the stopped process gone",
        )
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)
        assert 200 == ctl.get("/hello/").status


def test_a_worker_that_stops_answering_fails_its_health_check_and_is_replaced(
    world_dir: str, names: Names
) -> None:
    """A hang the kernel cannot see (the process runs and accepts but never replies): three missed
    health checks make the pool unhealthy, a new process starts and becomes ready, the hung one is
    stopped (SIGKILL after shutdownTimeLimit, 5 s here). The request that hung it, a POST, is
    answered 502 (never retried: not idempotent); GETs stuck behind it are sent again, once, to the
    new process and get 200; the other app answers throughout."""
    manifest = quickstart_manifest(
        ANY_PORT, names, hello_command='[orchestrator, worker, "echo:app"]'
    ).replace('"notes:app"', '"hello:app"')  # tests/support/apps has no notes app
    with running_controller(
        world_dir, manifest, apps_from=os.path.join(REPO, "tests", "support", "apps")
    ) as ctl:
        (hung,) = ctl.pids(names.hello)
        results: dict[str, int] = {}

        def request(key: str, method: str, path: str) -> None:
            results[key] = ctl.get(path, method=method, timeout=60).status

        poison = threading.Thread(target=request, args=("poison", "POST", "/hello/freeze"))
        poison.start()
        wait_until(lambda: "ECHO frozen /hello/freeze" in ctl.log(), 10, "the worker to freeze")
        frozen_at = time.monotonic()
        stuck = [
            threading.Thread(target=request, args=(f"get{i}", "GET", f"/hello/{i}"))
            for i in range(3)
        ]
        for t in stuck:
            t.start()
        others = []
        while not any(e.get("pool") == names.hello for e in ctl.events("pool_unhealthy")):
            assert time.monotonic() - frozen_at < 20, "the hang was not detected"
            others.append(ctl.get("/notes/", timeout=5).status)
            time.sleep(0.2)
        for t in [poison, *stuck]:
            t.join(60)
        assert {"poison": 502, "get0": 200, "get1": 200, "get2": 200} == results
        assert set(others) == {200}
        wait_until(
            lambda: bool(ctl.pids(names.hello) - {hung}) and hung not in ctl.pids(names.hello),
            20,
            "a replacement, and the hung process gone",
        )
        assert any(e.get("pool") == names.hello for e in ctl.events("recycle_done"))
        assert 200 == ctl.get("/hello/").status


def _wrk_errors(report: str) -> dict[str, int]:
    """wrk's error counts: connect, read, write, timeout (socket errors) and non-2xx/3xx."""
    counts = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    if socket_errors:
        for key, value in zip(
            ("connect", "read", "write", "timeout"), socket_errors.groups(), strict=True
        ):
            counts[key] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if non2xx:
        counts["non2xx"] = int(non2xx.group(1))
    return counts


def test_kill_9_of_one_worker_under_load_costs_at_most_its_requests_in_flight(
    world_dir: str, names: Names
) -> None:
    """Catalogue C22: kill -9 one of 4 hello processes under wrk (2 threads, 50 connections,
    6 s): no connect error (the queue socket is the controller's), failures at most what that
    process had in flight (its 8 threads), a replacement ready within 2 s on a loaded machine."""
    manifest = quickstart_manifest(ANY_PORT, names).replace(
        'command: [orchestrator, worker, "hello:app"]\n',
        'command: [orchestrator, worker, "hello:app"]\n    processes: 4\n',
    )
    with running_controller(world_dir, manifest) as ctl:
        wait_until(lambda: len(ctl.pids(names.hello)) == 4, 30, "four hello processes")
        before = ctl.pids(names.hello)
        victim = min(before)
        url = f"http://127.0.0.1:{ctl.port}/hello/x"
        accepted_before = ctl.accepted()
        output: list[str] = []
        load = threading.Thread(
            target=lambda: output.append(
                subprocess.run(
                    ["wrk", "-t2", "-c50", "-d6s", "--latency", url],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=60,
                ).stdout
            )
        )
        load.start()
        # Under load: the listener has taken wrk's 50 connections (its counters, sent every second).
        wait_until(lambda: ctl.accepted() >= accepted_before + 50, 10, "wrk's connections")
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: len(ctl.pids(names.hello) - {victim}) == 4, 5, "a replacement process")
        replaced_in = time.monotonic() - killed_at
        load.join(60)
        report = output[0]
        errors = _wrk_errors(report)
        assert re.search(r"(\d+) requests in", report), report
        assert 0 == errors["connect"], report
        assert errors["read"] + errors["write"] + errors["timeout"] + errors["non2xx"] <= 8, report
        # From the exit the controller saw to the replacement's READY=1 (it accepts from then on):
        # 0.1 s of restart backoff, then a Python start on two cores wrk and the listener keep busy
        # (about 1 s here; 0.2 s without load, see test_a_killed_worker_is_replaced_within_a_second).
        exited = next(e for e in ctl.events("process_exit") if e.get("pid") == victim)
        new_pid = (ctl.pids(names.hello) - before).pop()
        ready = next(e for e in ctl.events("process_ready") if e.get("pid") == new_pid)
        ready_in = float(str(ready["ts"])) - float(str(exited["ts"]))
        assert ready_in < 2.0, (ready_in, replaced_in)
        assert 200 == ctl.get("/hello/").status


def _controller_figures(pid: int) -> tuple[int, int, list[str]]:
    """The controller's open fds, RSS in KiB, and the states of its zombie children."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    children = subprocess.run(
        ["ps", "-o", "pid=,stat=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    zombies = [line for line in children if "Z" in line.split()[1]]
    return fds, rss, zombies


def _fd_floor(pid: int, samples: int = 20) -> int:
    """The fewest fds the controller holds over about a second of samples.

    A pool restarting every few ms always has a process or two starting or exiting, each with its
    pidfd and its two output pipes open for a moment: one sample can catch several of those. A leak
    raises the floor; those come and go.
    """
    counts = []
    for _ in range(samples):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.05)
    return min(counts)


def _restarts(ctl: Controller, pool: str) -> int:
    pools = ctl.state()["pools"]
    assert isinstance(pools, dict)
    return int(pools[pool]["restarts"])


def test_five_hundred_restarts_leave_no_zombie_and_no_leak(world_dir: str, names: Names) -> None:
    """Catalogue C28: a pool that exits at once, restarted 500 times (rapid-fail off, 5-10 ms
    backoff): no zombie stays under the controller, its fd count within 5 and its RSS within 10 % of what
    they were after the first 100 restarts; the other app keeps serving."""
    manifest = quickstart_manifest(
        ANY_PORT, names, hello_command='["/bin/sh", "-c", "exit 1"]', health=False
    ).replace(
        "    rapidFailProtection: {maxCrashes: 3, interval: 1m}\n",
        "    rapidFailProtection: {enabled: false}\n"
        "    restart: {initialBackoff: 5ms, maxBackoff: 10ms}\n",
    )
    with running_controller(world_dir, manifest, converge=False) as ctl:
        # The rest of the site first: with converge=False the notes pool and the listener may still
        # be starting after 100 restarts, and each process they add holds a pidfd and two output
        # pipes in the controller, which the "after" figure would count as a leak.
        wait_until(lambda: 200 == ctl.get("/notes/").status, 60, "the notes pool to serve")
        wait_until(lambda: _restarts(ctl, names.hello) >= 100, 60, "100 restarts")
        fds_before, rss_before, _ = _controller_figures(ctl.proc.pid)
        fds_before = _fd_floor(ctl.proc.pid)
        wait_until(lambda: _restarts(ctl, names.hello) >= 500, 120, "500 restarts")
        fds_after, rss_after, zombies = _controller_figures(ctl.proc.pid)
        fds_after = _fd_floor(ctl.proc.pid)
        # A child that exited this instant is a zombie until the controller reaps it (it restarts
        # one every few ms): a leak is a zombie that stays, so every one seen must go.
        seen = {line.split()[0] for line in zombies}
        wait_until(
            lambda: not seen & {line.split()[0] for line in _controller_figures(ctl.proc.pid)[2]},
            5,
            f"the controller to reap {sorted(seen)}",
        )
        assert abs(fds_after - fds_before) <= 5, (fds_before, fds_after)
        assert abs(rss_after - rss_before) <= rss_before * 0.10, (rss_before, rss_after)
        assert 200 == ctl.get("/notes/").status
