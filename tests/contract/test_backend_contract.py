"""The backend contract: every backend (fake, linux, and httpsys's recording fake) must pass it.

Each test drives a backend through the real reconciler and asserts convergence the only way that
counts: a fresh diff against a fresh observation is empty.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from orchestrator.clock import SystemClock
from orchestrator.model import Key, Kind
from orchestrator.plan import Op, make_plan
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
