"""Each backend's ``ChangeRules`` declaration matches what its ``apply`` does (issue 13 item 7).

For every declared attribute, the test changes that one attribute of the api app and applies the
plan through the real reconciler, then looks at the object itself: a declared ``replace`` must
give the object a new identity (a new socket inode on Linux, a new http.sys handle, a new
incarnation in the fake), a declared ``restart`` must give the pool new processes (new pids, a new
generation in the fake). For attributes that are not declared, the same check runs the other way:
the object and its processes survive the change. A declared attribute with no case here fails the
test, so a new declaration cannot go unchecked.

Runs on the fake, on the http.sys backend over its recording fake (its real run is the Wine tier),
and on the real Linux backend (integration).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable, Iterator

import pytest

from orchestrator.backends.fake import FakeBackend
from orchestrator.clock import SystemClock
from orchestrator.model import DesiredState, EnvVar, Key, Kind, Resource
from orchestrator.model.desired import (
    FilesystemDefault,
    FilesystemSandbox,
    Health,
    RequestQueue,
    ResourceLimits,
    Sandbox,
    SeccompMode,
    WorkerPool,
)
from orchestrator.plan import Op
from orchestrator.plan.rules import Effect
from orchestrator.reconcile.reconciler import Reconciler
from tests.contract.harness import Harness, fake_harness
from tests.contract.harness_httpsys import httpsys_harness
from tests.contract.harness_linux import linux_harness

HARNESSES = {"fake": fake_harness, "httpsys": httpsys_harness, "linux": linux_harness}
API_QUEUE = Key(Kind.QUEUE, "api")
API_POOL = Key(Kind.WORKER, "api")

#: Declared attributes that no single-object change can exercise, and why.
NOT_EXERCISED = {
    # There is one session: moving an object to another one renames the session, which deletes
    # and creates every object (a key change, not an attribute change).
    (Kind.QUEUE, "session"): "one session per manifest",
    (Kind.URLGROUP, "session"): "one session per manifest",
    (Kind.WORKER, "session"): "one session per manifest",
    # Fixed for a controller's lifetime: apply refuses them ("restart the controller").
    (Kind.SESSION, "backend"): "fixed for the controller's lifetime",
    (Kind.SESSION, "runDir"): "fixed for the controller's lifetime",
    (Kind.SESSION, "stateDir"): "fixed for the controller's lifetime",
}


@pytest.fixture(params=["fake", "httpsys", pytest.param("linux", marks=pytest.mark.integration)])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Each backend in turn, closed afterwards."""
    gen = HARNESSES[request.param]()
    h = next(gen)
    try:
        yield h
    finally:
        h.backend.close()
        next(gen, None)


def _user(h: Harness, name: str) -> str:
    make = getattr(h, "_user", None)
    if h.backend.name == "httpsys":
        pytest.skip("per-pool identities are not implemented on httpsys: apply refuses them")
    if h.backend.name == "linux":
        if os.geteuid() != 0:
            pytest.skip("changing a pool's identity on Linux needs root (dedicated users)")
        assert make is not None
        return str(make(name))
    return name


Mutation = Callable[[Harness, Resource], Resource]


def _pool(change: Callable[[Harness, WorkerPool], dict[str, object]]) -> Mutation:
    def mutate(h: Harness, res: Resource) -> Resource:
        assert isinstance(res, WorkerPool)
        return dataclasses.replace(res, **change(h, res))  # type: ignore[arg-type]

    return mutate


def _queue(change: Callable[[Harness, RequestQueue], dict[str, object]]) -> Mutation:
    def mutate(h: Harness, res: Resource) -> Resource:
        assert isinstance(res, RequestQueue)
        return dataclasses.replace(res, **change(h, res))  # type: ignore[arg-type]

    return mutate


def _acl(h: Harness, q: RequestQueue) -> dict[str, object]:
    import pwd

    from orchestrator.model import Principal
    from orchestrator.model.desired import PrincipalKind

    if h.backend.name == "httpsys":
        # A SID needs no account lookup (the harness's resolver knows only the controller).
        return {"acl": (Principal(kind=PrincipalKind.SID, name="S-1-5-21-1-2-3-1002"),)}
    me = pwd.getpwuid(os.geteuid()).pw_name
    return {"acl": (Principal(kind=PrincipalKind.USER, name=me),)}


#: One change of each attribute of the api app: (kind, field) -> mutation.
MUTATIONS: dict[tuple[Kind, str], Mutation] = {
    (Kind.WORKER, "queue"): _pool(lambda h, p: {"queue": Key(Kind.QUEUE, "web")}),
    # `env` runs the same command: the Linux workers must still serve.
    (Kind.WORKER, "command"): _pool(lambda h, p: {"command": ("env", *p.command)}),
    (Kind.WORKER, "env"): _pool(lambda h, p: {"env": (EnvVar(name="CONTRACT", value="1"),)}),
    (Kind.WORKER, "cwd"): _pool(
        lambda h, p: {"cwd": p.cwd.rstrip("/") + "/" if p.cwd else os.getcwd()}
    ),
    (Kind.WORKER, "user"): _pool(lambda h, p: {"user": _user(h, "alt")}),
    (Kind.WORKER, "group"): _pool(lambda h, p: {"group": _user(h, "alt")}),
    (Kind.WORKER, "groups"): _pool(lambda h, p: {"groups": (_user(h, "alt"),)}),
    (Kind.WORKER, "allowRoot"): _pool(lambda h, p: {"allow_root": not p.allow_root}),
    (Kind.WORKER, "limits"): _pool(lambda h, p: {"limits": ResourceLimits(open_files=4096)}),
    # The loosest sandbox: whatever the harness's pool runs under, it still serves.
    (Kind.WORKER, "sandbox"): _pool(
        lambda h, p: {
            "sandbox": Sandbox(
                seccomp=SeccompMode.OFF,
                filesystem=FilesystemSandbox(default=FilesystemDefault.ALLOW),
            )
        }
    ),
    (Kind.QUEUE, "acl"): _queue(_acl),
}

#: Attributes no backend declares: each must change in place on every backend.
IN_PLACE: dict[tuple[Kind, str], Mutation] = {
    (Kind.QUEUE, "maxLength"): _queue(lambda h, q: {"max_length": q.max_length // 2}),
    (Kind.WORKER, "health"): _pool(lambda h, p: {"health": Health(interval_s=11.0)}),
    (Kind.WORKER, "shutdownTimeLimit"): _pool(
        lambda h, p: {"shutdown_time_limit_s": p.shutdown_time_limit_s + 1}
    ),
}


def _identity(h: Harness, key: Key) -> object:
    backend = h.backend
    if isinstance(backend, FakeBackend):
        return backend.incarnations.get(key)
    if backend.name == "linux":
        assert key.kind is Kind.QUEUE
        return os.stat(backend.queues.path(key.name)).st_ino  # type: ignore[attr-defined]
    assert key.kind is Kind.QUEUE
    return backend.queues[key.name].handle.handle  # type: ignore[attr-defined]


def _processes(h: Harness, pool: str) -> frozenset[object]:
    backend = h.backend
    if isinstance(backend, FakeBackend):
        return frozenset({("generation", backend.pools[pool].generation)})
    workers = backend.status()["workers"]
    assert isinstance(workers, list)
    return frozenset(w["pid"] for w in workers if w["pool"] == pool and w["pid"] is not None)


def _converge(h: Harness, r: Reconciler, state: DesiredState) -> None:
    result = r.reconcile_once(state)
    assert not result.failed, result.failed
    assert h.settle(lambda: r.plan(state).is_empty), r.plan(state).steps


def _changed(h: Harness, site: DesiredState, key: Key, mutate: Mutation) -> DesiredState:
    resources = dict(site.resources)
    resources[key] = mutate(h, resources[key])
    return DesiredState.of(resources, "e" * 64)


def _check(
    h: Harness, kind: Kind, field: str, mutate: Mutation, *, expect_restart: bool
) -> tuple[bool, bool, Op]:
    """Apply one change; return (queue re-created, pool restarted, the planned op).

    A restart is seen when none of the old processes is left and new ones run: old processes may
    still be stopping when apply returns, so that is waited for (bounded) when a restart is
    expected; otherwise the old processes must still run after a second of supervision."""
    r = Reconciler(h.backend, SystemClock(), rng=random.Random(1))
    site = h.site()
    _converge(h, r, site)
    assert h.settle(lambda: bool(_processes(h, "api")))
    queue_before, pids_before = _identity(h, API_QUEUE), _processes(h, "api")
    key = Key(kind, "api")
    after = _changed(h, site, key, mutate)
    plan = r.plan(after)
    op = plan.step(next(s.id for s in plan.steps if s.key == key)).op
    _converge(h, r, after)
    assert h.settle(lambda: bool(_processes(h, "api")))
    recreated = _identity(h, API_QUEUE) != queue_before

    def replaced() -> bool:
        now = _processes(h, "api")
        return bool(now) and not (pids_before & now)

    if expect_restart:
        restarted = h.settle(replaced, timeout_s=15.0)
    else:
        h.settle(lambda: False, timeout_s=1.0)
        restarted = not (pids_before <= _processes(h, "api"))
    return recreated, restarted, op


def test_every_declared_attribute_has_a_contract_case(harness: Harness) -> None:
    """A declaration without a case here would go unchecked."""
    rules = harness.backend.capabilities().changes
    missing = [
        f"{f.kind}.{f.field}"
        for f in rules.forced
        if (f.kind, f.field) not in MUTATIONS and (f.kind, f.field) not in NOT_EXERCISED
    ]
    assert [] == missing


@pytest.mark.parametrize(("kind", "field"), sorted(MUTATIONS), ids=lambda v: str(v))
def test_the_declaration_matches_what_apply_does(harness: Harness, kind: Kind, field: str) -> None:
    """Declared replace: the queue is re-created (and its pool restarts); declared restart: new
    processes; not declared: the same queue and the same processes."""
    effect = harness.backend.capabilities().changes.effect(kind, field)
    recreated, restarted, op = _check(
        harness, kind, field, MUTATIONS[(kind, field)], expect_restart=effect is not None
    )
    if effect is Effect.REPLACE:
        assert (True, True, Op.REPLACE) == (recreated, restarted, op)
    elif effect is Effect.RESTART:
        assert (False, True, Op.REPLACE_CBD) == (recreated, restarted, op)
    else:
        assert (False, False, Op.UPDATE) == (recreated, restarted, op)


@pytest.mark.parametrize(("kind", "field"), sorted(IN_PLACE), ids=lambda v: str(v))
def test_an_undeclared_attribute_changes_in_place(harness: Harness, kind: Kind, field: str) -> None:
    """Neither the queue nor the pool's processes are replaced."""
    assert harness.backend.capabilities().changes.effect(kind, field) is None
    mutate = IN_PLACE[(kind, field)]
    assert (False, False, Op.UPDATE) == _check(harness, kind, field, mutate, expect_restart=False)
