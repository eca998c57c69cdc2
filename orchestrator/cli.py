"""The ``orchestrator`` command: argument parsing, exit codes and the choice of renderer.

Owns: the command-line surface and how results and errors are printed. No logic: every command calls
into ``manifest``, ``plan``, ``controller`` or a backend and renders what it gets back.
A user mistake never prints a traceback; a bug does (and ``--debug`` shows tracebacks for everything).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator import __version__
from orchestrator.errors import Diagnostic, ManifestError, OrchestratorError, Severity
from orchestrator.model.ids import Kind

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Handler = Callable[[argparse.Namespace], int]


def _print_diagnostics(diags: Sequence[Diagnostic]) -> None:
    for d in diags:
        print(d.render(), file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    """``orchestrator validate PATH...``: schema and semantic checks, offline."""
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities

    results: list[dict[str, object]] = []
    ok = True
    for path in args.paths:
        try:
            loaded = load_manifest(path, identities=HostIdentities(), strict_identities=False)
        except ManifestError as exc:
            ok = False
            diags = list(exc.diagnostics)
            errors = [d for d in diags if d.severity is Severity.ERROR]
            results.append({"path": path, "valid": False, "sha256": None, "diagnostics": diags})
            if not args.json:
                _print_diagnostics(diags)
                n = len(errors)
                print(f"{path}: invalid ({n} error{'s' if n != 1 else ''})", file=sys.stderr)
            continue
        desired = loaded.desired
        counts = {
            str(kind): len(desired.of_kind(kind))
            for kind in (Kind.QUEUE, Kind.URLGROUP, Kind.WORKER)
        }
        results.append(
            {
                "path": path,
                "valid": True,
                "sha256": desired.manifest_sha256,
                "diagnostics": list(loaded.warnings),
                "objects": counts,
            }
        )
        if not args.json:
            _print_diagnostics(loaded.warnings)
            print(
                f"{path}: valid ({_plural(counts['queue'], 'queue')}, "
                f"{_plural(counts['urlgroup'], 'URL group')}, "
                f"{_plural(counts['worker'], 'worker pool')}; "
                f"manifest {desired.manifest_sha256[:12]})"
            )
    if args.json:
        doc = {
            "format_version": "1.0",
            "valid": ok,
            "manifests": [
                {
                    **r,
                    "diagnostics": [
                        d.to_json()
                        for d in r["diagnostics"]  # type: ignore[attr-defined]
                    ],
                }
                for r in results
            ],
        }
        print(json.dumps(doc, indent=2))
    return EXIT_OK if ok else EXIT_ERROR


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _run_dir(args: argparse.Namespace, session_run_dir: str | None) -> str:
    from orchestrator.controller.paths import default_run_dir

    return str(args.run_dir or session_run_dir or default_run_dir())


def _manifest_files(loaded_source: object) -> list[dict[str, str]]:
    import base64

    from orchestrator.manifest.load import ManifestSet

    assert isinstance(loaded_source, ManifestSet)
    return [
        {"name": f.name, "content_b64": base64.b64encode(f.content).decode()}
        for f in loaded_source.files
    ]


def _colour(args: argparse.Namespace) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


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
    _print_diagnostics(loaded.warnings)
    session = loaded.desired.session
    run_dir = _run_dir(args, session.run_dir if session else None)
    manifest_path = os.path.abspath(args.path)
    client = Client(run_dir)
    try:
        reply = client.request(
            "plan",
            {
                "files": _manifest_files(loaded.source),
                "path": manifest_path,
                "colour": _colour(args),
            },
        )
        doc, text = reply["plan"], str(reply["text"])
        assert isinstance(doc, dict)
    except ControllerUnavailable as exc:
        backend = resolve_backend_name(session.backend.value if session else "auto")
        plan = make_plan(loaded.desired, LiveState.empty(backend))
        doc = plan_document(plan, manifest_path=manifest_path)
        text = render_text(plan, colour=_colour(args))
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


def _is_saved_plan(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"{") and b'"format_version"' in head


def cmd_apply(args: argparse.Namespace) -> int:
    """``orchestrator apply PATH|PLANFILE``: apply through the running controller and wait."""
    from orchestrator.controller.client import Client
    from orchestrator.errors import StalePlanError
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.plan.render import read_saved_plan

    expected_fingerprint: str | None = None
    manifest_path = args.path
    saved = None
    if _is_saved_plan(args.path):
        with open(args.path, encoding="utf-8") as fh:
            saved = read_saved_plan(fh.read(), args.path)
        manifest_path = saved.manifest_path
        expected_fingerprint = saved.live_fingerprint
    loaded = load_manifest(manifest_path, identities=HostIdentities(), strict_identities=True)
    _print_diagnostics(loaded.warnings)
    if saved is not None and loaded.desired.manifest_sha256 != saved.manifest_sha256:
        raise StalePlanError(
            "Plan is stale",
            f"The manifest {manifest_path} changed after the plan was made; run plan again.",
        )
    session = loaded.desired.session
    run_dir = _run_dir(args, session.run_dir if session else None)
    client = Client(run_dir, timeout_s=None)
    result = client.request(
        "apply",
        {
            "files": _manifest_files(loaded.source),
            "path": os.path.abspath(manifest_path),
            "expected_manifest_sha256": loaded.desired.manifest_sha256,
            "expected_fingerprint": expected_fingerprint,
            "allow_mass_delete": bool(args.allow_mass_delete),
        },
        on_event=_progress_printer(args),
        timeout_s=None,
    )
    if args.json:
        print(json.dumps({"event": "summary", **result}))
    else:
        print(str(result.get("message", "")))
    return int(str(result.get("exit_code", EXIT_OK)))


def _progress_printer(args: argparse.Namespace) -> Callable[[dict[str, object]], None]:
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


def cmd_schema(args: argparse.Namespace) -> int:
    """``orchestrator schema``: print the manifest's JSON Schema exactly as shipped."""
    from orchestrator.manifest.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


EXAMPLES = {
    "validate": """examples:
  orchestrator validate site.yaml
  orchestrator validate manifests/            # every *.yaml/*.yml in the directory, merged
  orchestrator validate --json manifests/ | jq '.manifests[].diagnostics'

exit codes: 0 valid, 1 invalid""",
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
    "schema": """examples:
  orchestrator schema > manifest.schema.json
  # editors: put this first line in a manifest
  # yaml-language-server: $schema=./manifest.schema.json""",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description=(
            "Declarative orchestrator for process-isolated HTTP services: URL groups routed to "
            "request queues served by least-privilege worker pools, planned and applied like "
            "terraform."
        ),
        epilog="Run 'orchestrator COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks for every error (for bug reports)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    p = add("validate", cmd_validate, "check manifests offline (schema and semantic checks)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a manifest file or directory")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

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

    add("schema", cmd_schema, "print the manifest JSON Schema")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return handler(args)
    except OrchestratorError as exc:
        if args.debug:
            raise
        print(exc.render(), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
