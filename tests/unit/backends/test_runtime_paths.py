"""What a command needs to read (``backends.linux.sandbox.runtime_paths``): the installations of
the programs it runs, found on its ``PATH``, through ``env`` and ``sh -c`` too."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.backends.linux.sandbox import runtime_paths


def _venv(root: Path, program: str) -> Path:
    """A virtual environment's layout with one executable script in ``bin``."""
    (root / "bin").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    script = root / "bin" / program
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return root


def test_the_first_word_found_on_path_brings_its_installation(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "venv", "serve")
    paths = runtime_paths(["serve", "app:app"], {"PATH": str(venv / "bin")}, None)
    assert str(venv) in paths


def test_env_and_a_shell_script_name_the_programs_they_run(tmp_path: Path) -> None:
    """``env A=1 serve`` runs serve; ``sh -c '... && exec serve'`` too: a sandbox built from the
    first word alone would shut the app out of its own installation."""
    venv = _venv(tmp_path / "venv", "serve")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    assert str(venv) in runtime_paths(["env", "-i", "A=1", "serve"], env, None)
    flag = tmp_path / "data" / "ready"
    flag.parent.mkdir()
    flag.write_text("yes")
    script = f"test -e {flag} && exec serve --bind fd://3 || exit 1"
    paths = runtime_paths(["sh", "-c", script], env, None)
    assert str(venv) in paths
    # A path in the script that is not an executable is data, not an installation to open.
    assert str(flag.parent) not in paths
    assert os.path.dirname(str(flag)) not in paths


def test_a_program_that_is_not_found_adds_nothing(tmp_path: Path) -> None:
    assert [] == runtime_paths(["no-such-program-here"], {"PATH": str(tmp_path)}, None)
    assert [] == runtime_paths([], {"PATH": str(tmp_path)}, None)
