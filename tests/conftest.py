"""Shared pytest configuration: marker skips with their reasons, and common fixtures."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip marked tests that cannot run here, saying why."""
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    skips = {
        "root": (not is_root, "needs root (real users, cgroups, sockets owned by others)"),
        "wine": (shutil.which("wine") is None, "Wine is not installed (apt-get install wine)"),
        "windows": (sys.platform != "win32", "needs real Windows"),
        "slow": (os.environ.get("ORCH_SLOW") != "1", "slow tier: set ORCH_SLOW=1 to run it"),
    }
    for item in items:
        for marker, (skip, reason) in skips.items():
            if skip and item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def world_dir() -> Iterator[str]:
    """A fresh directory every user can traverse (run directories that workers must reach)."""
    path = tempfile.mkdtemp(prefix="orch-test-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
