"""Golden plans: NNN.live.yaml and NNN.desired.yaml render exactly NNN.plan.txt and NNN.plan.json.

Optional NNN.applied.yaml (what was last applied; defaults to the live state) and NNN.faults.yaml
(backend faults) add drift. Regenerate after an intended change with
``UPDATE_GOLDEN=1 pytest tests/unit/plan/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from types import MappingProxyType

import jsonschema
import pytest
import yaml

from orchestrator.manifest import load_manifest
from orchestrator.manifest.build import build_resources
from orchestrator.manifest.schema import apply_defaults
from orchestrator.model import DesiredState, Fault, Key, LiveState, Repair
from orchestrator.plan import make_plan
from orchestrator.plan.render import render_json, render_text
from tests.conftest import REPO

DATA = os.path.join(REPO, "tests", "data", "plans")
CASES = sorted({f.split(".", 1)[0] for f in os.listdir(DATA) if f.endswith(".desired.yaml")})


def _state(path: str) -> DesiredState:
    if not os.path.exists(path):
        return DesiredState.of({})
    return load_manifest(path).desired


def _observed(path: str) -> DesiredState:
    """A live state may break manifest rules (a pool whose queue vanished): no semantic checks."""
    if not os.path.exists(path):
        return DesiredState.of({})
    with open(path, "rb") as fh:
        content = fh.read()
    data = apply_defaults(yaml.safe_load(content))
    assert isinstance(data, dict)
    import hashlib

    return DesiredState.of(build_resources(data), hashlib.sha256(content).hexdigest())


def _live(case: str) -> LiveState:
    base = os.path.join(DATA, case)
    observed = _observed(base + ".live.yaml")
    applied = (
        _observed(base + ".applied.yaml") if os.path.exists(base + ".applied.yaml") else observed
    )
    faults: list[Fault] = []
    if os.path.exists(base + ".faults.yaml"):
        with open(base + ".faults.yaml", encoding="utf-8") as fh:
            faults.extend(
                Fault(
                    key=Key.parse(item["key"]),
                    reason=item["reason"],
                    detail=item.get("detail", ""),
                    repair=Repair(item.get("repair", "none")),
                    instance=item.get("instance", ""),
                )
                for item in yaml.safe_load(fh)
            )
    return LiveState(
        resources=observed.resources,
        applied=MappingProxyType(dict(applied.resources)),
        faults=tuple(faults),
        backend="linux",
        generation=3 if observed.resources else 0,
        manifest_sha256=observed.manifest_sha256 if observed.resources else "",
    )


def _check(path: str, actual: str) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(actual)
    with open(path, encoding="utf-8") as fh:
        assert fh.read() == actual


@pytest.mark.parametrize("case", CASES)
def test_plan_text_matches_golden(case: str) -> None:
    """The human rendering is stable."""
    plan = make_plan(_state(os.path.join(DATA, case + ".desired.yaml")), _live(case))
    _check(os.path.join(DATA, case + ".plan.txt"), render_text(plan))


@pytest.mark.parametrize("case", CASES)
def test_plan_json_matches_golden_and_the_documented_shape(case: str) -> None:
    """The JSON rendering is stable and validates against schemas/plan.schema.json."""
    plan = make_plan(_state(os.path.join(DATA, case + ".desired.yaml")), _live(case))
    text = render_json(plan)
    with open(os.path.join(REPO, "schemas", "plan.schema.json"), encoding="utf-8") as fh:
        jsonschema.validate(json.loads(text), json.load(fh))
    _check(os.path.join(DATA, case + ".plan.json"), text)
