"""A pool stopped by rapid-fail protection, in the browser: its row says STOPPED with the reason
``status`` gives, and the overview lists it as failing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.controller import (
    Controller,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)
from tests.support.dashboard_page import needs_browser, open_dashboard, severe_console_entries

pytestmark = [pytest.mark.integration, needs_browser]

#: A worker that exits at once: three crashes within a minute stop the pool (quickstart_manifest's
#: rapidFailProtection for hello).
CRASHING = '[python3, -c, "import sys; sys.exit(1)"]'


@pytest.fixture(scope="module")
def controller(module_world: str, module_names: Names) -> Iterator[Controller]:
    """A controller whose hello pool crashes at start, its dashboard on a free loopback port."""
    manifest = quickstart_manifest(
        names=module_names,
        dashboard='{address: "127.0.0.1:0"}',
        hello_command=CRASHING,
        health=False,
    )
    with running_controller(module_world, manifest, converge=False) as ctl:
        yield ctl


def halted_reason(ctl: Controller, pool: str) -> str:
    """Why rapid-fail protection stopped ``pool`` ("" while it runs)."""
    pools = ctl.state().get("pools")
    info = pools.get(pool) if isinstance(pools, dict) else None
    return str(info.get("halted") or "") if isinstance(info, dict) else ""


def test_pool_stopped_by_rapid_fail_shows_stopped_with_its_reason(
    browser: Chrome, controller: Controller, module_names: Names
) -> None:
    """The hello pool's row reads STOPPED with ``status``'s reason (rapid-fail protection), and
    the overview's failing list names ``worker/hello…``."""
    pool = module_names.hello
    reason = str(wait_until(lambda: halted_reason(controller, pool), 60, f"{pool} to be halted"))
    open_dashboard(browser, controller.dashboard_url())
    row = WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: d.execute_script(
            "const tr = document.querySelector("
            "  'table#pools tr.halted[data-pool=\"' + CSS.escape(arguments[0]) + '\"]');"
            "return tr && [tr.querySelector('td.state').textContent,"
            "  tr.querySelector('td.last-exit').textContent];",
            pool,
        ),
        f"the pools table to show {pool} stopped",
    )
    state, last_exit = row
    assert state == "STOPPED"
    assert "rapid-fail protection" in last_exit
    assert reason in last_exit
    failing = browser.execute_script(
        "const box = document.querySelector('#failing');"
        "return box.hidden ? [] : Array.from(box.querySelectorAll('li'), (li) => li.textContent);"
    )
    assert f"worker/{pool} stopped: {reason}" in failing
    assert [] == severe_console_entries(browser)
