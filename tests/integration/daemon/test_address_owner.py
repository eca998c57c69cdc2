"""One owner per listening address on the host: a second controller (another run directory) that
asks for an address the first serves does not start and names the first, whose traffic stays all
its own; a hot reload that adds such an address fails for that address and disturbs nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from orchestrator.backends.linux.addresses import registry_directory
from tests.support.controller import (
    ANY_PORT,
    ORCHESTRATOR,
    REPO,
    Controller,
    Names,
    http,
    quickstart_manifest,
    remove_created_users,
    running_controller,
    unique_names,
    wait_until,
)
from tests.support.leftovers import register_run_dir, remove_cgroups
from tests.support.users import delete_user_named

pytestmark = [pytest.mark.integration]


@pytest.fixture
def other_names() -> Iterator[Names]:
    """The second controller's pool names (and listener user, as root)."""
    made = unique_names()
    try:
        yield made
    finally:
        if made.listener_user:
            delete_user_named(made.listener_user)


def _refusal(ctl: Controller, port: int) -> str:
    return (
        f"127.0.0.1:{port} is already served by session 'test' (run dir {ctl.run_dir}, "
        f"pid {ctl.proc.pid}); stop it or choose another address"
    )


def _run_to_exit(world: str, manifest: str) -> subprocess.CompletedProcess[str]:
    """``orchestrator run`` on ``manifest`` in ``world`` (a run and state directory of its own),
    until it exits; whatever it made is removed afterwards."""
    site, run_dir, state_dir = (os.path.join(world, d) for d in ("site", "run", "state"))
    shutil.copytree(os.path.join(REPO, "examples", "quickstart", "apps"), f"{site}/apps")
    for root, dirs, files in os.walk(world):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    with open(os.path.join(site, "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write(manifest)
    os.chmod(os.path.join(site, "site.yaml"), 0o644)
    register_run_dir(run_dir)
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    argv = [*ORCHESTRATOR, "run", site, "--run-dir", run_dir, "--state-dir", state_dir]
    proc = subprocess.Popen(
        [*argv, "--no-watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"the second controller did not exit:\n{err[-4000:]}") from None
    finally:
        remove_cgroups(run_dir)
        remove_created_users(state_dir)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_second_controller_on_a_served_address_does_not_start_and_names_the_owner(
    world_dir: str, names: Names, other_names: Names
) -> None:
    """The second exits 1 with one line naming the first's session, run directory and pid, and
    no traceback; 20 requests afterwards are all answered by the first's workers."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        port = ctl.port
        record = os.path.join(registry_directory(), f"127.0.0.1:{port}")
        with open(record, encoding="utf-8") as fh:  # port 0: the port the kernel gave
            assert {"session": "test", "run_dir": ctl.run_dir, "pid": ctl.proc.pid}.items() <= (
                json.load(fh).items()
            )
        pids = ctl.pids(names.hello)
        second = _run_to_exit(
            os.path.join(world_dir, "second"), quickstart_manifest(port, other_names)
        )
        assert 1 == second.returncode, second.stderr
        assert "Traceback" not in second.stderr
        assert _refusal(ctl, port) == second.stderr.strip().splitlines()[-1]
        answers = [http(port, "/hello/").json()["pid"] for _ in range(20)]
        assert all(pid in pids for pid in answers), (answers, pids)
    assert not os.path.exists(record)  # released by its owner as it stopped


def test_a_reload_that_adds_a_served_address_fails_for_it_and_disturbs_nothing(
    world_dir: str, names: Names, other_names: Names
) -> None:
    """The reload is rolled back with the owner's name; the reloading controller's own address
    and workers, and the owner's traffic, are as before."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as first:
        taken = first.port
        manifest = quickstart_manifest(ANY_PORT, other_names)
        world = os.path.join(world_dir, "second")
        with running_controller(world, manifest) as second:
            own, pids = second.port, second.pids(other_names.hello)
            extra = f"""  extra:
    queue: {other_names.notes}
    urls: ["http://127.0.0.1:{taken}/extra/"]
workers:"""
            second.write("site.yaml", manifest.replace("workers:", extra, 1))
            wait_until(
                lambda: (
                    second.events("reload_outcome")
                    and second.events("reload_outcome")[-1]["outcome"] != "applied"
                ),
                60,
                "the reload's outcome",
            )
            assert "rolled_back" == second.events("reload_outcome")[-1]["outcome"]
            rejected = second.state()["rejected"]
            assert _refusal(first, taken) in str(rejected), rejected
            assert pids == second.pids(other_names.hello)
            assert [own] == [e["port"] for e in second.state()["listener"]["endpoints"]]  # type: ignore[index]
            assert 200 == http(own, "/hello/").status
            first_pids = first.pids(names.hello)
            answers = [http(taken, "/hello/").json()["pid"] for _ in range(20)]
            assert all(pid in first_pids for pid in answers), (answers, first_pids)
