"""``orchestrator --version`` says which listener core (compiled or pure Python) would run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

COMPILED = importlib.util.find_spec("orchestrator.backends.linux.listener._fast") is not None


def _version(**env: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--version"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


@pytest.mark.skipif(not COMPILED, reason="the compiled listener core is not built here")
def test_version_names_the_compiled_core_when_it_is_built() -> None:
    """With the extension built and nothing disabling it, the compiled core runs."""
    lines = _version(ORCHESTRATOR_NO_EXTENSIONS="")
    assert lines[0].startswith("orchestrator ")
    assert "listener core: compiled" == lines[1]


def test_version_names_the_python_twin_and_why_when_extensions_are_disabled() -> None:
    """ORCHESTRATOR_NO_EXTENSIONS=1 selects the pure-Python twin, and says so."""
    assert (
        "listener core: python (ORCHESTRATOR_NO_EXTENSIONS=1)"
        == _version(ORCHESTRATOR_NO_EXTENSIONS="1")[1]
    )
