"""The shipped examples are valid and carry the editor schema line."""

from __future__ import annotations

import os

import pytest

from orchestrator.cli import main
from orchestrator.manifest import load_manifest
from orchestrator.model import Kind
from tests.conftest import REPO

EXAMPLES = ["quickstart", "isolated"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``orchestrator validate examples/NAME`` exits 0 and says valid."""
    path = os.path.join(REPO, "examples", name)
    assert main(["validate", path]) == 0
    assert "valid (2 queues, 2 URL groups, 2 worker pools" in capsys.readouterr().out


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_files_start_with_the_schema_line(name: str) -> None:
    """Editors with the YAML language server validate examples as people type."""
    folder = os.path.join(REPO, "examples", name)
    for file in os.listdir(folder):
        if file.endswith(".yaml"):
            with open(os.path.join(folder, file), encoding="utf-8") as fh:
                first = fh.readline()
            assert first.startswith("# yaml-language-server: $schema=")
            target = first.split("$schema=", 1)[1].strip()
            assert os.path.exists(os.path.join(folder, target))


def test_isolated_example_gives_every_pool_a_dedicated_identity() -> None:
    """examples/isolated runs each pool as user: auto."""
    desired = load_manifest(os.path.join(REPO, "examples", "isolated")).desired
    pools = desired.of_kind(Kind.WORKER)
    assert pools
    assert all(getattr(p, "user", None) == "auto" for p in pools)


def test_relative_cwd_is_resolved_against_the_manifest_directory() -> None:
    """``cwd: apps`` means the apps folder next to the manifest, wherever it is run from."""
    desired = load_manifest(os.path.join(REPO, "examples", "quickstart")).desired
    for pool in desired.of_kind(Kind.WORKER):
        assert os.path.join(REPO, "examples", "quickstart", "apps") == getattr(pool, "cwd", None)
