"""Hot reload: file watching, last-known-good, apply safety and overlapped recycling, end to end.

The controller watches the manifest's directory (debounce 100 ms in these tests unless a test says
otherwise, hash poll every 1 s). Every wait is bounded, and none is a fixed sleep: where a test
asserts that something did *not* happen (no second load, no retry), it first asks the controller to
reload now (the admin API's ``reload``, the job a file event or SIGHUP runs) and checks that this
finds nothing to do; any late file event would run that same decision.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from orchestrator.cli import main
from tests.support.controller import (
    ANY_PORT,
    Controller,
    Names,
    quickstart_manifest,
    running_controller,
    wait_until,
)

pytestmark = pytest.mark.integration


def _loaded(ctl: Controller) -> list[str]:
    return [str(e["manifest"]) for e in ctl.events("manifest_loaded")]


def _with_more(manifest: str) -> str:
    """The manifest with /more/ routed to the notes queue too."""
    return manifest.replace(
        'urls: ["http://127.0.0.1:0/notes/"]',
        'urls: ["http://127.0.0.1:0/notes/", "http://127.0.0.1:0/more/"]',
    )


def _nothing_to_reload(ctl: Controller) -> bool:
    """Reload now (the decision every file event and SIGHUP leads to); True when it applied nothing:
    the files are what runs, or what was already rejected."""
    return not ctl.client.request("reload")["accepted"]


def _sha(text: str, name: str = "site.yaml") -> str:
    import hashlib

    digest = hashlib.sha256()
    data = text.encode()
    digest.update(len(name.encode()).to_bytes(4, "big") + name.encode())
    digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()[:12]


def test_an_editor_save_is_routable_within_a_second_and_applied_once(
    world_dir: str, names: Names
) -> None:
    """Write a temporary file, rename it over the manifest: the new prefix answers within 1 s."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        assert 404 == ctl.get("/more/").status
        new = _with_more(manifest)
        ctl.write("site.yaml", new)
        written = time.monotonic()
        wait_until(lambda: ctl.get("/more/", timeout=2).status == 200, 5, "/more/ to be routed")
        assert time.monotonic() - written < 1.0
        assert _nothing_to_reload(ctl)
        assert 1 == _loaded(ctl).count(_sha(new))


def test_a_configmap_symlink_swap_is_applied_once(world_dir: str, names: Names) -> None:
    """site.yaml -> ..data/site.yaml, ..data -> ..v1/: swapping ..data to ..v2/ is one reload."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        site = ctl.site
        os.makedirs(os.path.join(site, "..v1"))
        with open(os.path.join(site, "..v1", "site.yaml"), "w", encoding="utf-8") as fh:
            fh.write(manifest)
        os.symlink("..v1", os.path.join(site, "..data"))
        os.symlink("..data/site.yaml", os.path.join(site, "site.yaml.new"))
        os.replace(os.path.join(site, "site.yaml.new"), os.path.join(site, "site.yaml"))
        assert _nothing_to_reload(ctl)  # same content: nothing to apply
        assert [] == [m for m in _loaded(ctl) if m != _sha(manifest)]
        new = _with_more(manifest)
        os.makedirs(os.path.join(site, "..v2"))
        with open(os.path.join(site, "..v2", "site.yaml"), "w", encoding="utf-8") as fh:
            fh.write(new)
        os.symlink("..v2", os.path.join(site, "..data_tmp"))
        os.replace(os.path.join(site, "..data_tmp"), os.path.join(site, "..data"))
        subprocess.run(["rm", "-rf", os.path.join(site, "..v1")], check=True)
        wait_until(lambda: ctl.get("/more/", timeout=2).status == 200, 10, "the swapped manifest")
        assert _nothing_to_reload(ctl)
        assert 1 == _loaded(ctl).count(_sha(new))


def test_a_file_written_in_two_halves_is_applied_once_and_never_half(
    world_dir: str, names: Names
) -> None:
    """Two writes 200 ms apart (default debounce 300 ms): one reload, of the whole file."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest, args=("--debounce", "300ms")) as ctl:
        new = _with_more(manifest)
        half = len(new) // 2
        path = os.path.join(ctl.site, "site.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(new[:half])
            fh.flush()
            time.sleep(0.2)  # the scenario: a writer that pauses inside the debounce window
            fh.write(new[half:])
        wait_until(lambda: ctl.get("/more/", timeout=2).status == 200, 10, "the complete manifest")
        assert _nothing_to_reload(ctl)
        assert 1 == _loaded(ctl).count(_sha(new))
        assert _sha(new[:half]) not in _loaded(ctl)
        assert not [
            e for e in ctl.events("manifest_rejected") if e.get("manifest") == _sha(new[:half])
        ]


def test_invalid_yaml_changes_nothing_and_status_names_the_line(
    world_dir: str, names: Names
) -> None:
    """Pids and routes unchanged; status shows the rejection with file:line:column."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        pids = ctl.pids(names.hello) | ctl.pids(names.notes)
        ctl.write("site.yaml", manifest.replace("queues:\n", "queues:\n\tbroken: {}\n"))
        wait_until(lambda: ctl.state().get("rejected"), 10, "the rejection")
        rejected = ctl.state()["rejected"]
        assert isinstance(rejected, dict)
        assert re.search(r"site\.yaml:\d+:\d+: YAML syntax error", str(rejected["error"]))
        assert pids == ctl.pids(names.hello) | ctl.pids(names.notes)
        assert 200 == ctl.get("/hello/").status
        assert 200 == ctl.get("/notes/").status
        assert main(["status", "--run-dir", ctl.run_dir]) == 3  # a rejected manifest fails


def test_a_reload_naming_a_missing_cwd_is_refused_and_the_last_good_keeps_serving(
    world_dir: str, names: Names
) -> None:
    """The controller loads strictly: a pool's cwd that does not exist is an error, not a worker
    that could only crash-loop; nothing restarts."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        pids = ctl.pids(names.hello) | ctl.pids(names.notes)
        ctl.write("site.yaml", manifest.replace("cwd: apps\n", "cwd: no-such-dir\n", 1))
        wait_until(lambda: ctl.state().get("rejected"), 10, "the rejection")
        error = str(ctl.state()["rejected"]["error"])  # type: ignore[index]
        assert re.search(r"site\.yaml:\d+:\d+: workers\.\S+\.cwd: working directory", error)
        assert 'no-such-dir" does not exist on this host' in error
        assert pids == ctl.pids(names.hello) | ctl.pids(names.notes)
        assert 200 == ctl.get("/hello/").status


def test_deleting_every_manifest_file_stops_nothing_and_says_why(
    world_dir: str, names: Names
) -> None:
    """An empty directory is rejected (it would delete everything); everything keeps serving."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        pids = ctl.pids(names.hello)
        os.unlink(os.path.join(ctl.site, "site.yaml"))
        wait_until(lambda: ctl.state().get("rejected"), 10, "the rejection")
        assert "no manifest files" in str(ctl.state()["rejected"]["error"])  # type: ignore[index]
        assert _nothing_to_reload(ctl)  # rejected once, not tried again
        assert pids == ctl.pids(names.hello)
        assert 200 == ctl.get("/hello/").status


def test_a_manifest_that_would_delete_most_objects_is_refused(world_dir: str, names: Names) -> None:
    """A truncated manifest that keeps only the session: the mass-delete guard refuses it."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        ctl.write("site.yaml", "apiVersion: orchestrator/v1\nsession:\n  name: test\n")
        wait_until(lambda: ctl.state().get("rejected"), 10, "the refusal")
        assert "mass-delete guard" in str(ctl.state()["rejected"]["error"])  # type: ignore[index]
        assert 200 == ctl.get("/notes/").status


def test_editor_leftovers_trigger_no_reload(world_dir: str, names: Names) -> None:
    """vim's 4913, swap and backup files, emacs lock files: nothing is loaded."""
    with running_controller(world_dir, quickstart_manifest(ANY_PORT, names)) as ctl:
        before = len(_loaded(ctl))
        for name in ("4913", ".site.yaml.swp", "site.yaml~", ".#site.yaml"):
            with open(os.path.join(ctl.site, name), "w", encoding="utf-8") as fh:
                fh.write("garbage: [")
        # Were any of them read as a manifest file, this reload would load or reject it.
        assert _nothing_to_reload(ctl)
        assert before == len(_loaded(ctl))
        assert not ctl.state().get("rejected")


def test_a_reload_that_fails_rolls_back_and_is_not_retried(world_dir: str, names: Names) -> None:
    """A pool whose new command cannot boot: the old processes keep serving, the outcome is
    "rolled_back", the manifest is recorded as rejected and not tried again."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        old = ctl.pids(names.hello)
        bad = manifest.replace(
            'command: [orchestrator, worker, "hello:app"]',
            f'command: [{sys.executable}, -c, "import sys; sys.exit(3)"]',
        )
        ctl.write("site.yaml", bad)
        wait_until(
            lambda: (
                ctl.events("reload_outcome")
                and ctl.events("reload_outcome")[-1]["outcome"] != "applied"
            ),
            60,
            "the outcome",
        )
        assert "rolled_back" == ctl.events("reload_outcome")[-1]["outcome"]
        assert old == ctl.pids(names.hello)
        assert 200 == ctl.get("/hello/").status
        starts = len(ctl.events("generation_start"))
        assert _nothing_to_reload(ctl)  # not retried
        assert starts == len(ctl.events("generation_start"))
        assert "apply" == ctl.state()["rejected"]["stage"]  # type: ignore[index]


def test_a_changed_pool_rolls_with_zero_failed_requests_and_the_other_pool_untouched(
    world_dir: str, names: Names
) -> None:
    """Under a bounded wrk load, a new command for one pool: no failed request; the other pool's
    processes are the same."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        hello, notes = ctl.pids(names.hello), ctl.pids(names.notes)
        url, accepted = f"http://127.0.0.1:{ctl.port}/hello/x", ctl.accepted()
        output: list[str] = []

        def load() -> None:
            output.append(
                subprocess.run(
                    ["wrk", "-t2", "-c16", "-d8s", url],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
            )

        thread = threading.Thread(target=load)
        thread.start()
        # Under load: the listener has taken wrk's 16 connections (its counters, sent every second).
        wait_until(lambda: ctl.accepted() >= accepted + 16, 10, "wrk's connections")
        ctl.write(
            "site.yaml",
            manifest.replace(
                'command: [orchestrator, worker, "hello:app"]',
                'command: [orchestrator, worker, --threads, "6", "hello:app"]',
            ),
        )
        thread.join(30)
        report = output[0]
        assert "Non-2xx" not in report, report
        assert "Socket errors" not in report, report
        assert re.search(r"(\d+) requests in", report)
        wait_until(
            lambda: ctl.pids(names.hello) and ctl.pids(names.hello).isdisjoint(hello),
            30,
            "the new hello processes",
        )
        assert notes == ctl.pids(names.notes)


def test_resume_comes_up_on_the_last_known_good_manifest(world_dir: str, names: Names) -> None:
    """After a restart with broken files, --resume serves the last manifest that ran."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        assert 200 == ctl.get("/hello/").status
    with open(os.path.join(world_dir, "site", "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write("apiVersion: orchestrator/v1\nqueues: [\n")
    with running_controller(
        world_dir, "apiVersion: orchestrator/v1\nqueues: [\n", args=("--resume",)
    ) as again:
        assert 200 == again.get("/hello/").status


def _replace_with_mode(path: str, text: str, mode: int) -> None:
    """Put ``text`` at ``path`` with ``mode`` in one rename (the watcher never sees it half-made)."""
    tmp = path + ".tmp~"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@pytest.mark.root
def test_as_root_a_manifest_another_user_could_change_is_refused_until_fixed(
    world_dir: str, names: Names
) -> None:
    """Catalogue E40: a group-writable file, then one owned by another uid, is refused (nothing
    moves; status names the file and the command that fixes it); once only root can write it, the
    same content is applied without another edit."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        pids = ctl.pids(names.hello) | ctl.pids(names.notes)
        path = os.path.join(ctl.site, "site.yaml")
        changed = _with_more(manifest)
        _replace_with_mode(path, changed, 0o664)
        wait_until(lambda: ctl.state().get("rejected"), 10, "the rejection")
        error = str(ctl.state()["rejected"]["error"])  # type: ignore[index]
        assert f"{path}: manifest file is writable by its group or by others (mode 0664)" in error
        assert 404 == ctl.get("/more/").status
        os.chown(path, 54_321, 0)
        os.chmod(path, 0o644)
        wait_until(
            lambda: "owned by uid 54321" in str(ctl.state()["rejected"]["error"]),  # type: ignore[index]
            10,
            "the rejection for the owner",
        )
        assert pids == ctl.pids(names.hello) | ctl.pids(names.notes)
        assert 200 == ctl.get("/hello/").status
        os.chown(path, 0, 0)
        wait_until(lambda: ctl.get("/more/").status == 200, 10, "the fixed manifest applied")
        assert ctl.state().get("rejected") is None
        assert pids == ctl.pids(names.hello) | ctl.pids(names.notes)


@pytest.mark.root
def test_as_root_the_controller_does_not_start_on_a_manifest_others_can_write(
    world_dir: str, names: Names
) -> None:
    """At start-up the same rule: exit 1 with the file and the fix, nothing started."""
    site = os.path.join(world_dir, "site")
    os.makedirs(site)
    path = os.path.join(site, "site.yaml")
    _replace_with_mode(path, quickstart_manifest(ANY_PORT, names), 0o666)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "orchestrator", "run", site, "--run-dir", f"{world_dir}/run"),
            *("--state-dir", f"{world_dir}/state"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == result.returncode, result.stderr
    assert f"{path}: manifest file is writable by its group or by others (mode 0666)" in (
        result.stderr
    )
    assert f"chmod go-w {path}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_new_url_group_and_an_environment_change_move_only_what_they_name(
    world_dir: str, names: Names
) -> None:
    """Catalogue E40: a new URL group (to the notes queue) is routable within 1 s and restarts
    nothing; then a new environment variable for hello rolls hello's processes only, the listener
    and notes keep their pids."""
    manifest = quickstart_manifest(ANY_PORT, names)
    with running_controller(world_dir, manifest) as ctl:
        hello, notes = ctl.pids(names.hello), ctl.pids(names.notes)
        listener = ctl.state()["listener"]["pids"]  # type: ignore[index]
        grouped = manifest.replace(
            "workers:\n",
            f"  extra:\n    queue: {names.notes}\n"
            f'    urls: ["http://127.0.0.1:{ANY_PORT}/extra/"]\nworkers:\n',
        )
        assert grouped != manifest
        ctl.write("site.yaml", grouped)
        written = time.monotonic()
        wait_until(lambda: ctl.get("/extra/", timeout=2).status == 200, 5, "/extra/ routed")
        assert time.monotonic() - written < 1.0
        assert (hello, notes) == (ctl.pids(names.hello), ctl.pids(names.notes))
        env = grouped.replace(
            'command: [orchestrator, worker, "hello:app"]\n',
            'command: [orchestrator, worker, "hello:app"]\n    env: {GREETING: changed}\n',
        )
        assert env != grouped
        ctl.write("site.yaml", env)
        wait_until(
            lambda: ctl.pids(names.hello) and ctl.pids(names.hello).isdisjoint(hello),
            30,
            "hello's processes to roll",
        )
        assert notes == ctl.pids(names.notes)
        assert listener == ctl.state()["listener"]["pids"]  # type: ignore[index]
        assert 200 == ctl.get("/extra/").status
