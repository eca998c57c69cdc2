"""``plan`` and ``apply``: a dry run against live state, and applying it.

Owns: their arguments and output, and where ``plan``'s live state comes from: the running
controller, another manifest taken as applied (``--against``), or a controller's snapshot
(``--live``, written by ``status --json --spec``); the text, JSON and markdown forms; the
errored JSON document of an invalid manifest; one-line errors for the paths their options name.
The diff is ``plan``'s; applying is the controller's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Adder,
    colour,
    manifest_files,
    print_diagnostics,
    run_dir_of,
)

if TYPE_CHECKING:
    from orchestrator.errors import ManifestError
    from orchestrator.manifest.identities import Identities
    from orchestrator.manifest.load import LoadedManifest
    from orchestrator.plan.steps import Plan

EXAMPLES = {
    "plan": """examples:
  orchestrator plan site.yaml                       # dry run against the running controller
  orchestrator plan site.yaml --detailed-exitcode   # CI: exit 0 no changes, 2 changes, 1 error
  orchestrator plan site.yaml --json | jq '.resource_changes[] | select(.change.actions == ["delete"])'
  orchestrator plan site.yaml --out plan.json && orchestrator apply plan.json
  orchestrator plan site.yaml --against ../base/site.yaml --format markdown   # a PR comment
  orchestrator plan site.yaml --live snapshot.json  # snapshot: orchestrator status --json --spec

With no controller running (and no --against or --live), live state is empty and every object is a
create. --against OLD takes OLD, applied cleanly, as the live state (in CI: the base branch's
checkout); --live FILE takes a controller's snapshot. Either gives the plan that controller would.""",
    "apply": """examples:
  orchestrator apply site.yaml          # plan and apply through the controller, wait until healthy
  orchestrator apply plan.json          # apply exactly a saved plan; refused if it is stale
  orchestrator apply site.yaml --json   # NDJSON progress events

exit codes: 0 applied and healthy, 1 failed before any change, 3 failed and rolled back,
4 failed and rollback incomplete (needs an operator)""",
}


def _check_out(path: str) -> None:
    """Refuse an ``--out`` that cannot be written, before anything is planned.

    Raises:
        OrchestratorError: in one line, naming the path and what to do.
    """
    from orchestrator.errors import OrchestratorError

    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    problem = ""
    if os.path.isdir(target):
        problem = "is a directory; name a file to save the plan in (e.g. DIR/plan.json)"
    elif not os.path.exists(parent):
        problem = f"directory {parent} does not exist; create it (mkdir -p) or save elsewhere"
    elif not os.path.isdir(parent):
        problem = f"{parent} is not a directory; save the plan elsewhere"
    elif not os.access(target if os.path.exists(target) else parent, os.W_OK):
        problem = "permission denied; save the plan where you may write"
    if problem:
        raise OrchestratorError(f"--out {path}: {problem}")


def _write_out(path: str, doc: dict[str, object]) -> None:
    from orchestrator.errors import OrchestratorError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
    except OSError as exc:
        raise OrchestratorError(
            f"--out {path}: cannot write: {exc.strerror or exc}; save the plan elsewhere"
        ) from None


def _need(path: str, option: str, what: str) -> None:
    """Refuse a path option that names nothing, in one line (the loader's error would not say
    which option it was)."""
    from orchestrator.errors import OrchestratorError

    if not os.path.exists(path):
        raise OrchestratorError(f"{option}{path}: no such file or directory; {what}")


def _format_of(args: argparse.Namespace) -> str:
    return "json" if args.json else str(args.format or "text")


def _load_against(old_path: str, new_path: str, identities: Identities) -> LoadedManifest:
    """Load OLD as if it lay where PATH lies: its relative paths (a pool's ``cwd``, TLS files)
    resolve against PATH's directory, because in CI the base branch's checkout stands for the same
    deployed location; resolved against the checkout, every relative ``cwd`` would be a change.
    OLD is loaded in place first, so that its errors name its own files."""
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.load import ManifestFile, ManifestSet, read_manifest_set

    load_manifest(old_path, identities=identities)
    old = read_manifest_set(old_path)
    base = new_path if os.path.isdir(new_path) else os.path.dirname(os.path.abspath(new_path))
    rebased = ManifestSet(
        os.path.abspath(base),
        tuple(
            ManifestFile(os.path.join(os.path.abspath(base), os.path.basename(f.name)), f.content)
            for f in old.files
        ),
    )
    return load_manifest(rebased, identities=identities)


def _offline_plan(
    args: argparse.Namespace, loaded: LoadedManifest, manifest_path: str
) -> tuple[dict[str, object], Plan]:
    """A plan made here: against OLD (``--against``) or a snapshot (``--live``)."""
    from orchestrator.backends.registry import change_rules, resolve_backend_name
    from orchestrator.errors import OrchestratorError
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.plan.diff import make_plan
    from orchestrator.plan.render import plan_document
    from orchestrator.plan.snapshot import assumed_live, read_spec

    if args.against:
        old = _load_against(args.against, args.path, HostIdentities())
        session = old.desired.session
        backend = resolve_backend_name(session.backend.value if session else "auto")
        live = assumed_live(old.desired, backend)
    else:
        try:
            with open(args.live, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise OrchestratorError(
                f"--live {args.live}: cannot read: {exc.strerror or exc}"
            ) from None
        try:
            snapshot = json.loads(text)
        except ValueError:
            snapshot = None
        live = read_spec(snapshot, args.live, loaded.desired)
    plan = make_plan(loaded.desired, live, change_rules(live.backend))
    return plan_document(plan, manifest_path=manifest_path), plan


def _errored(args: argparse.Namespace, exc: ManifestError) -> int:
    """An invalid manifest: diagnostics on stderr; with --json or --format markdown, also a
    document on stdout, so CI always has something to read."""
    from orchestrator.plan.markdown import render_markdown
    from orchestrator.plan.render import errored_document

    print(exc.render(), file=sys.stderr)
    doc = errored_document(
        [d.to_json() for d in exc.diagnostics], manifest_path=os.path.abspath(args.path)
    )
    fmt = _format_of(args)
    if fmt == "json":
        print(json.dumps(doc, indent=2))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(doc))
    return EXIT_ERROR


def cmd_plan(args: argparse.Namespace) -> int:
    """``orchestrator plan PATH``: a dry run against the live state of the running controller,
    another manifest (``--against``) or a controller's snapshot (``--live``)."""
    from orchestrator.backends.registry import change_rules, resolve_backend_name
    from orchestrator.controller.client import Client
    from orchestrator.errors import ControllerUnavailable, ManifestError
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.model.live import LiveState
    from orchestrator.plan.diff import make_plan
    from orchestrator.plan.markdown import render_markdown
    from orchestrator.plan.render import plan_document, render_text

    if args.out:
        _check_out(args.out)
    if args.against:
        _need(args.against, "--against ", "name the manifest to compare with")
    if args.live:
        _need(args.live, "--live ", "write one with: orchestrator status --json --spec > FILE")
    fmt = _format_of(args)
    try:
        loaded = load_manifest(args.path, identities=HostIdentities())
    except ManifestError as exc:
        return _errored(args, exc)
    print_diagnostics(loaded.warnings)
    manifest_path = os.path.abspath(args.path)
    doc: dict[str, object]
    text = ""
    if args.against or args.live:
        doc, plan = _offline_plan(args, loaded, manifest_path)
        text = render_text(plan, colour=colour(args))
    else:
        session = loaded.desired.session
        run_dir = run_dir_of(args, session.run_dir if session else None)
        client = Client(run_dir)
        try:
            reply = client.request(
                "plan",
                {
                    "files": manifest_files(loaded.source),
                    "path": manifest_path,
                    "colour": colour(args),
                },
            )
            answered, text = reply["plan"], str(reply["text"])
            assert isinstance(answered, dict)
            doc = answered
        except ControllerUnavailable as exc:
            backend = resolve_backend_name(session.backend.value if session else "auto")
            plan = make_plan(loaded.desired, LiveState.empty(backend), change_rules(backend))
            doc = plan_document(plan, manifest_path=manifest_path)
            text = render_text(plan, colour=colour(args))
            note = (
                f"Note: {exc.summary}, so live state is empty and every object is a create.\n"
                "      Start one with: orchestrator run PATH, or plan against the manifest in "
                "force with --against OLD_PATH\n\n"
            )
            if fmt == "text":
                sys.stdout.write(note)
            else:
                print(note.strip().replace("\n      ", " "), file=sys.stderr)
    if args.out:
        _write_out(args.out, doc)
    if fmt == "json":
        print(json.dumps(doc, indent=2))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(doc))
    else:
        sys.stdout.write(text)
        if args.out:
            print(f"\nSaved the plan to {args.out}. Apply exactly this plan with:")
            print(f"  orchestrator apply {args.out}")
    summary = doc.get("summary")
    changes = isinstance(summary, dict) and bool(doc.get("applyable"))
    return EXIT_CHANGES if args.detailed_exitcode and changes else EXIT_OK


def is_saved_plan(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"{") and b'"format_version"' in head


def cmd_apply(args: argparse.Namespace) -> int:
    """``orchestrator apply PATH|PLANFILE``: apply through the running controller and wait."""
    from orchestrator.controller.client import Client
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.plan.render import read_saved_plan
    from orchestrator.plan.stale import check_manifest_unchanged

    _need(
        args.path,
        "",
        "give a manifest (file or directory), or a plan saved with 'orchestrator plan PATH --out "
        "FILE'",
    )
    expected_fingerprint: str | None = None
    manifest_path = args.path
    saved = None
    if is_saved_plan(args.path):
        with open(args.path, encoding="utf-8") as fh:
            saved = read_saved_plan(fh.read(), args.path)
        manifest_path = saved.manifest_path
        expected_fingerprint = saved.live_fingerprint
    loaded = load_manifest(manifest_path, identities=HostIdentities(), strict_identities=True)
    print_diagnostics(loaded.warnings)
    if saved is not None:
        check_manifest_unchanged(
            saved.manifest_sha256, loaded.desired.manifest_sha256, path=manifest_path
        )
    session = loaded.desired.session
    run_dir = run_dir_of(args, session.run_dir if session else None)
    client = Client(run_dir, timeout_s=None)
    result = client.request(
        "apply",
        {
            "files": manifest_files(loaded.source),
            "path": os.path.abspath(manifest_path),
            "expected_manifest_sha256": loaded.desired.manifest_sha256,
            "expected_fingerprint": expected_fingerprint,
            "allow_mass_delete": bool(args.allow_mass_delete),
        },
        on_event=progress_printer(args),
        timeout_s=None,
    )
    if args.json:
        print(json.dumps({"event": "summary", **result}))
    else:
        print(str(result.get("message", "")))
    return int(str(result.get("exit_code", EXIT_OK)))


def progress_printer(args: argparse.Namespace) -> Callable[[dict[str, object]], None]:
    live = sys.stderr.isatty() and not args.json

    def show(event: dict[str, object]) -> None:
        if args.json:
            print(json.dumps(event), flush=True)
            return
        text = str(event.get("message") or event.get("event"))
        if live:
            sys.stderr.write("\r\x1b[K" + text[:200])
            if event.get("final"):
                sys.stderr.write("\n")
        else:
            print(text, file=sys.stderr)
        sys.stderr.flush()

    return show


def register(add: Adder) -> None:
    """Add this module's commands to the parser."""
    p = add("plan", cmd_plan, "show what apply would change (a dry run)")
    p.add_argument("path", metavar="PATH", help="a manifest file or directory")
    p.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default=None,
        help="text (default), json (format 1.0), or markdown (a pull-request comment: counts, "
        "then each change with its reason, collapsed)",
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes, 0 when there are none, 1 on error",
    )
    p.add_argument("--out", metavar="FILE", help="save the plan for 'orchestrator apply FILE'")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument("--no-color", action="store_true", help="never use colour")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--against",
        metavar="OLD_PATH",
        help="plan against OLD_PATH taken as applied, not a controller (CI: the base branch's "
        "checkout); the plan is the one a controller running OLD_PATH would make",
    )
    source.add_argument(
        "--live",
        metavar="FILE",
        help="plan against a controller's snapshot written by 'orchestrator status --json --spec'",
    )

    p = add("apply", cmd_apply, "apply a manifest or a saved plan through the controller")
    p.add_argument("path", metavar="PATH|PLANFILE", help="a manifest, or a plan saved with --out")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow a plan that deletes every object or more than half of them",
    )
    p.add_argument("--json", action="store_true", help="print NDJSON events")
