"""Sandboxes (issue 16): a probe app under gunicorn in two pools tries what seccomp and Landlock
forbid, through the real listener, and says what happened; the same probes with the sandbox off
succeed, so these tests can fail. Root only (pools run as their own users)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from orchestrator.backends.linux.sandbox import kernel_support
from orchestrator.sandbox.policy import LANDLOCK_NET_ABI
from tests.support.controller import (
    ANY_PORT,
    REPO,
    Controller,
    Names,
    running_controller,
    wait_until,
)

pytestmark = [pytest.mark.root, pytest.mark.integration]

NEEDS_LANDLOCK = pytest.mark.skipif(
    kernel_support().landlock_abi < 1, reason="this kernel has no Landlock"
)


@dataclass
class Site:
    """A running controller with pools ``a`` and ``b`` (each with its own cwd), a world-readable
    file outside both, and two TCP ports on loopback: ``listed`` (in ``a``'s network.connect when
    the sandbox is on) and ``other``."""

    ctl: Controller
    a: str
    b: str
    a_cwd: str
    b_cwd: str
    outside: str
    listed: int
    other: int

    def probe(self, pool: str, what: str, **query: object) -> str:
        """What the probe in ``pool`` got: ``ok`` or an errno name."""
        answer = self.ctl.get(f"/{pool}/probe/{what}?{urlencode(query)}", timeout=20)
        assert 200 == answer.status, answer.body
        return str(answer.json()["result"])

    def tmp(self, pool: str) -> str:
        """The pool's private tmp dir."""
        return os.path.join(self.ctl.run_dir, "tmp", pool)


def _manifest(names: Names, sandbox_a: str, sandbox_b: str | None) -> str:
    """Pools a and b (b left out when ``sandbox_b`` is None)."""
    a, b = names.hello, names.notes
    listener = f"  listener: {{user: {names.listener_user}}}\n" if names.listener_user else ""

    def pool(name: str, cwd: str, sandbox: str) -> str:
        return (
            f"  {name}:\n"
            f"    queue: {name}\n"
            f'    command: [gunicorn, --workers, "1", "probe:app"]\n'
            f"    cwd: {cwd}\n"
            f"    startupTimeLimit: 30s\n"
            f"    shutdownTimeLimit: 5s\n"
            f"    health: {{path: /{name}/healthz, interval: 2s, timeout: 2s}}\n"
            f"    sandbox: {sandbox}\n"
        )

    names_cwds = [(a, "apps", sandbox_a)] + ([(b, "apps-b", sandbox_b)] if sandbox_b else [])
    queues = "".join(f"  {n}: {{}}\n" for n, _, _ in names_cwds)
    groups = "".join(
        f'  {n}: {{queue: {n}, urls: ["http://127.0.0.1:{ANY_PORT}/{n}/"]}}\n'
        for n, _, _ in names_cwds
    )
    pools = "".join(pool(n, cwd, box) for n, cwd, box in names_cwds)
    return (
        "apiVersion: orchestrator/v1\n"
        f"session:\n  name: test\n{listener}"
        f"queues:\n{queues}urlGroups:\n{groups}workers:\n{pools}"
    )


@contextlib.contextmanager
def _site(world_dir: str, names: Names, sandbox_a: str, sandbox_b: str = "{}") -> Iterator[Site]:
    listed, other = socket.socket(), socket.socket()
    with listed, other:
        for sock in (listed, other):
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
        ports = {"LISTED": str(listed.getsockname()[1])}
        for key, value in ports.items():
            sandbox_a = sandbox_a.replace(key, value)
        site_dir = os.path.join(world_dir, "site")
        os.makedirs(os.path.join(site_dir, "apps-b"))
        shutil.copy(
            os.path.join(REPO, "tests", "support", "apps", "probe.py"),
            os.path.join(site_dir, "apps-b"),
        )
        outside = os.path.join(world_dir, "outside", "secret.txt")
        os.makedirs(os.path.dirname(outside))
        with open(outside, "w", encoding="ascii") as fh:
            fh.write("not yours\n")
        with running_controller(
            world_dir,
            _manifest(names, sandbox_a, sandbox_b),
            apps_from=os.path.join(REPO, "tests", "support", "apps"),
        ) as ctl:
            # World-writable on purpose: only the sandbox can stop the other pool writing here.
            a_cwd, b_cwd = os.path.join(site_dir, "apps"), os.path.join(site_dir, "apps-b")
            for directory in (a_cwd, b_cwd):
                os.chmod(directory, 0o777)
            yield Site(
                ctl,
                names.hello,
                names.notes,
                a_cwd,
                b_cwd,
                outside,
                listed.getsockname()[1],
                other.getsockname()[1],
            )


def _seccomp(pid: int) -> str:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(line.split()[1] for line in fh if line.startswith("Seccomp:"))


@NEEDS_LANDLOCK
def test_the_default_sandbox_denies_what_it_should_and_allows_what_the_app_needs(
    world_dir: str, names: Names
) -> None:
    """Defaults on (``user: auto`` pools: seccomp default, filesystem deny), pool a with
    ``network.connect`` naming one port: the forbidden calls fail with EPERM, the other pool's
    world-writable cwd and a world-readable file outside the allowed paths with EACCES, an unlisted
    port is refused; its own cwd, its tmp dir and the listed port work. Status and /proc agree."""
    with _site(world_dir, names, "{network: {connect: ['127.0.0.1:LISTED']}}") as site:
        a = site.a
        assert "EPERM" == site.probe(a, "ptrace")
        assert "EPERM" == site.probe(a, "unshare")
        assert "EPERM" == site.probe(a, "mount", dir=site.tmp(a))
        assert "EACCES" == site.probe(a, "write", dir=site.b_cwd)
        assert "EACCES" == site.probe(site.b, "write", dir=site.a_cwd)
        assert "EACCES" == site.probe(a, "read", file=site.outside)
        assert "ok" == site.probe(a, "read", file=os.path.join(site.a_cwd, "probe.py"))
        assert "ok" == site.probe(a, "write", dir=site.tmp(a))
        assert "EACCES" == site.probe(a, "write", dir=site.tmp(site.b))  # not another pool's tmp
        assert "ok" == site.probe(a, "connect", port=site.listed)
        if kernel_support().landlock_abi >= LANDLOCK_NET_ABI:
            assert "EACCES" == site.probe(a, "connect", port=site.other)
        assert "ok" == site.probe(site.b, "connect", port=site.other)  # b has no network rules

        workers = site.ctl.workers()
        assert {a, site.b} == {str(w["pool"]) for w in workers}
        for worker in workers:
            sandbox = worker["sandbox"]
            assert isinstance(sandbox, dict)
            assert "filter" == sandbox["seccomp"]
            landlock = sandbox["landlock"]
            assert isinstance(landlock, dict)
            assert landlock["applied"] is True
            assert kernel_support().landlock_abi == landlock["abi"]
            assert "2" == _seccomp(int(str(worker["pid"])))
        answer = site.ctl.get(f"/{a}/probe/ptrace").json()
        assert "2" == _seccomp(int(str(answer["pid"])))  # the gunicorn worker the master forked
        listener = site.ctl.state()["listener"]
        assert isinstance(listener, dict)
        for pid in listener["pids"]:
            assert "2" == _seccomp(int(pid))
        # The listener's default is filesystem deny too; status reads it back as for workers.
        assert "filter" == listener["sandbox"]["seccomp"]
        assert listener["sandbox"]["landlock"]["applied"] is True
        tmp = os.stat(site.tmp(a))
        assert 0o700 == tmp.st_mode & 0o777
        assert int(str(workers[0]["uid"])) in {
            os.stat(site.tmp(str(w["pool"]))).st_uid for w in workers
        }


def test_with_the_sandbox_off_the_same_probes_succeed(world_dir: str, names: Names) -> None:
    """``sandbox: {seccomp: off, filesystem: {default: allow}}``: every probe the default denies
    succeeds, so the test above can fail; status says there is no filter."""
    off = "{seccomp: off, filesystem: {default: allow}}"
    with _site(world_dir, names, off, off) as site:
        a = site.a
        assert "ok" == site.probe(a, "ptrace")
        assert "ok" == site.probe(a, "unshare")
        assert "ok" == site.probe(a, "mount", dir=site.tmp(a))
        assert "ok" == site.probe(a, "write", dir=site.b_cwd)
        assert "ok" == site.probe(a, "read", file=site.outside)
        assert "ok" == site.probe(a, "connect", port=site.other)
        for worker in site.ctl.workers():
            sandbox = worker["sandbox"]
            assert isinstance(sandbox, dict)
            assert "off" == sandbox["seccomp"]
            assert "0" == _seccomp(int(str(worker["pid"])))


def test_a_pool_s_tmp_dir_is_removed_with_the_pool(world_dir: str, names: Names) -> None:
    """Deleting pool b from the manifest removes ``<runDir>/tmp/b`` and what is in it."""
    with _site(world_dir, names, "{}") as site:
        assert "ok" == site.probe(site.b, "write", dir=site.tmp(site.b))
        assert os.listdir(site.tmp(site.b))
        site.ctl.write("site.yaml", _manifest(names, "{}", None))
        wait_until(lambda: not os.path.exists(site.tmp(site.b)), 30, "b's tmp dir to go")
        assert os.path.isdir(site.tmp(site.a))
