"""``run --resume`` as root obeys a last-known-good copy only under the manifests' owner and mode
rule (issue 16, item 4): a copy another user owns or could write is refused, naming the file and
the fix; a correct one resumes."""

from __future__ import annotations

import os
import subprocess

import pytest

from orchestrator.manifest.load import ManifestFile, ManifestSet, load_manifest
from orchestrator.reconcile.manifests import ManifestTracker
from tests.support.controller import (
    ORCHESTRATOR,
    REPO,
    Names,
    quickstart_example,
    running_controller,
)

pytestmark = [pytest.mark.integration, pytest.mark.root]

#: Not even YAML: only the last-known-good copy can start the controller.
BROKEN = "apiVersion: orchestrator/v1\nsession: [\n"


def _last_known_good(site: str, state: str, text: str) -> str:
    """The copy a controller that converged on ``text`` leaves in ``state``; returns its path."""
    path = os.path.join(site, "site.yaml")
    loaded = load_manifest(ManifestSet(path, (ManifestFile(path, text.encode()),)))
    tracker = ManifestTracker(state)
    tracker.accept(loaded)
    tracker.applied(0.0)
    return tracker.lkg_path


def _resume(world_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *ORCHESTRATOR,
            "run",
            os.path.join(world_dir, "site"),
            "--resume",
            "--run-dir",
            os.path.join(world_dir, "run"),
            "--state-dir",
            os.path.join(world_dir, "state"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def test_resume_refuses_a_last_known_good_copy_others_could_change(
    world_dir: str, names: Names
) -> None:
    """Group-writable, then owned by another user: refused (exit 1, no traceback, the file and
    the command that fixes it named); root's and 0600 (as the controller writes it): resumed."""
    site, state = os.path.join(world_dir, "site"), os.path.join(world_dir, "state")
    os.makedirs(site)
    with open(os.path.join(site, "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write(BROKEN)
    lkg = _last_known_good(site, state, quickstart_example(names))
    assert 0o600 == os.stat(lkg).st_mode & 0o777  # whatever the umask

    os.chmod(lkg, 0o664)
    refused = _resume(world_dir)
    assert 1 == refused.returncode, refused.stderr
    assert "Traceback" not in refused.stderr
    assert f"{lkg}: manifest file is writable by its group or by others (mode 0664)" in (
        refused.stderr
    )
    assert f"Run: chmod go-w {lkg}" in refused.stderr
    assert f"{lkg}: not resumed" in refused.stderr

    os.chmod(lkg, 0o600)
    os.chown(lkg, 65534, 65534)  # nobody
    refused = _resume(world_dir)
    assert 1 == refused.returncode, refused.stderr
    assert f"{lkg}: manifest file is owned by uid 65534, not root" in refused.stderr
    assert f"Run: chown root {lkg}" in refused.stderr

    os.chown(lkg, 0, 0)
    with running_controller(world_dir, BROKEN, args=("--resume",)) as ctl:
        assert 200 == ctl.get("/hello/").status
        assert "resuming the last-known-good manifest" in ctl.log()
