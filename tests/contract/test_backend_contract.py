"""The backend contract: every backend (fake, linux, and httpsys's recording fake) must pass it.

Each test drives a backend through the real reconciler and asserts convergence the only way that
counts: a fresh diff against a fresh observation is empty. The supervision half of the protocol
(``poll``, ``status``, ``reset``, ``shutdown``) is held to the same tests on every backend.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator

import pytest

from orchestrator.backends.base import Backend
from orchestrator.clock import SystemClock
from orchestrator.model import Key, Kind
from orchestrator.plan import Op, make_plan
from orchestrator.plan.guarantees import HostGuarantees
from orchestrator.reconcile.reconciler import Reconciler
from tests.contract.harness import Harness, fake_harness
from tests.contract.harness_httpsys import httpsys_harness
from tests.contract.harness_linux import linux_harness

HARNESSES = {"fake": fake_harness, "httpsys": httpsys_harness, "linux": linux_harness}


@pytest.fixture(
    params=[
        "fake",
        "httpsys",
        # Real processes and sockets on 127.0.0.1 (and real users as root).
        pytest.param("linux", marks=pytest.mark.integration),
    ]
)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Each backend in turn, closed afterwards."""
    gen = HARNESSES[request.param]()
    h = next(gen)
    try:
        yield h
    finally:
        h.backend.close()
        next(gen, None)


def _reconciler(h: Harness) -> Reconciler:
    return Reconciler(h.backend, SystemClock(), rng=random.Random(1))


def _converge(h: Harness, r: Reconciler, state: object, **kw: object) -> None:
    result = r.reconcile_once(state, **kw)  # type: ignore[arg-type]
    assert not result.failed, result.failed
    assert h.settle(lambda: r.plan(state).is_empty), r.plan(state).steps  # type: ignore[arg-type]


def test_the_backend_has_every_method_of_the_protocol(harness: Harness) -> None:
    """Resources and supervision: nothing the controller calls is optional."""
    assert isinstance(harness.backend, Backend)


def test_the_backend_says_what_it_can_guarantee_here(harness: Harness) -> None:
    """``guarantees`` (no silent downgrade): a value the controller judges manifests by. The
    fake gives everything; httpsys no identities, limits or sandboxes; linux per the host."""
    host = harness.backend.guarantees()
    assert isinstance(host, HostGuarantees)
    assert host.cgroup_limits <= {"memory", "pids", "cpu"}
    if harness.backend.name == "linux":
        assert bool(host.no_identities) == (os.geteuid() != 0)
        assert host.sandboxes
        assert host.listener
    if harness.backend.name == "httpsys":
        assert host.no_identities
        assert not host.cgroup_limits
        assert not host.sandboxes


def test_a_new_backend_observes_nothing(harness: Harness) -> None:
    """Before any apply, live state holds no object."""
    assert {} == dict(harness.backend.observe().resources)


def test_applying_a_site_converges(harness: Harness) -> None:
    """From nothing to a two-app site in one pass; observed objects equal the desired ones."""
    r = _reconciler(harness)
    site = harness.site()
    _converge(harness, r, site)
    assert dict(site.resources) == dict(harness.backend.observe().resources)


def test_observation_is_stable(harness: Harness) -> None:
    """Two observations of an unchanged system have the same fingerprint."""
    r = _reconciler(harness)
    _converge(harness, r, harness.site())
    assert harness.backend.observe().fingerprint() == harness.backend.observe().fingerprint()


def test_a_changed_pool_converges(harness: Harness) -> None:
    """A new command for every pool is a create-before-destroy replacement that converges."""
    r = _reconciler(harness)
    _converge(harness, r, harness.site("v1"))
    plan = r.plan(harness.site("v2"))
    assert {Op.REPLACE_CBD} == {s.op for s in plan.steps}
    _converge(harness, r, harness.site("v2"))


def test_removing_an_app_converges(harness: Harness) -> None:
    """Deleting one app's pool, group and queue leaves the other app alone."""
    r = _reconciler(harness)
    _converge(harness, r, harness.site(apps=("api", "web")))
    smaller = harness.site(apps=("api",))
    _converge(harness, r, smaller)
    assert Key(Kind.QUEUE, "web") not in harness.backend.observe().resources


def test_a_queue_removed_behind_the_controllers_back_is_drift_and_is_repaired(
    harness: Harness,
) -> None:
    """The next plan shows the queue as drift and re-creates it; the next pass converges."""
    r = _reconciler(harness)
    site = harness.site()
    _converge(harness, r, site)
    harness.break_queue("web")
    plan = make_plan(site, r.live())
    assert "queue/web" in {d.address for d in plan.drift}
    assert Op.CREATE == plan.step("create queue/web").op
    _converge(harness, r, site)


# -- supervision: poll, status, reset, shutdown ---------------------------------------------------
def _pools(h: Harness) -> dict[str, dict[str, object]]:
    pools = h.backend.status()["pools"]
    assert isinstance(pools, dict)
    return pools


def _halted(h: Harness, name: str) -> bool:
    return bool(_pools(h).get(name, {}).get("halted"))


def _ready_pools(h: Harness) -> set[str]:
    workers = h.backend.status()["workers"]
    assert isinstance(workers, list)
    return {str(w["pool"]) for w in workers if w["state"] == "ready"}


def test_poll_returns_at_once_the_wake_fds_that_are_readable(harness: Harness) -> None:
    """A readable wake fd ends the wait long before the timeout and is returned, unread; an idle
    one is not returned."""
    ready_r, ready_w = os.pipe()
    idle_r, idle_w = os.pipe()
    try:
        os.write(ready_w, b"x")
        started = time.monotonic()
        woken = harness.backend.poll(10.0, [ready_r, idle_r])
        assert time.monotonic() - started < 5.0
        assert {ready_r} == woken
        assert b"x" == os.read(ready_r, 1)
    finally:
        for fd in (ready_r, ready_w, idle_r, idle_w):
            os.close(fd)


def test_poll_returns_nothing_when_its_timeout_passes(harness: Harness) -> None:
    """Nothing to read: ``poll`` returns within (about) its timeout with no wake fd."""
    read, write = os.pipe()
    try:
        started = time.monotonic()
        assert set() == harness.backend.poll(0.05, [read])
        assert time.monotonic() - started < 5.0
    finally:
        os.close(read)
        os.close(write)


def test_status_reports_every_pool_and_queue_of_a_converged_site(harness: Harness) -> None:
    """The keys every backend reports; each pool running (not halted) with ready workers; each
    queue by name."""
    r = _reconciler(harness)
    _converge(harness, r, harness.site())
    status = harness.backend.status()
    assert {"workers", "pools", "queues", "listener"} <= set(status)
    assert {"api", "web"} == set(_pools(harness))
    assert not any(_halted(harness, name) for name in ("api", "web"))
    queues = status["queues"]
    assert isinstance(queues, list)
    assert {"api", "web"} == {q["name"] for q in queues}
    assert harness.settle(lambda: {"api", "web"} == _ready_pools(harness)), harness.backend.status()


def test_a_pool_whose_workers_cannot_boot_is_halted_and_reset_rearms_it(harness: Harness) -> None:
    """A worker that exits with the boot-failure code halts its pool (and only its pool);
    ``reset`` says it was halted, and ``status`` right after it shows the pool re-armed."""
    r = _reconciler(harness)
    r.reconcile_once(harness.site(halting=("web",)))
    assert harness.settle(lambda: _halted(harness, "web")), harness.backend.status()
    assert not _halted(harness, "api")
    assert True is harness.backend.reset("web")
    assert not _halted(harness, "web")


def test_a_new_definition_rearms_a_halted_pool(harness: Harness) -> None:
    """A halted pool whose definition changes (the operator fixed it) runs again."""
    r = _reconciler(harness)
    r.reconcile_once(harness.site(halting=("web",)))
    assert harness.settle(lambda: _halted(harness, "web")), harness.backend.status()
    _converge(harness, r, harness.site())
    assert harness.settle(lambda: "web" in _ready_pools(harness)), harness.backend.status()
    assert not _halted(harness, "web")


def test_reset_of_a_running_or_unknown_pool_changes_nothing(harness: Harness) -> None:
    """``reset`` returns ``False`` for a pool that runs and for a name that is no pool."""
    r = _reconciler(harness)
    _converge(harness, r, harness.site())
    assert False is harness.backend.reset("api")
    assert False is harness.backend.reset("no-such-pool")
    assert not _halted(harness, "api")


def test_shutdown_stops_every_pool(harness: Harness) -> None:
    """After a graceful shutdown no pool and no worker is left (and ``close`` is a no-op)."""
    r = _reconciler(harness)
    _converge(harness, r, harness.site())
    harness.backend.shutdown()
    status = harness.backend.status()
    assert [] == status["workers"]
    assert {} == status["pools"]
