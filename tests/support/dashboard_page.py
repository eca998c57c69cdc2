"""The dashboard page in a real browser: Debian's headless Chromium driven by selenium (nothing is
downloaded: the browser and the driver are named by path, and selenium-manager runs offline), and
readers for what the page shows (pids in the pools table, points of a chart, console errors).

The page re-renders every second, so the readers take what they need in one script each (an element
found in one call may be gone in the next). Every wait is a ``WebDriverWait`` with a timeout.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: The viewport of every screenshot (and of docs/images/dashboard.png).
VIEWPORT = (1280, 800)
#: The charts' height in SVG units (app.js ``CHART_H``): a point above the baseline is not zero.
CHART_H = 40.0

BROWSER_MISSING = not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK))
needs_browser = pytest.mark.skipif(
    BROWSER_MISSING,
    reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
    "apt-get install chromium chromium-driver (.ci/run does)",
)


def start_browser(profile_dir: Path) -> Chrome:
    """Headless Chromium with a fresh profile, a 1280x800 viewport and its console logged at every
    level (``goog:loggingPrefs``). The caller quits it. Set ``SE_OFFLINE=true`` around it: the
    paths are explicit, so selenium-manager has nothing to look up, and offline it could not fetch
    anything if it tried."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
        f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(10)
        # Headless windows have no browser chrome, but pin the viewport itself so that
        # screenshots are exactly VIEWPORT.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False},
        )
    except Exception:
        driver.quit()
        raise
    return driver


def open_dashboard(browser: Chrome, url: str, polls: int = 2) -> None:
    """Load the page and wait until it has rendered ``polls`` successful polls
    (``body[data-polls]``)."""
    browser.get(url)
    WebDriverWait(browser, 15, poll_frequency=0.1).until(
        lambda d: int(d.execute_script("return Number(document.body.dataset.polls || 0)")) >= polls,
        f"the dashboard at {url} to render {polls} polls",
    )


def page_pids(browser: Chrome, pool: str | None = None) -> set[int]:
    """The pids in the pools table (``table#pools td.pid``), of one pool or all."""
    texts = browser.execute_script(
        "const pool = arguments[0];"
        "return Array.from(document.querySelectorAll('table#pools tbody tr'))"
        "  .filter((tr) => pool === null || tr.dataset.pool === pool)"
        "  .map((tr) => tr.querySelector('td.pid').textContent);",
        pool,
    )
    return {int(t) for t in texts if str(t).isdigit()}


def chart_points(browser: Chrome, kind: str, group: str) -> list[tuple[float, float]]:
    """The points of a chart's first polyline (``svg.chart-KIND[data-group=GROUP]``), in SVG
    units (y grows downwards)."""
    raw = browser.execute_script(
        "const svg = Array.from(document.querySelectorAll('svg.chart-' + arguments[0]))"
        "  .find((s) => s.dataset.group === arguments[1]);"
        "const line = svg && svg.querySelector('polyline');"
        "return line ? line.getAttribute('points') : '';",
        kind,
        group,
    )
    points = []
    for pair in str(raw or "").split():
        x, y = pair.split(",")
        points.append((float(x), float(y)))
    return points


def above_baseline(points: list[tuple[float, float]]) -> int:
    """How many points show a value above zero (the baseline is at the chart's bottom)."""
    return sum(1 for _, y in points if y < CHART_H - 2 - 0.05)


def severe_console_entries(browser: Chrome) -> list[dict[str, object]]:
    """The console entries at level SEVERE since the last read (reading drains the log)."""
    entries = browser.get_log("browser")  # type: ignore[no-untyped-call]
    return [e for e in entries if isinstance(e, dict) and e.get("level") == "SEVERE"]


def assert_no_alert(browser: Chrome) -> None:
    """No ``alert()`` ran: there is no dialog to switch to."""
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height
