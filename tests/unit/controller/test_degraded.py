"""The controller's side of "no silent downgrade": the refusal text, the reload refusal, the
warning events (once per manifest) and the ``degraded`` field of ``status`` in both forms."""

from __future__ import annotations

import pytest

from orchestrator.controller.degraded import HINT, Guarantees
from orchestrator.controller.status import render_status
from orchestrator.errors import ManifestError, Severity
from orchestrator.manifest.load import LoadedManifest, ManifestFile, ManifestSet, load_manifest
from orchestrator.plan.guarantees import FULL, HostGuarantees

NOT_ROOT = HostGuarantees(
    user="alice",
    groups=frozenset({"alice"}),
    no_identities="not root: every process runs as alice",
    no_acl_subjects="not root",
    cgroup_limits=frozenset(),
    no_cgroups="not root: no cgroups",
    landlock_abi=7,
    seccomp=True,
)

SITE = """apiVersion: orchestrator/v1
session: {name: s}
queues:
  a: {}
workers:
  a:
    queue: a
    command: [x]
    user: bob
    limits:
      memory: 64MiB
"""


def _load(text: str = SITE) -> LoadedManifest:
    return load_manifest(ManifestSet("site.yaml", (ManifestFile("site.yaml", text.encode()),)))


def _guarantees(
    host: HostGuarantees = NOT_ROOT, *, allow: bool = False
) -> tuple[Guarantees, list[dict[str, object]]]:
    seen: list[dict[str, object]] = []

    def emit(event: str, **fields: object) -> None:
        seen.append({"event": event, **fields})

    return Guarantees(host, allow_degraded=allow, emit=emit), seen


def test_the_refusal_lists_each_guarantee_with_its_line_then_the_hint() -> None:
    """What ``run`` prints: one line per guarantee (file:line:col, path, object, why)."""
    g, _ = _guarantees()
    loaded = _load()
    assert [
        "site.yaml:9:5: workers.a.user: worker/a: cannot guarantee identities (user: bob): "
        "not root: every process runs as alice",
        "site.yaml:11:7: workers.a.limits.memory: worker/a: cannot guarantee cgroup limits "
        "(limits.memory: 64MiB): not root: no cgroups",
        "site: not started: the manifest asks for 2 guarantees this controller cannot give; "
        f"{HINT}",
    ] == g.refusal("site", loaded).splitlines()


def test_a_manifest_asking_for_what_cannot_be_given_is_refused_like_an_invalid_one() -> None:
    """``check`` (reload, apply): a ``ManifestError`` of errors, each with the hint as detail;
    with ``--allow-degraded``, or on a host that gives it all, nothing is raised."""
    g, _ = _guarantees()
    with pytest.raises(ManifestError) as info:
        g.check(_load())
    diagnostics = list(info.value.diagnostics)
    assert 2 == len(diagnostics)
    assert {Severity.ERROR} == {d.severity for d in diagnostics}
    assert "workers.a.user" == diagnostics[0].location.path  # type: ignore[union-attr]
    assert HINT in diagnostics[0].detail
    _guarantees(allow=True)[0].check(_load())
    _guarantees(FULL)[0].check(_load())


def test_each_dropped_guarantee_is_logged_once_as_a_warning_and_shown_by_status() -> None:
    """``announce`` twice for one manifest logs each once; ``document`` is the status field, and
    the text form lists every entry."""
    g, seen = _guarantees(allow=True)
    loaded = _load()
    g.announce(loaded)
    g.announce(loaded)
    assert 2 == len(seen)
    assert {"guarantee_dropped"} == {e["event"] for e in seen}
    assert {"warning"} == {e["level"] for e in seen}
    assert "site.yaml:9:5" == seen[0]["location"]
    degraded = g.document(loaded)
    assert [] == g.document(None)
    assert ["identities", "cgroup limits"] == [d["guarantee"] for d in degraded]
    text = render_status({"pid": 1, "manifest": {"sha256": "ab" * 32}, "degraded": degraded})
    assert "degraded: 2 guarantees dropped (--allow-degraded)" in text
    assert (
        "  worker/a: cgroup limits (limits.memory: 64MiB): not root: no cgroups"
        in text.splitlines()
    )


def test_sandbox_warnings_alone_are_shown_as_warnings() -> None:
    """A kernel without Landlock or seccomp, sandboxes not required: nothing is refused, and
    status shows the parts not applied as warnings."""
    bare = HostGuarantees(landlock_abi=0, seccomp=False)
    g, seen = _guarantees(bare)
    text = "apiVersion: orchestrator/v1\nsession: {name: s}\nqueues: {a: {}}\n" + (
        "workers:\n  a: {queue: a, command: [x]}\n"
    )
    loaded = _load(text)
    assert [] == g.refused(loaded)
    g.announce(loaded)
    assert seen
    assert not any(e["required"] for e in seen)
    rendered = render_status({"degraded": g.document(loaded)})
    assert "degraded: sandbox parts this kernel cannot apply" in rendered
    assert "  warning: worker/a: sandbox (seccomp: default)" in rendered
