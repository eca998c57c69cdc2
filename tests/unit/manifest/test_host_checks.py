"""What ``nginx -t`` would catch: TLS files, a pool's cwd and its command[0], checked on this host
as warnings for ``validate`` and as errors for ``run``/``apply`` (issue 13 item 6)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from orchestrator.backends.linux.identity import Identity
from orchestrator.backends.linux.spawn import worker_environment
from orchestrator.errors import ManifestError, Severity
from orchestrator.manifest import load_manifest
from orchestrator.manifest.identities import HostIdentities, find_command


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _site(tmp_path: Path, worker: str, session: str = "") -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(
        "apiVersion: orchestrator/v1\n" + session + "queues:\n  api: {}\n"
        "urlGroups:\n  api: {queue: api, urls: ['http://+:8080/api/']}\n"
        "workers:\n  api:\n    queue: api\n" + worker
    )
    return path


def _host_problems(path: Path, strict: bool = False) -> list[tuple[int, int, str, str]]:
    try:
        loaded = load_manifest(str(path), identities=HostIdentities(), strict_identities=strict)
        diags = list(loaded.warnings)
    except ManifestError as exc:
        diags = list(exc.diagnostics)
    return [
        (d.location.line, d.location.column, str(d.severity), d.summary)
        for d in diags
        if d.location is not None
    ]


def test_the_worker_path_is_the_one_the_linux_backend_gives() -> None:
    """The loader's copy of the worker PATH rule matches backends.linux.spawn (the layers forbid
    importing it, so this test holds the two together)."""
    identity = Identity(user="u", uid=1, gid=1, groups=(), home="/")
    assert worker_environment(identity, {})["PATH"] == HostIdentities().worker_path("linux")


def test_a_bare_command_is_found_on_path_in_order(tmp_path: Path) -> None:
    """execvpe's rule: the first PATH entry that has an executable of that name."""
    _executable(tmp_path / "b" / "app")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "app").write_text("not executable")
    found = find_command("app", f"{tmp_path}/a:{tmp_path}/b", "/", _is_exec)
    assert str(tmp_path / "b" / "app") == found


def test_a_relative_path_entry_and_a_relative_command_are_relative_to_cwd(tmp_path: Path) -> None:
    """``./run.sh`` and a PATH entry ``bin`` resolve against the pool's cwd, as after chdir."""
    _executable(tmp_path / "bin" / "tool")
    _executable(tmp_path / "run.sh")
    assert str(tmp_path / "bin" / "tool") == find_command("tool", "bin", str(tmp_path), _is_exec)
    assert str(tmp_path / "run.sh") == find_command("./run.sh", "", str(tmp_path), _is_exec)
    assert find_command("./missing.sh", "", str(tmp_path), _is_exec) is None


def _is_exec(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def test_validate_warns_about_missing_files_cwd_and_command(tmp_path: Path) -> None:
    """Each missing thing is a warning at its field, and the manifest still loads."""
    path = _site(
        tmp_path,
        "    command: [no-such-program-13, --flag]\n    cwd: app\n",
        "session:\n  tls: [{address: '0.0.0.0:8443', certFile: site.crt, keyFile: /nope/k.pem}]\n",
    )
    assert [
        (
            3,
            35,
            "warning",
            f'TLS certificate file "{tmp_path}/site.crt" does not exist on this host',
        ),
        (3, 55, "warning", 'TLS key file "/nope/k.pem" does not exist on this host'),
        (11, 15, "warning", 'command "no-such-program-13" is not found on PATH on this host'),
        (12, 5, "warning", f'working directory "{tmp_path}/app" does not exist on this host'),
    ] == _host_problems(path)


def test_run_and_apply_refuse_the_same_problems_as_errors(tmp_path: Path) -> None:
    """strict_identities (run, apply and the controller's reloads): the warnings become errors."""
    path = _site(tmp_path, "    command: [no-such-program-13]\n    cwd: app\n")
    assert [
        (9, 15, "error", 'command "no-such-program-13" is not found on PATH on this host'),
        (10, 5, "error", f'working directory "{tmp_path}/app" does not exist on this host'),
    ] == _host_problems(path, strict=True)


def test_what_exists_gives_no_diagnostic(tmp_path: Path) -> None:
    """Files next to the manifest, a cwd relative to it and a command in it: silence."""
    (tmp_path / "site.crt").write_text("c")
    (tmp_path / "site.key").write_text("k")
    _executable(tmp_path / "app" / "serve")
    path = _site(
        tmp_path,
        "    command: [./serve]\n    cwd: app\n",
        "session:\n  tls: [{address: '0.0.0.0:8443', certFile: site.crt, keyFile: site.key}]\n",
    )
    assert [] == _host_problems(path, strict=True)


def test_the_venv_programs_are_found_as_the_linux_backend_finds_them(tmp_path: Path) -> None:
    """``orchestrator`` (the controller's interpreter directory) and ``sh`` need no full path."""
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "orchestrator")):
        pytest.fail("the test environment has no orchestrator script beside its python")
    path = _site(tmp_path, "    command: [orchestrator, worker, 'hello:app']\n")
    assert [] == _host_problems(path, strict=True)
    path = _site(tmp_path, "    command: [sh, -c, 'exit 0']\n")
    assert [] == _host_problems(path, strict=True)


def test_the_pools_own_path_is_searched_instead_of_the_default(tmp_path: Path) -> None:
    """``env: {PATH: ...}`` replaces the worker's PATH, so sh is not found without /bin in it."""
    _executable(tmp_path / "tools" / "mine")
    found = _site(tmp_path, f"    command: [mine]\n    env: {{PATH: {tmp_path}/tools}}\n")
    assert [] == _host_problems(found, strict=True)
    lost = _site(tmp_path, f"    command: [sh]\n    env: {{PATH: {tmp_path}/tools}}\n")
    problems = _host_problems(lost)
    assert [(9, 15, "warning", 'command "sh" is not found on PATH on this host')] == problems
    loaded = load_manifest(str(lost), identities=HostIdentities())
    assert f"Searched PATH={tmp_path}/tools (the pool's env)." in loaded.warnings[0].detail
    assert Severity.WARNING is loaded.warnings[0].severity
