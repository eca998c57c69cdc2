"""slowhttptest against a running listener (opt-in: ORCH_SLOW=1; each run takes tens of seconds).

Slowloris (-H), slow body (-B) and slow read (-X): the listener cuts the connections at its timers,
slowhttptest reports the service available throughout, and a control client keeps being served fast.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time

import pytest

from tests.integration.listener.conftest import Site
from tests.support.controller import http

pytestmark = [pytest.mark.integration]
needs_slowhttptest = pytest.mark.skipif(
    shutil.which("slowhttptest") is None, reason="slowhttptest is not installed"
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _availability(output: str) -> tuple[list[str], str]:
    """slowhttptest's "service available" verdicts and its exit status, colour codes removed."""
    plain = _ANSI.sub("", output)
    verdicts = re.findall(r"service available:\s+(\S+)", plain)
    status = re.search(r"Exit status:\s*(.+)", plain)
    return verdicts, status.group(1).strip() if status else ""


def test_the_availability_reading_sees_through_colour_codes() -> None:
    """The parse of slowhttptest's output (it colours the verdicts) finds a NO."""
    out = (
        "\x1b[1;32mservice available:\x1b[1;32m   \x1b[1;32mYES\x1b[0m\n"
        "\x1b[1;31mservice available:\x1b[1;31m   \x1b[1;31mNO\x1b[0m\n"
        "\x1b[0mExit status: \x1b[1;32mHit test time limit\x1b[0m\n"
    )
    assert (["YES", "NO"], "Hit test time limit") == _availability(out)


def _attack(site: Site, mode: list[str], seconds: int) -> tuple[str, list[float]]:
    latencies: list[float] = []
    stop = threading.Event()

    def control() -> None:
        while not stop.is_set():
            start = time.monotonic()
            answer = http(site.port, "/echo/control", timeout=5)
            if answer.status == 200:
                latencies.append(time.monotonic() - start)
            time.sleep(0.05)

    thread = threading.Thread(target=control)
    thread.start()
    try:
        result = subprocess.run(
            [
                "slowhttptest",
                *mode,
                "-c",
                "300",
                "-r",
                "100",
                "-l",
                str(seconds),
                "-u",
                f"http://127.0.0.1:{site.port}/echo/attack",
                "-p",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        stop.set()
        thread.join(10)
    return result.stdout + result.stderr, latencies


@pytest.mark.slow
@needs_slowhttptest
@pytest.mark.parametrize(
    "mode",
    [
        ["-H", "-i", "10"],
        ["-B", "-i", "10", "-s", "8192"],
        ["-X", "-k", "3", "-n", "5", "-w", "10", "-y", "20", "-z", "32"],
    ],
    ids=["slowloris", "slow-body", "slow-read"],
)
def test_slow_attacks_leave_the_service_available(site: Site, mode: list[str]) -> None:
    """The service stays available and the control client's p99 stays under 100 ms."""
    output, latencies = _attack(site, mode, 20)
    verdicts, exit_status = _availability(output)
    # At least two snapshots (start and end), every one YES; the attack ran its time or the
    # listener cut every connection it held. A refused connection ends it at once instead, with
    # the YES of its first snapshot only.
    assert len(verdicts) >= 2, output[-2000:]
    assert set(verdicts) == {"YES"}, output[-2000:]
    assert exit_status in {"Hit test time limit", "No open connections left"}, output[-2000:]
    assert latencies
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else max(latencies)
    assert p99 < 0.1, f"control p99 {p99 * 1000:.1f} ms"
