"""``orchestrator render kubernetes``: golden renders of the examples, the docs table, and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.manifest.schema import schema
from tests.conftest import REPO

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
EXAMPLES = ["quickstart", "isolated"]


def _render(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["render", "kubernetes", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_renders_as_its_golden_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The objects and the warnings of each example; ORCH_UPDATE_GOLDEN=1 rewrites the files."""
    code, out, err = _render(capsys, os.path.join(REPO, "examples", name))
    err = err.replace(REPO + os.sep, "")
    expected_files = {f"{name}.yaml": out, f"{name}.warnings.txt": err}
    if os.environ.get("ORCH_UPDATE_GOLDEN"):
        for file, text in expected_files.items():
            Path(GOLDEN, file).write_text(text, encoding="utf-8")
    assert 0 == code
    for file, text in expected_files.items():
        assert Path(GOLDEN, file).read_text(encoding="utf-8") == text, file


def _schema_paths(node: dict[str, object], path: str) -> list[str]:
    defs = schema()["$defs"]
    assert isinstance(defs, dict)

    def resolve(n: dict[str, object]) -> dict[str, object]:
        if "$ref" in n:
            return {**defs[str(n["$ref"]).rsplit("/", 1)[-1]], **n}
        if "anyOf" in n:
            branches = n["anyOf"]
            assert isinstance(branches, list)
            return resolve(next(b for b in branches if b != {"type": "null"}))
        return n

    node = resolve(node)
    out = [path] if path else []
    props = node.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            out += _schema_paths(sub, f"{path}.{name}" if path else name)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in resolve(extra):
        out += _schema_paths(extra, f"{path}.NAME")
    items = node.get("items")
    if isinstance(items, dict) and "properties" in resolve(items):
        out += _schema_paths(items, f"{path}[]")
    return out


def test_every_schema_field_has_a_row_in_the_mapping_table() -> None:
    """docs/kubernetes.md maps (or says "no equivalent" for) every field, and nothing else."""
    with open(os.path.join(REPO, "docs", "kubernetes.md"), encoding="utf-8") as fh:
        text = fh.read()
    table = text.split("## The mapping, field by field", 1)[1]
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", table, re.M)
    documented = [path for path, _ in rows]
    assert _schema_paths(schema(), "") == documented
    assert all(mapping.strip() for _, mapping in rows)


def test_output_is_a_yaml_stream_of_every_object(capsys: pytest.CaptureFixture[str]) -> None:
    """Without -o: one stream on stdout, warnings on stderr in file:line:col: path: form."""
    code, out, err = _render(capsys, os.path.join(REPO, "examples", "quickstart"))
    docs = list(yaml.safe_load_all(out))
    assert 0 == code
    assert [
        "ServiceAccount",
        "ServiceAccount",
        "Service",
        "Service",
        "NetworkPolicy",
        "NetworkPolicy",
        "Deployment",
        "Deployment",
        "Gateway",
        "HTTPRoute",
        "HTTPRoute",
    ] == [d["kind"] for d in docs]
    assert re.search(r"site\.yaml:\d+:\d+: queues\.notes\.maxLength: warning: ", err)


def test_out_dir_gets_one_file_per_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o DIR writes kind-name.yaml files (created if missing), each one document."""
    target = tmp_path / "k8s"
    code, out, err = _render(capsys, os.path.join(REPO, "examples", "isolated"), "-o", str(target))
    assert (0, "") == (code, out)
    assert sorted(os.listdir(target)) == [
        "deployment-hello.yaml",
        "deployment-notes.yaml",
        "gateway-isolated.yaml",
        "httproute-hello.yaml",
        "httproute-notes.yaml",
        "networkpolicy-hello.yaml",
        "networkpolicy-notes.yaml",
        "service-hello.yaml",
        "service-notes.yaml",
        "serviceaccount-orch-hello.yaml",
        "serviceaccount-orch-notes.yaml",
    ]
    (doc,) = yaml.safe_load_all((target / "gateway-isolated.yaml").read_text(encoding="utf-8"))
    assert ("Gateway", "isolated") == (doc["kind"], doc["metadata"]["name"])
    assert "wrote 11 files to" in err


def test_strict_makes_warnings_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """--strict: exit 1, the warnings and why on stderr, nothing on stdout."""
    code, out, err = _render(capsys, os.path.join(REPO, "examples", "quickstart"), "--strict")
    assert (1, "") == (code, out)
    assert err.rstrip().endswith("8 warnings, which --strict makes errors")


def test_strict_passes_a_manifest_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest that carries over fully renders under --strict."""
    from tests.unit.render.test_kubernetes import MINIMAL

    path = tmp_path / "site.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    code, out, err = _render(capsys, str(path), "--strict")
    assert (0, "") == (code, err)
    assert "kind: Deployment" in out


@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_a_bad_out_path_is_one_line_without_a_traceback(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o onto a regular file, or below one: exit 1 and one line naming the path."""
    blocker = tmp_path / "plain"
    blocker.write_text("x", encoding="utf-8")
    target = blocker if where == "file" else blocker / "k8s"
    code, out, err = _render(
        capsys, os.path.join(REPO, "examples", "quickstart"), "-o", str(target)
    )
    last = err.strip().splitlines()[-1]
    assert (1, "") == (code, out)
    assert str(blocker) in last
    assert "Traceback" not in err


def test_errors_exit_1_with_their_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pool without an image: exit 1, file:line:col and what to set."""
    from tests.unit.render.test_kubernetes import MINIMAL

    path = tmp_path / "site.yaml"
    path.write_text(MINIMAL.replace("    image: img:1\n", ""), encoding="utf-8")
    code, out, err = _render(capsys, str(path))
    assert (1, "") == (code, out)
    assert f'{path}:13:3: workers.app: pool "app" has no container image' in err


def test_check_validates_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """--check passes both examples, and the manifest that sets every field, through the offline
    validators (the test setup installs the ``kubernetes`` extra, so this never skips)."""
    every_field = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "data", "every-field.yaml"
    )
    for path in [os.path.join(REPO, "examples", name) for name in EXAMPLES] + [every_field]:
        code, out, err = _render(capsys, path, "--check")
        assert 0 == code, err
        assert out.startswith("---\napiVersion: v1\n")


def test_the_command_runs_as_a_subprocess(tmp_path: Path) -> None:
    """``python -m orchestrator render kubernetes``: exit 0, YAML out, warnings on stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "render", "kubernetes", "examples/isolated"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert 0 == result.returncode, result.stderr
    assert 11 == len(list(yaml.safe_load_all(result.stdout)))
    assert "examples/isolated/site.yaml:" in result.stderr
    json.dumps(list(yaml.safe_load_all(result.stdout)))  # plain data only: no YAML tags
