"""Catalogue B19 and B20 against a real listener: many idle connections, and running out of fds.

The clients live in this test process (its descriptor limit raised to the hard limit). Every wait
is bounded; the listener's memory and CPU are read from ``/proc``.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import time
from collections.abc import Iterator

import pytest

from tests.integration.listener.conftest import Site
from tests.support.controller import http, wait_until

pytestmark = pytest.mark.integration

IDLE_S = 8  # capacity_manifest's idleConnection and headerWait
REQUEST = b"GET /echo/idle HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def many_fds() -> Iterator[int]:
    """This process may open as many descriptors as its hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _listener_pid(site: Site) -> int:
    listener = site.ctl.state()["listener"]
    assert isinstance(listener, dict)
    return int(str(listener["pid"]))


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def _fresh_p99_ms(port: int, count: int = 200) -> float:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        assert 200 == http(port, "/echo/fresh", timeout=5).status
        latencies.append((time.perf_counter() - start) * 1000)
    return statistics.quantiles(latencies, n=100)[98]


def test_ten_thousand_idle_connections_stay_small_and_close_at_the_idle_timeout(
    capacity_site: Site, many_fds: int
) -> None:
    """B19: 10,000 keep-alive connections that each made one request: listener RSS under 150 MB
    (the catalogue's bound; about 55 MB here), fresh requests meanwhile p99 under 50 ms, and every
    idle connection closed by the listener at its idle timeout."""
    count = min(10_000, many_fds - 200)
    pid = _listener_pid(capacity_site)
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", capacity_site.port), timeout=10)
            socks.append(sock)
            sock.sendall(REQUEST)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200"), len(socks)
        last_answered = time.monotonic()
        rss = _rss_mib(pid)
        p99 = _fresh_p99_ms(capacity_site.port)
        assert rss * 1.048576 < 150, f"listener RSS {rss:.1f} MiB with {count} idle connections"
        assert p99 < 50, f"fresh request p99 {p99:.1f} ms"
        # Idle timer plus the once-a-second sweep; the first ones closed long before.
        deadline = last_answered + IDLE_S + 3
        while time.monotonic() < deadline:
            if all(_closed_by_peer(s) for s in socks[-100:]):
                break
            time.sleep(0.2)
        open_ones = [i for i, s in enumerate(socks) if not _closed_by_peer(s)]
        assert [] == open_ones[:10], f"{len(open_ones)} of {count} still open"
    finally:
        for sock in socks:
            sock.close()


def test_out_of_descriptors_the_listener_pauses_instead_of_spinning_and_recovers(
    scarce_site: Site, many_fds: int
) -> None:
    """B20: ``session.listener.openFiles: 256`` is the listener's RLIMIT_NOFILE; 1,000 clients
    connect: it holds at most 256 descriptors, does not spin on the listening socket (under 20 % of
    a core over 5 s), says why it stopped accepting, and serves again once the clients are gone."""
    pid = _listener_pid(scarce_site)
    with open(f"/proc/{pid}/limits", encoding="ascii") as fh:
        nofile = next(line.split()[3:5] for line in fh if line.startswith("Max open files"))
    assert ["256", "256"] == nofile
    clients: list[socket.socket] = []
    try:
        for _ in range(1000):
            clients.append(socket.create_connection(("127.0.0.1", scarce_site.port), timeout=10))
        # The listener says it stopped accepting (out of descriptors) before anything is measured.
        wait_until(
            lambda: scarce_site.ctl.events("listener_accept_failed"), 15, "the accept failure"
        )
        assert len(os.listdir(f"/proc/{pid}/fd")) <= 256
        start_cpu, start = _cpu_s(pid), time.monotonic()
        time.sleep(5)  # the measurement window: CPU used while out of descriptors
        share = (_cpu_s(pid) - start_cpu) / (time.monotonic() - start)
        assert share < 0.2, f"listener used {share:.0%} of a core while out of descriptors"
    finally:
        for client in clients:
            client.close()
    wait_until(
        lambda: http(scarce_site.port, "/echo/after", timeout=2).status == 200,
        15,
        "the listener to serve again",
    )
    assert "Too many open files" == scarce_site.ctl.events("listener_accept_failed")[0]["error"]
