"""No silent downgrade (issue 16, item 6), tried as a new user would: an ordinary user starts
``examples/isolated`` ("Needs root"). It refuses, listing every guarantee it cannot give with the
manifest's line; with ``--allow-degraded`` it serves and ``status`` lists them; the quickstart
starts with no flag, and a reload that asks for more is refused like an invalid manifest.

The controller runs as a throwaway non-root user (``setpriv``) from the repository's venv, which
is world-readable; the test itself is root (it makes and removes the user)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.controller import (
    ANY_PORT,
    ORCHESTRATOR,
    REPO,
    Controller,
    Names,
    quickstart_example,
    wait_until,
)
from tests.support.leftovers import register_run_dir
from tests.support.users import User, create_user, delete_user

pytestmark = [pytest.mark.integration, pytest.mark.root]


@pytest.fixture
def ordinary() -> Iterator[User]:
    """A throwaway user with no privilege, deleted afterwards."""
    user = create_user("odg")
    try:
        yield user
    finally:
        delete_user(user)


def _site(world_dir: str, user: User, manifest: str, apps: str) -> str:
    """``manifest`` and its apps in ``world_dir/site``, the whole directory the user's."""
    site = os.path.join(world_dir, "site")
    shutil.copytree(apps, os.path.join(site, "apps"))
    with open(os.path.join(site, "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write(manifest)
    for root, dirs, files in os.walk(world_dir):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), user.uid, user.gid)
    os.chown(world_dir, user.uid, user.gid)
    return site


def _argv(world_dir: str, user: User, *args: str) -> list[str]:
    return [
        "setpriv",
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--",
        *ORCHESTRATOR,
        "run",
        os.path.join(world_dir, "site"),
        "--run-dir",
        os.path.join(world_dir, "run"),
        "--state-dir",
        os.path.join(world_dir, "state"),
        *args,
    ]


def _env(world_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["HOME"] = world_dir
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    env.pop("XDG_RUNTIME_DIR", None)
    return env


@contextlib.contextmanager
def _running(world_dir: str, user: User, *args: str) -> Iterator[Controller]:
    """``orchestrator run`` as ``user``, converged; stopped afterwards."""
    run_dir = os.path.join(world_dir, "run")
    register_run_dir(run_dir)
    log_path = os.path.join(world_dir, "controller.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _argv(world_dir, user, "--log-format", "json", "--debounce", "100ms", *args),
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=_env(world_dir),
            cwd=REPO,
        )
    ctl = Controller(
        os.path.join(world_dir, "site"), run_dir, proc, log_path, state_dir=world_dir + "/state"
    )
    try:
        wait_until(
            lambda: proc.poll() is not None or ctl.client.available(), 30, "the control socket"
        )
        if proc.poll() is not None:
            raise AssertionError(f"the controller exited with {proc.returncode}:\n{ctl.log()}")
        ctl.wait_converged()
        yield ctl
    finally:
        try:
            ctl.stop(timeout_s=20)
        finally:
            ctl.kill()


def _isolated() -> str:
    """examples/isolated on any free port."""
    with open(os.path.join(REPO, "examples", "isolated", "site.yaml"), encoding="utf-8") as fh:
        return fh.read().replace("127.0.0.1:8080", f"127.0.0.1:{ANY_PORT}")


ISOLATED_APPS = os.path.join(REPO, "examples", "isolated", "apps")


def _line_of(site: str, text: str) -> int:
    with open(os.path.join(site, "site.yaml"), encoding="utf-8") as fh:
        return next(i for i, line in enumerate(fh, 1) if text in line)


def test_isolated_as_an_ordinary_user_refuses_and_lists_each_guarantee(
    world_dir: str, ordinary: User
) -> None:
    """Exit 1 and no traceback; one line per guarantee with file and line: the ACLs naming the
    pools' dedicated users, the memory and pids limits; a named user is an identity; the hint."""
    manifest = _isolated().replace(
        '    command: [orchestrator, worker, "notes:app"]\n',
        '    command: [orchestrator, worker, "notes:app"]\n    group: root\n',
    )
    site = _site(world_dir, ordinary, manifest, ISOLATED_APPS)
    done = subprocess.run(
        _argv(world_dir, ordinary),
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(world_dir),
        cwd=REPO,
        check=False,
    )
    assert 1 == done.returncode, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    yaml = os.path.join(site, "site.yaml")
    acl = f"{yaml}:{_line_of(site, 'user: orch-hello') - 1}:5: queues.hello.acl: queue/hello: "
    assert any(
        line.startswith(acl + "cannot guarantee acl subjects ({user: orch-hello})")
        for line in lines
    ), lines
    assert any(
        "queue/notes: cannot guarantee acl subjects ({user: orch-notes})" in line for line in lines
    ), lines
    memory = f"{yaml}:{_line_of(site, 'memory: 256MiB')}:7: workers.hello.limits.memory: "
    assert any(line.startswith(memory) for line in lines), lines
    for pool in ("hello", "notes"):
        for limit in ("limits.memory: 256MiB", "limits.pids: 64"):
            assert any(
                f"worker/{pool}: cannot guarantee cgroup limits ({limit}): the controller is "
                "not root: it cannot create cgroups" in line
                for line in lines
            ), (pool, limit, lines)
    assert any(
        "workers.notes.group: worker/notes: cannot guarantee identities (group: root): the "
        f"controller is not root: every process runs as {ordinary.name}" in line
        for line in lines
    ), lines
    assert not any("openFiles" in line for line in lines)  # an rlimit: always given
    assert lines[-1] == (
        f"{site}: not started: the manifest asks for 7 guarantees this controller cannot give; "
        "run as root, or pass --allow-degraded to run without them"
    )
    assert 8 == len(lines)
    assert not os.path.exists(os.path.join(world_dir, "run", "controller.pid"))


def test_isolated_with_allow_degraded_serves_and_status_lists_what_was_dropped(
    world_dir: str, ordinary: User
) -> None:
    """It starts as the user, serves, logs one warning event per dropped guarantee, and
    ``status --json`` and the text form list them all."""
    _site(world_dir, ordinary, _isolated(), ISOLATED_APPS)
    with _running(world_dir, ordinary, "--allow-degraded") as ctl:
        assert 200 == ctl.get("/hello/").status
        assert {ordinary.name} == {str(w["user"]) for w in ctl.workers()}
        degraded = ctl.state()["degraded"]
        assert isinstance(degraded, list)
        assert {
            ("queue/hello", "acl subjects", "acl"),
            ("queue/notes", "acl subjects", "acl"),
            ("worker/hello", "cgroup limits", "limits.memory"),
            ("worker/hello", "cgroup limits", "limits.pids"),
            ("worker/notes", "cgroup limits", "limits.memory"),
            ("worker/notes", "cgroup limits", "limits.pids"),
        } == {(d["object"], d["guarantee"], d["field"]) for d in degraded if d["required"]}
        assert all(str(d["location"]).startswith(ctl.site) for d in degraded)
        events = ctl.events("guarantee_dropped")
        assert len(degraded) == len(events)
        assert {"warning"} == {e["level"] for e in events}
        text = subprocess.run(
            [*ORCHESTRATOR, "status", "--run-dir", ctl.run_dir],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=REPO,
        )
        assert 0 == text.returncode, text.stdout + text.stderr
        assert "degraded: 6 guarantees dropped (--allow-degraded)" in text.stdout
        assert (
            "worker/hello: cgroup limits (limits.memory: 256MiB): the controller is not root"
            in (text.stdout)
        )


def test_the_quickstart_starts_as_an_ordinary_user_and_a_reload_asking_for_more_is_refused(
    world_dir: str, ordinary: User
) -> None:
    """No flag needed for ``user: auto`` pools; an edit that adds a cgroup limit is rejected like
    an invalid manifest (the error names file, line, object and why) and nothing that runs
    changes."""
    names = Names("hello", "notes", None)
    manifest = quickstart_example(names)
    site = _site(
        world_dir, ordinary, manifest, os.path.join(REPO, "examples", "quickstart", "apps")
    )
    with _running(world_dir, ordinary) as ctl:
        assert 200 == ctl.get("/hello/").status
        # Nothing refused; a kernel without Landlock or seccomp would add sandbox warnings.
        degraded = ctl.state()["degraded"]
        assert isinstance(degraded, list)
        assert not [d for d in degraded if d["required"] or d["guarantee"] != "sandbox"]
        assert not [e for e in ctl.events("guarantee_dropped") if e["required"]]
        pids = ctl.pids("hello")
        running = ctl.state()["manifest"]["sha256"]  # type: ignore[index]
        limited = manifest.replace(
            "    cwd: apps\n", "    cwd: apps\n    limits:\n      pids: 32\n", 1
        )
        assert limited != manifest
        ctl.write("site.yaml", limited)
        os.chown(os.path.join(site, "site.yaml"), ordinary.uid, ordinary.gid)

        def rejected() -> dict[str, object] | None:
            found = ctl.state().get("rejected")
            return found if isinstance(found, dict) else None

        found = wait_until(rejected, 30, "the reload to be rejected")
        assert isinstance(found, dict)
        assert "load" == found["stage"]
        line = _line_of(site, "pids: 32")
        error = str(found["error"])
        assert error.startswith(f"{site}/site.yaml:{line}:7: workers.hello.limits.pids: ")
        assert "worker/hello: cannot guarantee cgroup limits (limits.pids: 32)" in error
        assert running == ctl.state()["manifest"]["sha256"]  # type: ignore[index]
        assert pids == ctl.pids("hello")
        assert 200 == ctl.get("/hello/").status
