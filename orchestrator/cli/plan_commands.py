"""``plan`` and ``apply``: a dry run against the controller's live state, and applying it.

Owns: their arguments and output. The diff is ``plan``'s; applying is the controller's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from orchestrator.cli.common import (
    EXIT_CHANGES,
    EXIT_OK,
    Adder,
    colour,
    manifest_files,
    print_diagnostics,
    run_dir_of,
)

EXAMPLES = {
    "plan": """examples:
  orchestrator plan site.yaml                       # dry run against the running controller
  orchestrator plan site.yaml --detailed-exitcode   # CI: exit 0 no changes, 2 changes, 1 error
  orchestrator plan site.yaml --json | jq '.resource_changes[] | select(.change.actions == ["delete"])'
  orchestrator plan site.yaml --out plan.json && orchestrator apply plan.json

With no controller running, live state is empty and every object is a create.""",
    "apply": """examples:
  orchestrator apply site.yaml          # plan and apply through the controller, wait until healthy
  orchestrator apply plan.json          # apply exactly a saved plan; refused if it is stale
  orchestrator apply site.yaml --json   # NDJSON progress events

exit codes: 0 applied and healthy, 1 failed before any change, 3 failed and rolled back,
4 failed and rollback incomplete (needs an operator)""",
}


def cmd_plan(args: argparse.Namespace) -> int:
    """``orchestrator plan PATH``: a dry run against the live state of the running controller."""
    from orchestrator.backends.registry import resolve_backend_name
    from orchestrator.controller.client import Client
    from orchestrator.errors import ControllerUnavailable
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.model.live import LiveState
    from orchestrator.plan.diff import make_plan
    from orchestrator.plan.render import plan_document, render_text

    loaded = load_manifest(args.path, identities=HostIdentities())
    print_diagnostics(loaded.warnings)
    session = loaded.desired.session
    run_dir = run_dir_of(args, session.run_dir if session else None)
    manifest_path = os.path.abspath(args.path)
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
        doc, text = reply["plan"], str(reply["text"])
        assert isinstance(doc, dict)
    except ControllerUnavailable as exc:
        backend = resolve_backend_name(session.backend.value if session else "auto")
        plan = make_plan(loaded.desired, LiveState.empty(backend))
        doc = plan_document(plan, manifest_path=manifest_path)
        text = render_text(plan, colour=colour(args))
        note = (
            f"Note: {exc.summary}, so live state is empty and every object is a create.\n"
            "      Start one with: orchestrator run PATH\n\n"
        )
        if not args.json:
            sys.stdout.write(note)
        else:
            print(note.strip().replace("\n      ", " "), file=sys.stderr)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
    if args.json:
        print(json.dumps(doc, indent=2))
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
    p.add_argument("--json", action="store_true", help="print the plan as JSON (format 1.0)")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes, 0 when there are none, 1 on error",
    )
    p.add_argument("--out", metavar="FILE", help="save the plan for 'orchestrator apply FILE'")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument("--no-color", action="store_true", help="never use colour")

    p = add("apply", cmd_apply, "apply a manifest or a saved plan through the controller")
    p.add_argument("path", metavar="PATH|PLANFILE", help="a manifest, or a plan saved with --out")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow a plan that deletes every object or more than half of them",
    )
    p.add_argument("--json", action="store_true", help="print NDJSON events")
