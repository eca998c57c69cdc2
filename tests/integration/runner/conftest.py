"""Fixtures for runner integration tests: a short work directory (AF_UNIX paths are limited to 108
bytes) and a spawner that kills every runner it started."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runner.harness import Spawner


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawner(workdir: Path) -> Iterator[Spawner]:
    spawner = Spawner(workdir)
    try:
        yield spawner
    finally:
        spawner.close()
