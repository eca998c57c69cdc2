"""``orchestrator plan`` against the HTTP.sys backend renders the same plan as against Linux.

The desired state is the shipped quickstart manifest. A plan's shape depends only on desired and live
state, so the check is that the HTTP.sys backend *observes* the same live state the Linux backend
reports for the same objects (nothing before apply, exactly the managed objects after) and that the
rendered text and JSON are then identical apart from the backend's name.
"""

from __future__ import annotations

import dataclasses
import json
import os
from types import MappingProxyType

import jsonschema

from orchestrator.manifest import load_manifest
from orchestrator.model import DesiredState, LiveState
from orchestrator.plan import Plan, make_plan
from orchestrator.plan.render import render_json, render_text
from tests.conftest import REPO
from tests.unit.httpsys.backend_kit import Kit

QUICKSTART = os.path.join(REPO, "examples", "quickstart")


def _quickstart() -> DesiredState:
    return load_manifest(QUICKSTART).desired


def _linux_live(resources: LiveState) -> LiveState:
    """What the Linux backend reports for the same objects: same resources, its own name."""
    return LiveState(
        resources=MappingProxyType(dict(resources.resources)),
        applied=resources.applied,
        generation=resources.generation,
        manifest_sha256=resources.manifest_sha256,
        backend="linux",
    )


def _without_backend(text: str) -> dict[str, object]:
    doc = json.loads(text)
    assert doc.pop("backend") in ("httpsys", "linux")
    return dict(doc)


def _text(plan: Plan) -> str:
    """The text rendering with the backend's name (its first line says which) taken out."""
    return render_text(plan).replace(f"Backend: {plan.backend} ", "Backend: - ", 1)


def test_the_first_plan_matches_linux_and_the_schema() -> None:
    """Nothing exists yet: 7 creates in the same waves, the same JSON, valid against the schema."""
    kit = Kit()
    desired = _quickstart()
    ours = make_plan(desired, kit.reconciler.live())
    theirs = make_plan(desired, LiveState.empty("linux"))
    assert "httpsys" == ours.backend
    assert {"add": 7, "change": 0, "replace": 0, "destroy": 0, "drift": 0} == ours.summary()
    assert _without_backend(render_json(theirs)) == _without_backend(render_json(ours))
    assert _text(theirs) == _text(ours)
    with open(os.path.join(REPO, "schemas", "plan.schema.json"), encoding="utf-8") as fh:
        jsonschema.validate(json.loads(render_json(ours)), json.load(fh))


def test_after_apply_the_plan_is_empty_and_a_change_plans_like_linux() -> None:
    """Converged means an empty plan; a changed pool is the same create-before-destroy step."""
    kit = Kit()
    desired = _quickstart()
    kit.converge(desired)
    live = kit.reconciler.live()
    assert make_plan(desired, live).is_empty
    resources = dict(desired.resources)
    hello = next(k for k in resources if str(k) == "worker/hello")
    resources[hello] = dataclasses.replace(resources[hello], processes=3)  # type: ignore[type-var]
    notes = next(k for k in resources if str(k) == "worker/notes")
    resources[notes] = dataclasses.replace(
        resources[notes], command=("orchestrator", "worker", "x:app")
    )  # type: ignore[type-var]
    changed = DesiredState.of(resources, "e" * 64)
    ours = make_plan(changed, live)
    theirs = make_plan(changed, _linux_live(live))
    assert {"update worker/hello", "replace_cbd worker/notes"} == {s.id for s in ours.steps}
    assert _without_backend(render_json(theirs)) == _without_backend(render_json(ours))
    assert _text(theirs) == _text(ours)
