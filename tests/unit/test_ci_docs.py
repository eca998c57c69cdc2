"""docs/ci.md cannot rot: its GitHub Actions workflow, GitLab CI job, pre-commit config and shell
example are taken from the page and run on the quickstart example.

The scripts run as the CI services run them (bash with ``-eo pipefail``), with the real
``orchestrator`` and ``jq``; ``gh``, ``git``, ``curl`` and ``pip`` are stubs that log their
arguments (``git show REF:PATH`` prints PATH, as if REF had it). Steps that ``uses:`` an action are
done by the fixture instead: the checkout is a workspace holding the pull request's manifest at
``$MANIFEST`` and the base branch's under ``base/``; they differ in one pool's env.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOC = os.path.join(REPO, "docs", "ci.md")
QUICKSTART = os.path.join(REPO, "examples", "quickstart")
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
if [ "$(basename "$0")" = git ] && [ "$1" = show ]; then cat "${2#*:}"; fi
"""
SHELL = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]


def _blocks() -> dict[str, str]:
    """The page's fenced yaml and sh blocks, keyed by their first line (``# .gitlab-ci.yml``)."""
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    blocks = re.findall(r"```(?:yaml|sh)\n(.*?)```", text, re.DOTALL)
    return {b.split("\n", 1)[0].strip(): b for b in blocks}


def _block(first_line: str) -> str:
    blocks = _blocks()
    assert first_line in blocks, f"docs/ci.md has no block starting {first_line!r}"
    return blocks[first_line]


def _github() -> dict[str, object]:
    doc: dict[str, object] = yaml.safe_load(_block("# .github/workflows/orchestrator.yml"))
    return doc


def _gitlab_job() -> dict[str, object]:
    doc = yaml.safe_load(_block("# .gitlab-ci.yml"))
    assert isinstance(doc, dict)
    (job,) = doc.values()
    assert isinstance(job, dict)
    return job


def _manifest_dir(env: Mapping[str, object]) -> str:
    manifest = env["MANIFEST"]
    assert isinstance(manifest, str)
    return manifest


def _workspace(tmp_path: Path, manifest: str, *, base: bool = True) -> Path:
    """The pull request's checkout: ``manifest`` changed (a pool's env) from ``base/manifest``."""
    work = tmp_path / "work"
    head = work / manifest
    shutil.copytree(QUICKSTART, head)
    site = head / "site.yaml"
    site.write_text(site.read_text().replace("notes, served from a queue", "notes, reviewed"))
    if base:
        shutil.copytree(QUICKSTART, work / "base" / manifest)
    return work


def _environment(tmp_path: Path, extra: Mapping[str, object]) -> dict[str, str]:
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    for name in ("gh", "git", "curl", "pip"):
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    env = {
        "PATH": f"{stubs}:{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STUB_LOG": str(tmp_path / "stubs.log"),
        "LANG": "C.UTF-8",
    }
    # ${{ ... }} is GitHub's to fill: any non-empty value stands in for it here.
    env.update({k: "42" if "${{" in str(v) else str(v) for k, v in extra.items()})
    return env


def _run(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHELL, script], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=120
    )


def _stub_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "stubs.log"
    return log.read_text().splitlines() if log.exists() else []


def _github_run_steps() -> list[dict[str, object]]:
    jobs = _github()["jobs"]
    assert isinstance(jobs, dict)
    (job,) = jobs.values()
    return [s for s in job["steps"] if "run" in s]


def test_github_workflow_validates_plans_and_comments(tmp_path: Path) -> None:
    """Every run: step succeeds in order; the plan lands in plan.md, the job summary and the
    pull-request comment."""
    workflow_env = _github()["env"]
    assert isinstance(workflow_env, dict)
    work = _workspace(tmp_path, _manifest_dir(workflow_env))
    summary = tmp_path / "summary.md"
    for step in _github_run_steps():
        env = _environment(
            tmp_path, {**workflow_env, **step.get("env", {}), "GITHUB_STEP_SUMMARY": summary}
        )
        proc = _run(str(step["run"]), work, env)
        assert 0 == proc.returncode, f"{step.get('name')}:\n{proc.stdout}\n{proc.stderr}"
    plan = (work / "plan.md").read_text()
    assert "<details>" in plan
    assert "worker/notes" in plan  # the one change: that pool's restart
    assert plan in summary.read_text()
    assert ["gh pr comment 42 --edit-last --create-if-none --body-file plan.md"] == [
        c for c in _stub_calls(tmp_path) if c.startswith("gh ")
    ]


def test_github_validate_step_fails_with_an_annotation_on_the_line(tmp_path: Path) -> None:
    """An invalid manifest fails the validate step, and jq turned the diagnostic into a GitHub
    ``::error file=...,line=...,col=...`` annotation."""
    workflow_env = _github()["env"]
    assert isinstance(workflow_env, dict)
    manifest = _manifest_dir(workflow_env)
    work = _workspace(tmp_path, manifest, base=False)
    site = work / manifest / "site.yaml"
    site.write_text(site.read_text().replace("maxLength: 200", "maxLenght: 200"))
    (step,) = [s for s in _github_run_steps() if "validate" in str(s["run"])]
    proc = _run(str(step["run"]), work, _environment(tmp_path, workflow_env))
    assert 0 != proc.returncode
    assert re.search(
        rf"^::error file={re.escape(manifest)}/site\.yaml,line=\d+,col=\d+::queues\.notes\.maxLenght: ",
        proc.stdout,
        re.MULTILINE,
    ), proc.stdout


def test_gitlab_job_validates_plans_and_posts_a_note(tmp_path: Path) -> None:
    """before_script and script run line by line in one shell; the note's body is plan.md."""
    job = _gitlab_job()
    variables = job["variables"]
    assert isinstance(variables, dict)
    # `git worktree add base` (a stub here) is what puts the target branch under base/.
    work = _workspace(tmp_path, _manifest_dir(variables))
    ci = {
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "42",
        "PLAN_COMMENT_TOKEN": "token",
    }
    lines = [*job.get("before_script", []), *job["script"]]  # type: ignore[misc]
    proc = _run("\n".join(lines), work, _environment(tmp_path, {**variables, **ci}))
    assert 0 == proc.returncode, f"{proc.stdout}\n{proc.stderr}"
    plan = (work / "plan.md").read_text()
    assert "<details>" in plan
    assert "worker/notes" in plan  # the one change: that pool's restart
    calls = _stub_calls(tmp_path)
    assert "git worktree add --detach base FETCH_HEAD" in calls
    notes_url = "https://gitlab.example/api/v4/projects/7/merge_requests/42/notes"
    assert any(c.startswith("curl ") and "body@plan.md" in c and notes_url in c for c in calls)
    assert ["plan.md"] == job["artifacts"]["paths"]  # type: ignore[index]


def test_the_shell_example_validates_a_manifest_piped_from_git(tmp_path: Path) -> None:
    """``git show REF:PATH | orchestrator validate --stdin-filename PATH -`` works as written."""
    (script,) = [b for first, b in _blocks().items() if first.startswith("git show")]
    path = re.search(r"--stdin-filename (\S+)", script)
    assert path is not None
    manifest = os.path.dirname(path.group(1))
    work = _workspace(tmp_path, manifest, base=False)
    proc = _run(script, work, _environment(tmp_path, {}))
    assert 0 == proc.returncode, proc.stderr
    assert proc.stdout.startswith(f"{path.group(1)}: valid (")
    assert "" == proc.stderr  # relative cwd found beside the named file: no warning


def _hook() -> dict[str, object]:
    with open(os.path.join(REPO, ".pre-commit-hooks.yaml"), encoding="utf-8") as fh:
        hooks = yaml.safe_load(fh)
    (hook,) = [h for h in hooks if h["id"] == "orchestrator-validate"]
    assert isinstance(hook, dict)
    return hook


def test_pre_commit_hook_declares_what_pre_commit_needs() -> None:
    """id, name, entry and language are required by pre-commit; the hook validates the PATH in
    ``args`` once (a directory is one manifest), not each changed file alone."""
    hook = _hook()
    assert "orchestrator validate" == hook["entry"]
    assert "python" == hook["language"]
    assert hook["name"]
    assert hook["pass_filenames"] is False
    assert re.search(str(hook["files"]), "deploy/site/site.yml")
    assert not re.search(str(hook["files"]), "deploy/site/README.md")


@pytest.mark.parametrize(("broken", "expected"), [(False, 0), (True, 1)])
def test_pre_commit_config_from_the_docs_runs_the_hook_on_the_manifest(
    tmp_path: Path, broken: bool, expected: int
) -> None:
    """The documented config names the shipped hook; its files pattern selects the manifest and
    not the workflows, and entry + args (as pre-commit runs them) pass a valid manifest and fail
    a broken one."""
    config = yaml.safe_load(_block("# .pre-commit-config.yaml"))
    (entry,) = [h for repo in config["repos"] for h in repo["hooks"]]
    assert "orchestrator-validate" == entry["id"]
    (manifest,) = entry["args"]
    assert re.search(entry["files"], f"{manifest}/site.yaml")
    assert not re.search(entry["files"], ".github/workflows/orchestrator.yml")
    work = _workspace(tmp_path, manifest, base=False)
    if broken:
        site = work / manifest / "site.yaml"
        site.write_text(site.read_text().replace("queue: notes\n", "queue: nowhere\n", 1))
    argv = [*shlex.split(str(_hook()["entry"])), *entry["args"]]
    proc = _run(shlex.join(argv), work, _environment(tmp_path, {}))
    assert expected == proc.returncode, proc.stderr
