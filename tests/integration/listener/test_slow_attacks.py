"""slowhttptest against a running listener (opt-in: ORCH_SLOW=1; each run takes tens of seconds).

Slowloris (-H), slow body (-B) and slow read (-X): the listener cuts the connections at its timers,
slowhttptest reports the service available throughout, and a control client keeps being served fast.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time

import pytest

from tests.integration.listener.conftest import Site
from tests.support.controller import http

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("slowhttptest") is None, reason="slowhttptest is not installed"
    ),
]


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
    assert "service available:   NO" not in output.replace("\t", " "), output[-2000:]
    assert latencies
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else max(latencies)
    assert p99 < 0.1, f"control p99 {p99 * 1000:.1f} ms"
