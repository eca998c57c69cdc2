"""The dashboard in a real browser (headless Chromium, driven by selenium) against a real controller
in the quickstart's shape: the page loads without console errors, its pools table agrees with
``status --json`` and follows a killed worker's replacement within 3 s, its request-rate chart fills
under traffic, and markup in a manifest value or a diagnostic is shown as text and never runs.

Every test saves a screenshot as ``<test name>.png`` in its temporary directory (the ``browser``
fixture). The tests share one controller and run in file order: the rejected manifest comes last
(it restores the manifest, but a reload is not what the others should see)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.controller import (
    ORCHESTRATOR,
    REPO,
    Controller,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)
from tests.support.dashboard_page import (
    above_baseline,
    assert_no_alert,
    chart_points,
    needs_browser,
    open_dashboard,
    page_pids,
    severe_console_entries,
)

pytestmark = [pytest.mark.integration, needs_browser]

#: A pool's env value that is markup: the plan on the page shows it (``+ env.GREETING = "..."``).
SCRIPT_VALUE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def controller(module_world: str, module_names: Names) -> Iterator[Controller]:
    """A converged controller in the quickstart's shape, its dashboard on a free loopback port,
    the notes pool's env holding ``SCRIPT_VALUE``."""
    manifest = quickstart_manifest(
        names=module_names,
        dashboard='{address: "127.0.0.1:0"}',
        extra=f"    env: {{GREETING: {json.dumps(SCRIPT_VALUE)}}}\n",
    )
    with running_controller(module_world, manifest) as ctl:
        yield ctl


@pytest.fixture(scope="module")
def url(controller: Controller) -> str:
    """The dashboard's address, as bound."""
    return controller.dashboard_url()


def status_json(ctl: Controller) -> dict[str, object]:
    """``orchestrator status --json``, as an operator runs it (exit 0, or 3 when something
    fails)."""
    proc = subprocess.run(
        [*ORCHESTRATOR, "status", "--json", "--run-dir", ctl.run_dir],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode in (0, 3), proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def status_pids(doc: dict[str, object], pool: str | None = None) -> set[int]:
    """Worker pids in a status document."""
    workers = doc.get("workers")
    return {
        int(str(w["pid"]))
        for w in (workers if isinstance(workers, list) else [])
        if isinstance(w, dict) and (pool is None or w.get("pool") == pool)
    }


def send_traffic(ctl: Controller, path: str, count: int) -> None:
    """``count`` requests to ``path`` through the listener, each answered 200."""
    for _ in range(count):
        assert ctl.get(path).status == 200


def test_page_loads_without_console_errors(browser: Chrome, url: str) -> None:
    """The page, its script and style, and three rounds of API polls log no SEVERE console entry
    (a CSP violation, a failed request, an exception in app.js would)."""
    open_dashboard(browser, url, polls=3)
    assert [] == severe_console_entries(browser)
    assert browser.find_element("css selector", "#conn").get_attribute("data-state") == "live"


def test_pools_table_shows_the_pids_of_status_json(
    browser: Chrome, url: str, controller: Controller
) -> None:
    """Every worker pid ``status --json`` lists is in the pools table, and no other."""
    open_dashboard(browser, url)
    expected = status_pids(status_json(controller))
    assert len(expected) >= 2
    # The page polls every second: wait (bounded) for the poll that follows the status read.
    WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: page_pids(d) == expected, f"the pools table to show {sorted(expected)}"
    )
    assert expected == page_pids(browser)


def test_env_value_with_a_script_tag_is_shown_as_text_and_never_runs(
    browser: Chrome, url: str
) -> None:
    """The notes pool's env value ``<script>alert(1)</script>`` appears literally in the last
    plan's text; the page holds no element made from it, and no alert ran."""
    open_dashboard(browser, url)
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda d: (
            SCRIPT_VALUE
            in d.execute_script("return document.querySelector('#plan .plan-text').textContent")
        ),
        "the plan (with the env value) on the page",
    )
    assert_no_alert(browser)
    assert 0 == len(browser.find_elements("css selector", "main script, main img"))
    # The document's only script is app.js: nothing was parsed out of the data.
    assert 1 == browser.execute_script("return document.scripts.length")


def test_request_rate_chart_has_data_points_after_traffic(
    browser: Chrome, url: str, controller: Controller, module_names: Names
) -> None:
    """Requests through the listener show in the hello group's request-rate chart: a polyline
    with points above its baseline (the history keeps a point every 2 s)."""
    open_dashboard(browser, url)
    group = module_names.hello

    def points_with_traffic(d: Chrome) -> bool:
        send_traffic(controller, "/hello/", 5)
        points = chart_points(d, "rate", group)
        return len(points) >= 2 and above_baseline(points) >= 1

    WebDriverWait(browser, 30, poll_frequency=0.2).until(
        points_with_traffic, f"the rate chart of {group} to show traffic"
    )
    svg = browser.find_element("css selector", f'svg.chart-rate[data-group="{group}"]')
    assert float(str(svg.get_attribute("data-max"))) > 0
    assert browser.find_elements("css selector", f'svg.chart-rate[data-group="{group}"] circle')


def test_killed_worker_is_replaced_in_the_pools_table_within_3s(
    browser: Chrome, url: str, controller: Controller, module_names: Names
) -> None:
    """SIGKILL a hello worker: within 3 s the table shows its replacement's pid and not the dead
    one, and ``status --json`` agrees."""
    pool = module_names.hello
    open_dashboard(browser, url)
    (victim,) = controller.pids(pool)
    WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: victim in page_pids(d, pool), f"the table to show pid {victim}"
    )
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    WebDriverWait(browser, 3, poll_frequency=0.05).until(
        lambda d: (pids := page_pids(d, pool)) and victim not in pids,
        f"the table to replace pid {victim} within 3 s",
    )
    elapsed = time.monotonic() - killed_at
    assert elapsed <= 3.0
    shown = page_pids(browser, pool)
    assert victim not in shown
    wait_until(
        lambda: status_pids(controller.state(), pool) & shown,
        5,
        f"status to list the table's new pid {shown}",
    )
    controller.wait_converged()


def test_rejected_manifest_shows_its_diagnostics_with_location_as_text(
    browser: Chrome, url: str, controller: Controller, module_names: Names
) -> None:
    """A manifest whose queue state is ``<script>alert(1)</script>`` is rejected; the overview
    shows the diagnostic with its file:line:col and the value as literal text (no alert, no
    element made from it), until the edit is undone."""
    open_dashboard(browser, url)
    path = Path(controller.site) / "site.yaml"
    good = path.read_text(encoding="utf-8")
    line = f"  {module_names.hello}: {{}}\n"
    assert line in good
    bad = good.replace(line, f'  {module_names.hello}: {{state: "{SCRIPT_VALUE}"}}\n', 1)
    controller.write("site.yaml", bad)
    try:
        WebDriverWait(browser, 15, poll_frequency=0.1).until(
            lambda d: d.execute_script(
                "const box = document.querySelector('#rejected');"
                "return !box.hidden && box.querySelectorAll('.diagnostic').length > 0;"
            ),
            "the rejected manifest's diagnostics on the page",
        )
        diagnostics = browser.execute_script(
            "return Array.from(document.querySelectorAll('#rejected .diagnostic'),"
            " (li) => [li.querySelector('.location')?.textContent ?? '', li.textContent]);"
        )
        matching = [(loc, text) for loc, text in diagnostics if SCRIPT_VALUE in text]
        assert matching, diagnostics
        location, _ = matching[0]
        assert re.fullmatch(r".*site\.yaml:\d+:\d+", location), location
        assert_no_alert(browser)
        assert 0 == len(browser.find_elements("css selector", "#rejected script"))
        assert 1 == browser.execute_script("return document.scripts.length")
    finally:
        controller.write("site.yaml", good)
    WebDriverWait(browser, 15, poll_frequency=0.1).until(
        lambda d: d.execute_script("return document.querySelector('#rejected').hidden"),
        "the rejected manifest to go once the edit is undone",
    )
