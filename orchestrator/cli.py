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
