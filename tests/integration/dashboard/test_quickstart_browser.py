"""The issue's acceptance view: ``examples/quickstart`` itself (its ports made 0, its names the
test's), its dashboard opened in headless Chromium, shows both pools with their live pids and rate
charts that move under traffic. The 1280x800 screenshot it takes is the one in docs/dashboard.md:
``ORCH_UPDATE_DOCS_SCREENSHOT=1`` runs a minute and a half of traffic first (so the charts have a
shape) and copies it to ``docs/images/dashboard.png``."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.controller import (
    REPO,
    Controller,
    Names,
    quickstart_example,
    running_controller,
    wait_until,
)
from tests.support.dashboard_page import (
    VIEWPORT,
    above_baseline,
    chart_points,
    needs_browser,
    open_dashboard,
    page_pids,
    png_size,
    severe_console_entries,
)

pytestmark = [pytest.mark.integration, needs_browser]

DOCS_SCREENSHOT = Path(REPO) / "docs" / "images" / "dashboard.png"


@pytest.fixture(scope="module")
def controller(module_world: str, module_names: Names) -> Iterator[Controller]:
    """``orchestrator run`` on the quickstart example, converged."""
    with running_controller(module_world, quickstart_example(module_names)) as ctl:
        yield ctl


def send_traffic(ctl: Controller, path: str, count: int) -> None:
    """``count`` requests to ``path`` through the listener, each answered 200."""
    for _ in range(count):
        assert ctl.get(path).status == 200


def test_quickstart_dashboard_shows_both_pools_and_moving_charts(
    browser: Chrome, controller: Controller, module_names: Names, tmp_path: Path
) -> None:
    """The dashboard the quickstart announces (the ``dashboard_serving`` event's URL, as
    ``status`` reports it) shows every pid of both pools, and rate charts that fill and move under
    traffic, with no console error; its screenshot is 1280x800."""
    hello, notes = module_names.hello, module_names.notes
    url = controller.dashboard_url()
    announced = [str(e.get("url")) for e in controller.events("dashboard_serving")]
    assert url in announced
    open_dashboard(browser, url)

    wait_until(lambda: all(controller.pids(p) for p in (hello, notes)), 30, "both pools ready")
    expected = {pool: controller.pids(pool) for pool in (hello, notes)}
    WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: all(page_pids(d, pool) == pids for pool, pids in expected.items()),
        f"the pools table to show {expected}",
    )

    # For the docs, a minute and a half of traffic: charts that show a shape, not a sliver.
    update_docs = os.environ.get("ORCH_UPDATE_DOCS_SCREENSHOT") == "1"
    wanted, timeout_s = (45, 180) if update_docs else (3, 45)
    started = time.monotonic()

    def charts_filled(d: Chrome) -> bool:
        # Uneven bursts that follow a slow wave, so the lines have a shape.
        phase = (time.monotonic() - started) / 20
        send_traffic(controller, "/hello/", 2 + int(6 * (1 + math.sin(phase))))
        send_traffic(controller, "/notes/", 1 + int(3 * (1 + math.cos(phase * 1.7))))
        return all(above_baseline(chart_points(d, "rate", g)) >= wanted for g in (hello, notes))

    WebDriverWait(browser, timeout_s, poll_frequency=0.2).until(
        charts_filled, f"both rate charts to show {wanted} points of traffic"
    )
    before = chart_points(browser, "rate", hello)

    def moved(d: Chrome) -> bool:
        send_traffic(controller, "/hello/", 4)
        return chart_points(d, "rate", hello) != before

    WebDriverWait(browser, 10, poll_frequency=0.2).until(moved, "the rate chart to move")
    assert [] == severe_console_entries(browser)

    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    assert VIEWPORT == png_size(shot)
    if update_docs:
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
