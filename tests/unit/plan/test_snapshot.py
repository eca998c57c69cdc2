"""Snapshots for ``plan --live`` and the assumed live state of ``plan --against`` (issue 13 item 1)."""

from __future__ import annotations

import json
import os
from types import MappingProxyType

import pytest

from orchestrator.errors import PlanError
from orchestrator.manifest import load_manifest
from orchestrator.model import EnvVar, Fault, Key, Kind, LiveState, Principal, Repair
from orchestrator.model.desired import (
    ListenerSettings,
    PrincipalKind,
    ResourceLimits,
    TimeoutOverrides,
    TlsBinding,
)
from orchestrator.plan import make_plan
from orchestrator.plan.render import plan_document
from orchestrator.plan.snapshot import assumed_live, read_spec, spec_document
from tests.conftest import REPO
from tests.support.states import desired, group, pool, queue, session

SECRET = "hunter2-is-not-a-good-password"


def _rich() -> object:
    """Every kind of field: nested settings, tuples of dataclasses, None, Literal, secrets."""
    return desired(
        session(
            tls=(TlsBinding(address="0.0.0.0:443", cert_file="/c.pem", key_file="/k.pem"),),
            listener=ListenerSettings(processes="auto", open_files=4096),
        ),
        queue("api", acl=(Principal(kind=PrincipalKind.GROUP, name="staff"),), max_length=7),
        group("api", "api", "http://+:8080/a|b/", timeouts=TimeoutOverrides(header_wait_s=5.0)),
        pool(
            "api",
            "api",
            "app",
            "--x",
            env=(EnvVar(name="A", value="1"), EnvVar(name="TOKEN", value=SECRET, secret=True)),
            limits=ResourceLimits(memory_bytes=1 << 20, cpu=1),
        ),
    )


def _roundtrip(state: LiveState, planned: object) -> LiveState:
    text = json.dumps({"state": "running", "spec": spec_document(state)})
    return read_spec(json.loads(text), "snap.json", planned)  # type: ignore[arg-type]


def test_a_snapshot_reads_back_as_the_same_live_state() -> None:
    """Equal resources, generation, faults and fingerprint: the plan cannot tell them apart."""
    site = _rich()
    state = LiveState(
        resources=site.resources,  # type: ignore[attr-defined]
        applied=MappingProxyType(dict(site.resources)),  # type: ignore[attr-defined]
        faults=(
            Fault(key=Key(Kind.QUEUE, "api"), reason="socket_permissions", repair=Repair.UPDATE),
        ),
        backend="linux",
        generation=4,
        manifest_sha256="a" * 64,
    )
    back = _roundtrip(state, site)
    assert dict(state.resources) == dict(back.resources)
    assert dict(state.applied) == dict(back.applied)
    assert (state.faults, state.generation, state.backend) == (
        back.faults,
        back.generation,
        back.backend,
    )
    assert state.fingerprint() == back.fingerprint()


def test_a_snapshot_never_holds_a_secret_value() -> None:
    """Only the secret's hash leaves the controller."""
    site = _rich()
    text = json.dumps(spec_document(assumed_live(site, "linux")))  # type: ignore[arg-type]
    assert SECRET not in text
    assert '"secret": true' in text


def test_an_unchanged_secret_is_no_change_and_a_changed_one_is() -> None:
    """The manifest's value is taken back when its hash matches; otherwise the pool restarts."""
    site = _rich()
    state = assumed_live(site, "linux")  # type: ignore[arg-type]
    assert make_plan(site, _roundtrip(state, site)).is_empty  # type: ignore[arg-type]
    resources = dict(site.resources)  # type: ignore[attr-defined]
    api = resources[Key(Kind.WORKER, "api")]
    import dataclasses

    changed_env = (EnvVar(name="A", value="1"), EnvVar(name="TOKEN", value="new", secret=True))
    resources[api.key] = dataclasses.replace(api, env=changed_env)
    new_site = desired(*resources.values())
    plan = make_plan(new_site, _roundtrip(state, new_site))
    assert ["replace_cbd worker/api"] == [s.id for s in plan.steps]
    assert "(sensitive value)" in json.dumps(plan_document(plan))
    assert "new" not in json.dumps(plan_document(plan)["resource_changes"])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"state": "running"}, "snap.json: not a controller snapshot"),
        ([1, 2], "snap.json: not a controller snapshot"),
        (None, "snap.json: not a controller snapshot"),
        (
            {"spec": {"format": "orchestrator-spec/1", "applied": [], "observed": [{"x": 1}]}},
            "snap.json: unreadable controller snapshot: spec.observed[0]",
        ),
        (
            {
                "spec": {
                    "format": "orchestrator-spec/1",
                    "applied": [{"address": "queue/api", "fields": {"max_length": "many"}}],
                    "observed": [],
                    "faults": [],
                }
            },
            "spec.applied[0] (queue/api).max_length",
        ),
    ],
)
def test_a_file_that_is_not_a_snapshot_is_one_clear_error(doc: object, message: str) -> None:
    """The summary names the file and what is wrong; the detail says how to write one."""
    with pytest.raises(PlanError) as info:
        read_spec(doc, "snap.json", desired())
    assert message in info.value.summary
    assert "\n" not in info.value.summary
    assert "orchestrator status --json --spec" in info.value.detail


def test_the_assumed_live_state_of_a_manifest_plans_nothing_against_itself() -> None:
    """--against the same manifest: no changes (observed and applied are the manifest)."""
    loaded = load_manifest(os.path.join(REPO, "examples", "quickstart"))
    plan = make_plan(loaded.desired, assumed_live(loaded.desired, "linux"))
    assert plan.is_empty
    assert loaded.desired.manifest_sha256 == plan.live_manifest_sha256
