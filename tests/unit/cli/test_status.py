"""The status document (``status_document``: the controller's parts → ``status --json``) and its
rendering for people (``render_status``), on the fake backend and in virtual time."""

from __future__ import annotations

import os
import random

import pytest

from orchestrator.backends.fake import FakeBackend
from orchestrator.clock import FakeClock
from orchestrator.controller.status import failing, render_status, status_document
from orchestrator.errors import Diagnostic, Severity, TemporaryBackendError
from orchestrator.manifest.load import LoadedManifest, ManifestFile, ManifestSet
from orchestrator.model import DesiredState, Fault, Key, Kind
from orchestrator.reconcile.manifests import ManifestTracker
from orchestrator.reconcile.reconciler import Reconciler, Result
from orchestrator.reconcile.rollout import Rollout
from tests.support.states import live, site


class _Metrics:
    def reload(self, ok: bool, ts: float) -> None:
        return None

    def reconciled(self, result: str, seconds: float) -> None:
        return None


def _loaded(state: DesiredState) -> LoadedManifest:
    source = ManifestSet("/etc/orchestrator", (ManifestFile("site.yaml", b"v1"),))
    return LoadedManifest(DesiredState.of(dict(state.resources), source.sha256), source)


def _document(
    tracker: ManifestTracker,
    *,
    backend_status: dict[str, object] | None = None,
    last_result: Result | None = None,
    live_state: object = None,
    previous: dict[str, object] | None = None,
    stopping: bool = False,
    metrics_address: str | None = None,
) -> dict[str, object]:
    return status_document(
        now=12.5,
        stopping=stopping,
        pid=4242,
        backend="fake",
        backend_status=backend_status or {},
        manifest_path="/etc/orchestrator",
        tracker=tracker,
        generation=3,
        passes=7,
        last_result=last_result,
        live=live_state,  # type: ignore[arg-type]
        previous=previous or {},
        metrics_address=metrics_address,
    )


@pytest.fixture
def tracker(tmp_path: object) -> ManifestTracker:
    return ManifestTracker(os.path.join(str(tmp_path), "state"))


def test_a_controller_before_its_first_pass(tracker: ManifestTracker) -> None:
    """Nothing desired, nothing running, nothing rejected: the whole document, key by key."""
    assert {
        "_at": 12.5,
        "state": "running",
        "pid": 4242,
        "backend": "fake",
        "manifest": {
            "path": "/etc/orchestrator",
            "sha256": "",
            "since": None,
            "desired_sha256": "",
        },
        "rejected": None,
        "generation": 3,
        "reconcile": {"passes": 7, "converged": False, "failed": []},
        "metrics": {"address": None},
        "dashboard": None,
        "degraded": [],
        "queues": [],
        "urlGroups": [],
    } == _document(tracker)


def test_a_stopping_controller_says_so(tracker: ManifestTracker) -> None:
    """``state`` is ``stopping`` once shutdown began."""
    assert "stopping" == _document(tracker, stopping=True)["state"]


def test_the_running_and_the_desired_manifest_are_shown(tracker: ManifestTracker) -> None:
    """After an apply the running manifest has a hash and a time; the desired one its hash."""
    loaded = _loaded(site())
    tracker.accept(loaded)
    tracker.applied(1_700_000_000.0)
    manifest = _document(tracker)["manifest"]
    sha = loaded.desired.manifest_sha256
    assert {
        "path": "/etc/orchestrator",
        "sha256": sha,
        "since": 1_700_000_000.0,
        "desired_sha256": sha,
    } == manifest


def test_a_rejected_manifest_is_shown_with_every_error(tracker: ManifestTracker) -> None:
    """The last rejected manifest: hash, time, stage, its first error and all of them."""
    diags = (Diagnostic("first problem"), Diagnostic("second problem"))
    tracker.reject("c" * 64, 1_700_000_001.0, diags, "load")
    assert {
        "sha256": "c" * 64,
        "at": 1_700_000_001.0,
        "stage": "load",
        "error": "first problem",
        "errors": ["first problem", "second problem"],
        "warnings": 0,
    } == _document(tracker)["rejected"]


def test_the_backend_status_goes_to_the_top_level(tracker: ManifestTracker) -> None:
    """The backend's keys are the document's: its ``queues`` replace the empty default."""
    queues = [{"name": "api", "state": "enabled"}]
    doc = _document(tracker, backend_status={"queues": queues, "workers": [], "root": False})
    assert queues == doc["queues"]
    assert [] == doc["workers"]
    assert False is doc["root"]


def test_url_groups_come_from_the_desired_manifest(tracker: ManifestTracker) -> None:
    """``urlGroups`` lists the desired manifest's groups, whatever the backend reports."""
    tracker.accept(_loaded(site()))
    doc = _document(tracker, backend_status={"urlGroups": ["the backend's"]})
    assert [
        {
            "name": "api",
            "queue": "api",
            "urls": ["http://+:8080/api/"],
            "state": "enabled",
            "reason": None,
        },
        {
            "name": "web",
            "queue": "web",
            "urls": ["http://+:8080/"],
            "state": "enabled",
            "reason": None,
        },
    ] == doc["urlGroups"]


def test_the_last_pass_and_its_root_failures_are_shown(
    tracker: ManifestTracker, tmp_path: object
) -> None:
    """``reconcile`` carries the pass count, whether the last pass converged and its failures
    (root causes only, not the skipped dependents)."""
    clock = FakeClock()
    backend = FakeBackend({"create queue/api": TemporaryBackendError("disk full")}, clock=clock)
    result = Reconciler(backend, clock, rng=random.Random(1)).reconcile_once(site())
    assert {
        "passes": 7,
        "converged": False,
        "failed": [{"step": "create queue/api", "error": "disk full"}],
    } == _document(tracker, last_result=result)["reconcile"]


def test_drift_comes_from_a_fresh_observation(tracker: ManifestTracker) -> None:
    """With live state, ``drift`` lists its faults."""
    fault = Fault(key=Key(Kind.QUEUE, "api"), reason="missing", detail="queue socket is gone")
    doc = _document(tracker, live_state=live(faults=[fault]))
    assert [{"address": "queue/api", "reason": "missing", "detail": "queue socket is gone"}] == doc[
        "drift"
    ]


def test_without_an_observation_the_previous_drift_is_kept(tracker: ManifestTracker) -> None:
    """A cheap refresh (no observation) keeps the last known drift; with none, there is none."""
    kept = [{"address": "queue/api", "reason": "missing", "detail": ""}]
    assert kept == _document(tracker, previous={"drift": kept})["drift"]
    assert "drift" not in _document(tracker, previous={"state": "starting"})


def test_the_document_of_a_fake_controller_renders(tracker: ManifestTracker) -> None:
    """Applied on the fake backend with one pool halted: the tables show queues, groups, the
    running workers and the stopped pool, and the running manifest."""
    clock = FakeClock()
    backend = FakeBackend(clock=clock)
    reconciler = Reconciler(backend, clock, rng=random.Random(1))
    rollout = Rollout(reconciler, tracker, clock, events=reconciler.events, metrics=_Metrics())
    loaded = _loaded(site())
    report = rollout.apply(loaded, source="apply")
    backend.cannot_boot.add("web")
    backend.poll(0.0)
    text = render_status(
        _document(
            tracker,
            backend_status=backend.status(),
            last_result=report.result,
            live_state=reconciler.live(),
        )
    )
    assert "Controller pid 4242, backend fake, state running, generation 3" in text
    assert f"running manifest {loaded.desired.manifest_sha256[:12]} since" in text
    assert "QUEUE  STATE    WAITING  BACKLOG  PATH" in text
    assert "api    enabled  -        1000     fake:api" in text
    assert "URL GROUP  QUEUE  STATE    URLS" in text
    assert "api   None  auto  ready    0s      0         ok      -" in text
    (stopped,) = [line for line in text.splitlines() if "STOPPED" in line]
    assert stopped.startswith(
        "web   -     -     STOPPED  -       1         -       -        since "
    )
    assert stopped.endswith(": exited with code 3 (cannot boot)")


def test_a_listener_address_asked_with_port_0_shows_the_bound_port_and_what_was_asked() -> None:
    """``listener.addresses`` are as bound; an address the manifest gave port 0 names it too."""
    listener = {
        "pids": [7],
        "user": "orch-listener",
        "addresses": ["127.0.0.1:41234", "127.0.0.1:8080"],
        "endpoints": [
            {"scheme": "http", "address": "127.0.0.1:0", "bound": "127.0.0.1:41234", "port": 41234},
            {
                "scheme": "http",
                "address": "127.0.0.1:8080",
                "bound": "127.0.0.1:8080",
                "port": 8080,
            },
        ],
        "restarts": 0,
        "core": "compiled",
    }
    text = render_status({"pid": 1, "manifest": {}, "reconcile": {}, "listener": listener})
    assert (
        "listener: pids 7, user orch-listener, addresses 127.0.0.1:41234 (asked 127.0.0.1:0), "
        "127.0.0.1:8080, restarts 0, core compiled"
    ) in text


def test_the_metrics_address_is_the_one_bound(tracker: ManifestTracker) -> None:
    """``metrics.address`` is where /metrics is served, as bound (the manifest may say port 0)."""
    document = _document(tracker, metrics_address="127.0.0.1:40123")
    assert {"address": "127.0.0.1:40123"} == document["metrics"]


def test_a_rejected_manifest_lists_its_errors_before_a_warning_located_earlier(
    tracker: ManifestTracker,
) -> None:
    """A warning is never why a manifest was rejected: ``error`` is the first error, ``errors``
    lists errors first, ``warnings`` counts the warnings, and the text shows the errors and the
    count, not the warning."""
    diags = (
        Diagnostic('queue "notes" is not used by any URL group', severity=Severity.WARNING),
        Diagnostic('unknown queue "nosuch"'),
    )
    tracker.reject("c" * 64, 1_700_000_001.0, diags, "load")
    rejected = _document(tracker)["rejected"]
    assert isinstance(rejected, dict)
    assert 'unknown queue "nosuch"' == rejected["error"]
    assert 'unknown queue "nosuch"' == rejected["errors"][0]
    assert 1 == rejected["warnings"]
    lines = render_status(_document(tracker)).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("rejected manifest"))
    assert lines[at].endswith("(1 error, 1 warning):")
    assert '  unknown queue "nosuch"' == lines[at + 1]
    assert "not used" not in "\n".join(lines)


def test_a_rejection_disappears_when_a_newer_manifest_is_accepted(tracker: ManifestTracker) -> None:
    """Fixed and applied: the rejection of the broken content is no longer reported."""
    tracker.reject("c" * 64, 1.0, (Diagnostic("broken"),), "load")
    tracker.accept(_loaded(site()))
    assert _document(tracker)["rejected"] is None
    assert "c" * 64 in tracker.failed  # still not retried unchanged


def test_a_rejection_disappears_when_the_files_are_the_manifest_in_force_again(
    tracker: ManifestTracker,
) -> None:
    """A rejected edit that is undone leaves nothing to re-apply, and nothing to report."""
    loaded = _loaded(site())
    tracker.accept(loaded)
    tracker.reject("c" * 64, 1.0, (Diagnostic("broken"),), "load")
    tracker.on_disk("c" * 64)
    assert tracker.rejected is not None
    tracker.on_disk(loaded.desired.manifest_sha256)
    assert tracker.rejected is None


def test_a_url_group_whose_step_failed_is_failing_with_the_reason(
    tracker: ManifestTracker,
) -> None:
    """A group the backend could not create (its port is taken) is ``failing``, not the state
    the manifest asks for, and says why; the text table shows both; ``failing`` lists it."""
    clock = FakeClock()
    error = TemporaryBackendError("cannot listen on 127.0.0.1:8080: Address already in use")
    backend = FakeBackend({"create urlgroup/web": error}, clock=clock)
    result = Reconciler(backend, clock, rng=random.Random(1)).reconcile_once(site())
    tracker.accept(_loaded(site()))
    doc = _document(tracker, last_result=result)
    groups = {g["name"]: g for g in doc["urlGroups"]}  # type: ignore[union-attr]
    assert ("failing", error.summary) == (groups["web"]["state"], groups["web"]["reason"])
    assert ("enabled", None) == (groups["api"]["state"], groups["api"]["reason"])
    row = next(line for line in render_status(doc).splitlines() if line.startswith("web "))
    assert "failing" in row
    assert "Address already in use" in row
    assert [f"create urlgroup/web: {error.summary}"] == failing(doc)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"rejected": None, "reconcile": {"failed": []}, "pools": {"a": {"halted": ""}}}, []),
        (
            {"rejected": {"error": "bad"}, "reconcile": {"failed": []}},
            ["manifest rejected: bad"],
        ),
        (
            {"pools": {"a": {"halted": "rapid-fail protection"}}},
            ["worker/a stopped: rapid-fail protection"],
        ),
    ],
    ids=["healthy", "rejected manifest", "halted pool"],
)
def test_failing_names_everything_that_fails(state: dict[str, object], expected: list[str]) -> None:
    """What makes ``status`` exit 3, one line each; nothing for a healthy controller."""
    assert expected == failing(state)


def test_each_worker_row_says_what_confines_it() -> None:
    """The SANDBOX column: seccomp and the Landlock ABI where applied, ``none`` when the backend
    reports neither, ``-`` when it does not say."""

    def worker(pool: str, sandbox: object) -> dict[str, object]:
        return {"pool": pool, "pid": 1, "user": "u", "state": "READY", "sandbox": sandbox}

    workers = [
        worker("both", {"seccomp": "filter", "landlock": {"applied": True, "abi": 7}}),
        worker("seccomp", {"seccomp": "filter", "landlock": {"applied": False, "why": "off"}}),
        worker("nothing", {"seccomp": "off", "landlock": None}),
        worker("unknown", None),
    ]
    text = render_status({"pid": 1, "manifest": {}, "reconcile": {}, "workers": workers})
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line}
    assert "SANDBOX" in rows["POOL"]
    column = rows["POOL"].index("SANDBOX")  # every cell before it is one word
    assert "seccomp+landlock7" == rows["both"][column]
    assert "seccomp" == rows["seccomp"][column]
    assert "none" == rows["nothing"][column]
    assert "-" == rows["unknown"][column]
