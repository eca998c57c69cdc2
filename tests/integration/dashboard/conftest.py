"""Fixtures for the dashboard's browser tests: a directory and names for each module's controller,
and a fresh headless Chromium per test that saves a screenshot as ``<test name>.png`` in the test's
temporary directory when the test ends, whatever its outcome."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome

from tests.support import leftovers
from tests.support.controller import Names, unique_names
from tests.support.dashboard_page import BROWSER_MISSING, start_browser
from tests.support.users import delete_user_named


@pytest.fixture(scope="module")
def module_world() -> Iterator[str]:
    """``world_dir`` for a whole module: a directory every user can traverse, removed (with the
    cgroup tree of the controller run on ``run/``) at the end. Skips first without a browser: no
    controller for nothing."""
    if BROWSER_MISSING:
        pytest.skip("needs Debian's chromium and chromium-driver")
    path = tempfile.mkdtemp(prefix="orch-dash-", dir="/tmp")
    os.chmod(path, 0o755)
    leftovers.register_run_dir(os.path.join(path, "run"))
    try:
        yield path
    finally:
        leftovers.remove_cgroups(os.path.join(path, "run"))
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def module_names() -> Iterator[Names]:
    """Pool names (and, as root, a listener user) of the module's own."""
    made = unique_names()
    try:
        yield made
    finally:
        if made.listener_user:
            delete_user_named(made.listener_user)


@pytest.fixture
def browser(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Chrome]:
    """Headless Chromium (``start_browser``); its last view is saved as
    ``tmp_path/<test name>.png``."""
    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = start_browser(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        try:
            driver.save_screenshot(str(tmp_path / f"{request.node.name}.png"))
        finally:
            driver.quit()
