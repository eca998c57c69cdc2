"""docs/scaling-out.md and what it ships: the Argo CD plugin, its repo-server patch and kustomization,
and the git-pull timer. Each file has the fields its consumer (Argo CD, kustomize, systemd) needs, and
the copies quoted in the doc are the shipped files, so the two cannot drift apart."""

from __future__ import annotations

import argparse
import configparser
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import build_parser
from tests.conftest import REPO

DOCS = Path(REPO) / "docs"
DOC = DOCS / "scaling-out.md"
ARGOCD = DOCS / "argocd"
SYSTEMD = DOCS / "systemd"

CMP_SERVER = "/var/run/argocd/argocd-cmp-server"
PLUGIN_PATH = "/home/argocd/cmp-server/config/plugin.yaml"
#: Volumes the stock argocd-repo-server Deployment already declares; a sidecar may mount them.
STOCK_VOLUMES = frozenset({"var-files", "plugins"})
#: The plugin spec's fields, per Argo CD's config-management-plugins documentation.
PLUGIN_SPEC_FIELDS = frozenset(
    {"version", "init", "generate", "discover", "parameters", "preserveFileMode", "provideGitCreds"}
)
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def _blocks(language: str) -> list[str]:
    """The fenced code blocks of the doc in ``language``, in order."""
    pattern = re.compile(rf"^```{language}\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return pattern.findall(DOC.read_text(encoding="utf-8"))


def _plugin() -> dict[str, Any]:
    return _load(ARGOCD / "plugin.yaml")


def _sidecar() -> dict[str, Any]:
    patch = _load(ARGOCD / "repo-server-patch.yaml")
    containers = patch["spec"]["template"]["spec"]["containers"]
    sidecars = [c for c in containers if c.get("command") == [CMP_SERVER]]
    assert 1 == len(sidecars), containers
    sidecar: dict[str, Any] = sidecars[0]
    return sidecar


def test_the_plugin_has_the_fields_argo_cd_requires() -> None:
    """apiVersion, kind, a DNS-label name, a version, and only fields Argo CD knows in the spec."""
    plugin = _plugin()
    assert ("argoproj.io/v1alpha1", "ConfigManagementPlugin") == (
        plugin["apiVersion"],
        plugin["kind"],
    )
    assert DNS1123_LABEL.fullmatch(plugin["metadata"]["name"])
    assert isinstance(plugin["spec"]["version"], str)
    assert set(plugin["spec"]) <= PLUGIN_SPEC_FIELDS
    assert plugin["spec"]["preserveFileMode"] is False


def test_the_plugin_generates_with_orchestrator_render_kubernetes_on_the_source_directory() -> None:
    """No shell: a failed render must be a non-zero exit, never hidden behind a pipe."""
    generate = _plugin()["spec"]["generate"]
    command = generate["command"]
    assert all(isinstance(word, str) for word in command)
    assert ["orchestrator", "render", "kubernetes"] == command[:3]
    assert "." in command[3:]
    assert "args" not in generate
    assert not {"sh", "bash", "|"} & set(command)


def test_the_generate_command_is_one_the_cli_accepts() -> None:
    """The options the plugin passes are real ``render kubernetes`` options."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if "render" not in commands:
        pytest.skip("`orchestrator render` is not registered in this tree yet")
    command = _plugin()["spec"]["generate"]["command"]
    args = parser.parse_args(command[1:])  # an unknown option exits 2 here
    assert "." in vars(args).values()


def test_the_sidecar_follows_argo_cds_checklist() -> None:
    """argocd-cmp-server entrypoint, non-root user 999, plugin.yaml at the path the server reads."""
    sidecar = _sidecar()
    security = sidecar["securityContext"]
    assert (True, 999) == (security["runAsNonRoot"], security["runAsUser"])
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert "var-files" == mounts["/var/run/argocd"]["name"]
    assert "plugins" == mounts["/home/argocd/cmp-server/plugins"]["name"]
    assert "plugin.yaml" == mounts[PLUGIN_PATH]["subPath"]
    assert "tmp" != mounts["/tmp"]["name"]  # never the repo-server's own /tmp volume


def test_every_volume_the_sidecar_mounts_exists() -> None:
    """Mounted volumes are declared by the patch or are the repo-server's stock ones."""
    patch = _load(ARGOCD / "repo-server-patch.yaml")
    assert ("apps/v1", "Deployment", "argocd-repo-server") == (
        patch["apiVersion"],
        patch["kind"],
        patch["metadata"]["name"],
    )
    declared = {v["name"] for v in patch["spec"]["template"]["spec"]["volumes"]}
    mounted = {m["name"] for m in _sidecar()["volumeMounts"]}
    assert set() == mounted - declared - STOCK_VOLUMES


def test_the_kustomization_feeds_the_patch_the_plugin_configmap() -> None:
    """The ConfigMap the sidecar mounts is generated from plugin.yaml under the exact name used."""
    kustomization = _load(ARGOCD / "kustomization.yaml")
    assert "Kustomization" == kustomization["kind"]
    for patch in kustomization["patches"]:
        assert (ARGOCD / patch["path"]).is_file()
    (generator,) = kustomization["configMapGenerator"]
    assert ["plugin.yaml"] == generator["files"]
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    patch = _load(ARGOCD / "repo-server-patch.yaml")
    config_volumes = [
        v["configMap"]["name"]
        for v in patch["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    ]
    assert [generator["name"]] == config_volumes


def test_every_yaml_block_in_the_doc_parses() -> None:
    """Each ``yaml`` block is a YAML mapping (so a reader can paste it)."""
    blocks = _blocks("yaml")
    assert len(blocks) >= 2
    for block in blocks:
        assert isinstance(yaml.safe_load(block), dict), block


def test_the_doc_quotes_the_shipped_plugin_exactly() -> None:
    """The plugin shown in the doc is the file in docs/argocd/, byte for byte."""
    assert (ARGOCD / "plugin.yaml").read_text(encoding="utf-8") in _blocks("yaml")


def test_the_example_application_names_the_plugin_as_argo_cd_expects() -> None:
    """``<metadata.name>-<spec.version>`` when the plugin has a version."""
    plugin = _plugin()
    (application,) = (
        doc for doc in map(yaml.safe_load, _blocks("yaml")) if doc.get("kind") == "Application"
    )
    expected = f"{plugin['metadata']['name']}-{plugin['spec']['version']}"
    assert expected == application["spec"]["source"]["plugin"]["name"]


@pytest.mark.parametrize("name", ["orchestrator-git-pull.service", "orchestrator-git-pull.timer"])
def test_the_doc_quotes_the_shipped_timer_units_exactly(name: str) -> None:
    """The units shown in the doc are the files in docs/systemd/."""
    assert (SYSTEMD / name).read_text(encoding="utf-8") in _blocks("ini")


def test_the_timer_runs_a_fast_forward_only_pull() -> None:
    """The timer starts the service of the same name, which pulls with --ff-only."""
    units = {}
    for name in ("orchestrator-git-pull.service", "orchestrator-git-pull.timer"):
        unit = configparser.ConfigParser(interpolation=None, strict=True)
        unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
        unit.read(SYSTEMD / name, encoding="utf-8")
        units[name] = unit
    assert "oneshot" == units["orchestrator-git-pull.service"]["Service"]["Type"]
    exec_start = units["orchestrator-git-pull.service"]["Service"]["ExecStart"]
    assert " pull --ff-only " in f"{exec_start} "
    timer = units["orchestrator-git-pull.timer"]
    assert "OnUnitActiveSec" in timer["Timer"]
    assert "timers.target" == timer["Install"]["WantedBy"]


def _links() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return sorted({t for t in re.findall(r"\]\(([^)]+)\)", text) if "://" not in t})


def _anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


@pytest.mark.parametrize("target", _links())
def test_relative_links_in_the_doc_resolve(target: str) -> None:
    """Files exist, and an anchor names a heading of its file."""
    path, _, anchor = target.partition("#")
    resolved = DOCS / path
    if path == "kubernetes.md" and not resolved.exists():
        pytest.skip("docs/kubernetes.md arrives with the renderer (issue 11)")
    assert resolved.exists(), target
    if anchor:
        assert anchor in _anchors(resolved), target


def test_the_readme_lists_the_doc() -> None:
    """The documentation list in README.md links to it."""
    assert "(docs/scaling-out.md)" in (Path(REPO) / "README.md").read_text(encoding="utf-8")
