"""No silent downgrade, the pure decision: which guarantees a manifest asks for that a host cannot
give (identities, ACL subjects, cgroup limits, sandboxes), and which of them stop a controller."""

from __future__ import annotations

import dataclasses

from orchestrator.manifest.load import LoadedManifest, ManifestFile, ManifestSet, load_manifest
from orchestrator.model.desired import (
    DesiredState,
    FilesystemDefault,
    FilesystemSandbox,
    NetworkSandbox,
    PrincipalKind,
    Sandbox,
    SeccompMode,
    Session,
    WorkerPool,
)
from orchestrator.model.ids import Key, Kind
from orchestrator.plan.guarantees import (
    FULL,
    Dropped,
    Guarantee,
    HostGuarantees,
    dropped_guarantees,
    refused,
)

#: An ordinary user's controller: no identities, no cgroups, a kernel with everything.
NOT_ROOT = HostGuarantees(
    user="alice",
    groups=frozenset({"alice", "staff"}),
    no_identities="not root: every process runs as alice",
    no_acl_subjects="not root: no other user can be admitted",
    cgroup_limits=frozenset(),
    no_cgroups="not root: no cgroups",
    landlock_abi=7,
    seccomp=True,
)

ISOLATED = """apiVersion: orchestrator/v1
session:
  name: isolated
  listener: {user: auto}
queues:
  hello:
    acl:
      - user: orch-hello
  notes:
    acl:
      - user: orch-notes
urlGroups:
  hello: {queue: hello, urls: ["http://127.0.0.1:8080/hello/"]}
  notes: {queue: notes, urls: ["http://127.0.0.1:8080/notes/"]}
workers:
  hello:
    queue: hello
    command: [orchestrator, worker, "hello:app"]
    user: auto
    limits: {memory: 256MiB, pids: 64, openFiles: 1024}
  notes:
    queue: notes
    command: [orchestrator, worker, "notes:app"]
    user: auto
    limits: {memory: 256MiB, cpu: 0.5, openFiles: 1024}
"""


def _load(text: str) -> LoadedManifest:
    return load_manifest(ManifestSet("site.yaml", (ManifestFile("site.yaml", text.encode()),)))


def _desired(text: str) -> DesiredState:
    return _load(text).desired


def _with_pool(desired: DesiredState, name: str, **changes: object) -> DesiredState:
    """``desired`` with one pool's fields replaced (for sandboxes, whatever the schema says)."""
    resources = dict(desired.resources)
    key = Key(Kind.WORKER, name)
    pool = resources[key]
    assert isinstance(pool, WorkerPool)
    resources[key] = dataclasses.replace(pool, **changes)  # type: ignore[arg-type]
    return DesiredState.of(resources, desired.manifest_sha256)


def _what(dropped: list[Dropped]) -> set[tuple[str, str, str]]:
    return {(str(d.key), str(d.guarantee), ".".join(d.path)) for d in dropped}


def test_isolated_as_an_ordinary_user_drops_acl_subjects_and_cgroup_limits() -> None:
    """The example's ACLs name the pools' dedicated users (made only as root) and its pools ask
    for memory, pids and cpu limits; ``user: auto`` itself is no request. openFiles is an rlimit."""
    dropped = dropped_guarantees(_desired(ISOLATED), NOT_ROOT)
    assert {
        ("queue/hello", "acl subjects", "acl"),
        ("queue/notes", "acl subjects", "acl"),
        ("worker/hello", "cgroup limits", "limits.memory"),
        ("worker/hello", "cgroup limits", "limits.pids"),
        ("worker/notes", "cgroup limits", "limits.memory"),
        ("worker/notes", "cgroup limits", "limits.cpu"),
    } == _what(dropped)
    assert dropped == refused(dropped)
    acl = next(d for d in dropped if d.key == Key(Kind.QUEUE, "hello"))
    assert "{user: orch-hello}" == acl.asked
    assert "dedicated user of worker/hello" in acl.why
    memory = next(d for d in dropped if d.path == ("limits", "memory"))
    assert "limits.memory: 256MiB" == memory.asked
    assert "not root: no cgroups" == memory.why


def test_a_host_that_gives_everything_drops_nothing() -> None:
    """As root with cgroups and a full kernel, the isolated example asks for nothing it lacks."""
    assert [] == dropped_guarantees(_desired(ISOLATED), FULL)


def test_the_quickstart_shape_asks_for_nothing_as_an_ordinary_user() -> None:
    """``user: auto`` pools, no ACL, no limits: an ordinary user starts it with no flag."""
    text = """apiVersion: orchestrator/v1
session: {name: quickstart}
queues: {hello: {}}
urlGroups: {hello: {queue: hello, urls: ["http://127.0.0.1:8080/hello/"]}}
workers:
  hello: {queue: hello, command: [orchestrator, worker, "hello:app"]}
"""
    assert [] == dropped_guarantees(_desired(text), NOT_ROOT)


def test_named_users_and_groups_other_than_ones_own_are_identities_dropped() -> None:
    """A pool's or the listener's ``user``, ``group`` and ``groups``: the invoking user's own
    name and groups are given; anyone else's are not."""
    text = """apiVersion: orchestrator/v1
session:
  name: s
  listener: {user: www-data, group: staff}
queues: {a: {}, b: {}}
workers:
  a: {queue: a, command: [x], user: bob, group: bob, groups: [staff, docker]}
  b: {queue: b, command: [x], user: alice, group: alice, groups: [staff]}
"""
    dropped = dropped_guarantees(_desired(text), NOT_ROOT)
    assert {
        ("session/s", "identities", "listener.user"),
        ("worker/a", "identities", "user"),
        ("worker/a", "identities", "group"),
        ("worker/a", "identities", "groups"),
    } == _what(dropped)
    groups = next(d for d in dropped if d.path == ("groups",))
    assert "groups: [docker]" == groups.asked
    assert "not root: every process runs as alice" == groups.why


def test_acl_subjects_that_are_ones_own_are_given_and_unknown_ones_are_not() -> None:
    """Without root: the invoking user and its groups are fine, anyone else is dropped. With
    root: a subject the host does not know (and no pool's dedicated user) is dropped too."""
    text = """apiVersion: orchestrator/v1
session: {name: s}
queues:
  a:
    acl: [{user: alice}, {group: staff}, {user: bob}, {group: wheel}]
  b:
    acl: [{user: ghost}, {user: orch-b}, {user: root}]
workers:
  b: {queue: b, command: [x]}
"""
    desired = _desired(text)
    not_root = dropped_guarantees(desired, NOT_ROOT)
    assert {
        "{user: bob}",
        "{group: wheel}",
        "{user: ghost}",
        "{user: orch-b}",
        "{user: root}",
    } == {d.asked for d in not_root}

    def exists(kind: PrincipalKind, name: str) -> bool:
        return name in ("alice", "staff", "bob", "wheel", "root")

    as_root = dropped_guarantees(desired, FULL, exists=exists)
    assert ["{user: ghost}"] == [d.asked for d in as_root]
    assert "no user ghost exists on this host" in as_root[0].why


def test_cgroup_limits_follow_the_controllers_the_host_has() -> None:
    """Root on a host whose hierarchy lacks a controller: only that limit is dropped, with the
    generic reason."""
    host = dataclasses.replace(FULL, cgroup_limits=frozenset({"memory", "pids"}))
    dropped = dropped_guarantees(_desired(ISOLATED), host)
    assert {("worker/notes", "cgroup limits", "limits.cpu")} == _what(dropped)
    assert "no usable cpu cgroup controller on this host" == dropped[0].why
    assert "limits.cpu: 0.5" == dropped[0].asked


def _sandboxed(sandbox: Sandbox) -> DesiredState:
    return _with_pool(_desired(ISOLATED), "hello", sandbox=sandbox)


def test_a_sandbox_the_kernel_cannot_apply_is_a_warning_unless_required() -> None:
    """No Landlock and no seccomp: each part of a pool's sandbox is dropped; only a ``required``
    sandbox makes them refusals. The listener (filesystem deny by default) is judged too."""
    bare = dataclasses.replace(FULL, landlock_abi=0, seccomp=False)
    sandbox = Sandbox(
        filesystem=FilesystemSandbox(default=FilesystemDefault.DENY),
        network=NetworkSandbox(connect=("127.0.0.1:5432",)),
    )
    dropped = [d for d in dropped_guarantees(_sandboxed(sandbox), bare) if d.key.name == "hello"]
    assert {
        ("worker/hello", "sandbox", "sandbox.seccomp"),
        ("worker/hello", "sandbox", "sandbox.filesystem"),
        ("worker/hello", "sandbox", "sandbox.network.connect"),
    } == _what(dropped)
    assert [] == refused(dropped)
    required = dropped_guarantees(_sandboxed(dataclasses.replace(sandbox, required=True)), bare)
    assert 3 == len([d for d in refused(required) if d.key.name == "hello"])
    listener = [d for d in required if d.key == Key(Kind.SESSION, "isolated")]
    assert {"listener.sandbox.seccomp", "listener.sandbox.filesystem"} == {
        ".".join(d.path) for d in listener
    }
    assert not any(d.required for d in listener)


def test_network_rules_need_landlock_abi_4_and_allow_needs_no_landlock() -> None:
    """ABI 3 applies the filesystem rules but not ``network.connect``; a named user's pool
    (filesystem ``allow`` by default) with seccomp off asks nothing of the kernel."""
    abi3 = dataclasses.replace(FULL, landlock_abi=3)
    sandbox = Sandbox(network=NetworkSandbox(connect=("127.0.0.1:5432",)), required=True)
    dropped = dropped_guarantees(_sandboxed(sandbox), abi3)
    assert [("worker/hello", "sandbox", "sandbox.network.connect")] == sorted(_what(dropped))
    assert "this kernel's Landlock ABI is 3; TCP connect rules need ABI 4" == dropped[0].why
    assert dropped == refused(dropped)
    bare = dataclasses.replace(FULL, landlock_abi=0, seccomp=False)
    desired = _with_pool(
        _desired(ISOLATED), "hello", user="alice", sandbox=Sandbox(seccomp=SeccompMode.OFF)
    )
    assert [] == [d for d in dropped_guarantees(desired, bare) if d.key.name == "hello"]


def test_a_backend_without_sandboxes_drops_only_required_ones() -> None:
    """http.sys has no sandboxes: the defaults are no request there, ``required`` is refused."""
    host = dataclasses.replace(FULL, sandboxes=False, listener=False)
    assert [] == dropped_guarantees(_desired(ISOLATED), host)
    dropped = dropped_guarantees(_sandboxed(Sandbox(required=True)), host)
    assert [("worker/hello", "sandbox", "sandbox")] == sorted(_what(dropped))
    assert dropped == refused(dropped)


def test_a_dropped_guarantee_as_json_and_its_line() -> None:
    """What ``status --json`` and the ``guarantee_dropped`` event carry."""
    d = Dropped(
        Key(Kind.WORKER, "hello"),
        Guarantee.CGROUP_LIMITS,
        ("limits", "memory"),
        "limits.memory: 1KiB",
        "not root",
    )
    assert {
        "guarantee": "cgroup limits",
        "object": "worker/hello",
        "field": "limits.memory",
        "asked": "limits.memory: 1KiB",
        "why": "not root",
        "required": True,
    } == d.to_json()
    assert "worker/hello: cannot guarantee cgroup limits (limits.memory: 1KiB)" == d.summary()
    assert "workers" == d.section
    assert "session" == dataclasses.replace(d, key=Key(Kind.SESSION, "s")).section
    assert isinstance(_desired(ISOLATED).session, Session)
