"""The JSON Schema: shipped exactly, strict everywhere, self-describing, and in step with the model."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from orchestrator.cli import main
from orchestrator.manifest.schema import apply_defaults, schema, schema_text
from orchestrator.model import desired as model
from tests.conftest import REPO


def _objects(node: object, path: str = "") -> Iterator[tuple[str, dict[str, object]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{path}/{i}")


def test_schema_command_prints_the_shipped_file_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    """``orchestrator schema`` prints byte for byte what schemas/manifest.schema.json holds."""
    assert main(["schema"]) == 0
    with open(os.path.join(REPO, "schemas", "manifest.schema.json"), encoding="utf-8") as fh:
        assert fh.read() == capsys.readouterr().out


def test_every_object_forbids_unknown_properties() -> None:
    """additionalProperties is false (or a schema for keyed maps) on every object."""
    for path, node in _objects(schema()):
        if "properties" in node:
            assert node.get("additionalProperties") is False, path


def test_every_property_has_a_description_and_a_default() -> None:
    """Editors and docs show both for every field."""
    for path, node in _objects(schema()):
        for name, prop in dict(node.get("properties", {})).items():
            assert isinstance(prop, dict)
            assert prop.get("description"), f"{path}/{name} has no description"
            assert "default" in prop, f"{path}/{name} has no default"


def test_model_defaults_equal_schema_defaults() -> None:
    """A minimal manifest built through the schema's defaults equals the dataclass defaults."""
    from orchestrator.manifest.build import build_resources
    from orchestrator.model.ids import Key, Kind

    doc = apply_defaults(
        {
            "apiVersion": "orchestrator/v1",
            "session": {"name": "main"},
            "queues": {"q": {}},
            "urlGroups": {"g": {"queue": "q", "urls": ["http://+:80/"]}},
            "workers": {"w": {"queue": "q", "command": ["x"]}},
        }
    )
    assert isinstance(doc, dict)
    built = build_resources(doc)
    s = Key(Kind.SESSION, "main")
    q = Key(Kind.QUEUE, "q")
    assert model.Session(key=s) == built[s]
    assert model.RequestQueue(key=q, session=s) == built[q]
    g = Key(Kind.URLGROUP, "g")
    assert model.UrlGroup(key=g, session=s, queue=q, urls=("http://+:80/",)) == built[g]
    w = Key(Kind.WORKER, "w")
    assert model.WorkerPool(key=w, session=s, queue=q, command=("x",)) == built[w]


def test_resource_dataclasses_are_frozen() -> None:
    """Resources are values: assigning a field raises."""
    s = model.Session(key=model.Key(model.Kind.SESSION, "main"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.run_dir = "/tmp"  # type: ignore[misc]


def test_manifest_docs_are_generated_from_the_current_schema() -> None:
    """docs/manifest.md is stale when the schema changed and the generator was not rerun."""
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "gen_manifest_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself validates against its metaschema."""
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(json.loads(schema_text()))
