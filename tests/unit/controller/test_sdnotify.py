"""The sd_notify messages the controller sends: the watchdog cadence (sd_watchdog_enabled(3)'s
rules, in virtual time) and RELOADING=1/READY=1 around a reload, read from a datagram socket the
test binds as NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from orchestrator.clock import FakeClock
from orchestrator.controller.sdnotify import SdNotify, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path: object) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket standing in for systemd's ``/run/systemd/notify``."""
    path = os.path.join(str(tmp_path), "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        yield path, sock


def _received(sock: socket.socket) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    while True:
        try:
            data = sock.recv(4096).decode()
        except BlockingIOError:
            return out
        out.append(dict(line.split("=", 1) for line in data.splitlines()))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
    ids=["unset", "half-of-usec", "our-pid", "another-pid", "zero", "garbage"],
)
def test_the_watchdog_is_expected_as_sd_watchdog_enabled_says(
    env: dict[str, str], expected: float | None
) -> None:
    """WATCHDOG_USEC set and WATCHDOG_PID unset or ours: ping at half the interval; else none."""
    assert expected == watchdog_interval_s(env, 4242)


def test_watchdog_pings_come_at_half_the_interval(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """The first turn of the loop pings; the next ping is due WATCHDOG_USEC/2 later, not before."""
    path, sock = notify_socket
    sd = SdNotify({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, pid=4242)
    clock = FakeClock()
    assert sd.watchdog(clock.monotonic())
    assert 1.0 == sd.watchdog_due_in(clock.monotonic())
    clock.advance(0.999)
    assert not sd.watchdog(clock.monotonic())
    clock.advance(0.001)
    assert sd.watchdog(clock.monotonic())
    assert [{"WATCHDOG": "1"}, {"WATCHDOG": "1"}] == _received(sock)


def test_no_watchdog_means_no_pings_and_no_deadline(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """Without WATCHDOG_USEC the loop is not woken for pings and none are sent."""
    path, sock = notify_socket
    sd = SdNotify({"NOTIFY_SOCKET": path}, pid=4242)
    assert sd.watchdog_due_in(0.0) is None
    assert not sd.watchdog(0.0)
    assert [] == _received(sock)


def test_a_reload_is_bracketed_by_reloading_and_ready(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """After start-up: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC µs, systemd 253's
    notify-reload), once however often a reload announces itself, then READY=1."""
    path, sock = notify_socket
    sd = SdNotify({"NOTIFY_SOCKET": path}, pid=4242)
    sd.ready("running")
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    sd.reloading()
    sd.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    sd.reloaded("running manifest abc")
    ready, reloading, done = _received(sock)
    assert "1" == ready["READY"]
    assert "1" == reloading["RELOADING"]
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert {"READY": "1", "STATUS": "running manifest abc"} == done


def test_nothing_is_announced_before_the_first_ready(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """A reload during start-up is part of the start: no RELOADING=1 (and no READY=1 for it),
    which would tell systemd the service is up before it converged."""
    path, sock = notify_socket
    sd = SdNotify({"NOTIFY_SOCKET": path}, pid=4242)
    sd.reloading()
    sd.reloaded("x")
    assert [] == _received(sock)


def test_an_abstract_socket_name_is_reached(tmp_path: object) -> None:
    """NOTIFY_SOCKET=@name is an abstract socket (systemd uses them for user managers)."""
    name = f"orch-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        SdNotify({"NOTIFY_SOCKET": "@" + name}, pid=1).send("WATCHDOG=1")
        assert b"WATCHDOG=1" == sock.recv(64)
