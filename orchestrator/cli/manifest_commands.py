"""Commands that read a manifest and need no controller: ``validate``, ``render``, ``schema``.

Owns: their arguments and output. The work is in ``manifest`` and ``render``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from orchestrator.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    Adder,
    plural,
    print_diagnostics,
)
from orchestrator.errors import Diagnostic, Location, OrchestratorError, Severity
from orchestrator.model.ids import Kind

if TYPE_CHECKING:
    from orchestrator.manifest.load import ManifestSet

EXAMPLES = {
    "validate": """examples:
  orchestrator validate site.yaml
  orchestrator validate manifests/            # every *.yaml/*.yml in the directory, merged
  orchestrator validate --json manifests/ | jq '.diagnostics[] | select(.severity == "error")'
  git show main:site.yaml | orchestrator validate -        # '-' reads the manifest from stdin
  git show main:site.yaml | orchestrator validate --stdin-filename site.yaml -
  orchestrator validate --warnings-as-errors site.yaml      # CI: a warning fails the check

exit codes: 0 valid, 1 invalid (or warnings, with --warnings-as-errors)
--json prints a document on stdout in every case: 'errored' is true when the exit code is 1, and
'diagnostics' lists every problem with file, line, column, path, severity, message and hint.""",
    "render": """examples:
  orchestrator render kubernetes site.yaml | kubectl apply -f -
  orchestrator render kubernetes --help

TARGET is the platform: kubernetes (the only one so far).""",
    "render kubernetes": """examples:
  orchestrator render kubernetes site.yaml | kubectl apply -f -
  orchestrator render kubernetes site.yaml -o k8s/        # one file per object: k8s/kind-name.yaml
  orchestrator render kubernetes site.yaml --namespace staging --strict --check

exit codes: 0 rendered (warnings on stderr), 1 errors (or warnings with --strict)""",
    "schema": """examples:
  orchestrator schema > manifest.schema.json
  # editors: put this first line in a manifest
  # yaml-language-server: $schema=./manifest.schema.json""",
}


#: The name ``validate -`` gives the manifest it reads from stdin, in messages and JSON.
STDIN_NAME = "<stdin>"
#: ``validate --json``'s format (schemas/validate.schema.json); a minor version only adds fields.
VALIDATE_FORMAT = "1.1"


def _read_stdin(name: str) -> ManifestSet:
    """The manifest piped to ``validate -``: one file, called ``name`` in messages. The loader takes
    relative paths in it (a pool's ``cwd``, TLS files) from that name's directory."""
    from orchestrator.manifest.load import ManifestFile, ManifestSet

    return ManifestSet(name, (ManifestFile(name, sys.stdin.buffer.read()),))


def _validate_one(path: str, stdin_name: str, explain: bool = False) -> dict[str, object]:
    """Load one manifest (``-``: stdin) and report it as ``validate --json`` does, diagnostics as
    ``Diagnostic`` values still (the caller renders them); ``explain``: with the effective
    sandboxes (``sandbox``)."""
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities

    name = stdin_name if path == "-" else path
    try:
        source = _read_stdin(name) if path == "-" else path
        loaded = load_manifest(source, identities=HostIdentities(), strict_identities=False)
    except OrchestratorError as exc:
        # ManifestError carries every problem; any other error here is about the path itself.
        return {"path": name, "valid": False, "sha256": None, "diagnostics": list(exc.diagnostics)}
    except OSError as exc:
        # An unreadable stdin (closed, a directory) is still reported in the document.
        where = Location(name)
        text = exc.strerror or str(exc)
        return {
            "path": name,
            "valid": False,
            "sha256": None,
            "diagnostics": [Diagnostic(f"cannot read: {text}", location=where)],
        }
    desired = loaded.desired
    counts = {
        str(kind): len(desired.of_kind(kind)) for kind in (Kind.QUEUE, Kind.URLGROUP, Kind.WORKER)
    }
    result: dict[str, object] = {
        "path": name,
        "valid": True,
        "sha256": desired.manifest_sha256,
        "diagnostics": list(loaded.warnings),
        "objects": counts,
    }
    if explain:
        from orchestrator.backends.registry import explain_sandbox
        from orchestrator.controller.paths import default_run_dir

        run_dir = (desired.session.run_dir if desired.session else None) or default_run_dir()
        result["sandbox"] = explain_sandbox(desired, os.path.abspath(run_dir))
    return result


def print_sandboxes(explained: object) -> None:
    """``validate --explain`` as text: one block per process kind, one line per path."""
    assert isinstance(explained, dict)
    kernel = explained["kernel"]
    assert isinstance(kernel, dict)
    abi = kernel["landlock_abi"]
    print(
        f"  this kernel: Landlock {f'ABI {abi}' if abi else 'missing'}"
        f"{' (with TCP rules)' if kernel['landlock_network'] else ''}, "
        f"seccomp {'yes' if kernel['seccomp'] else 'missing'}"
    )
    workers = explained["workers"]
    assert isinstance(workers, dict)
    blocks = [("the listener", explained.get("listener"))]
    blocks += [(f"worker/{name}", box) for name, box in workers.items()]
    for title, box in blocks:
        if not isinstance(box, dict):
            continue
        files, net = box["filesystem"], box["network"]
        connect = net["connect"]
        reach = "any" if connect is None else (", ".join(connect) or "none")
        print(
            f"  {title}: seccomp {box['seccomp']}; filesystem {files['default']}; "
            f"TCP connect to {reach}{'; required' if box['required'] else ''}"
        )
        for rule in files["paths"]:
            print(f"    {rule['access']:<3} {rule['path']}  ({rule['why']})")


def cmd_validate(args: argparse.Namespace) -> int:
    """``orchestrator validate PATH...``: schema and semantic checks, offline."""
    stdin_name = args.stdin_filename or STDIN_NAME
    results: list[dict[str, object]] = []
    for i, path in enumerate(args.paths):
        if path == "-" and "-" in args.paths[:i]:
            # Reported in the document rather than as a usage error: --json always prints one.
            again = Diagnostic(
                "'-' given more than once",
                "stdin holds one manifest and was read for the first '-'.",
                Location(stdin_name),
            )
            results.append(
                {"path": stdin_name, "valid": False, "sha256": None, "diagnostics": [again]}
            )
            continue
        results.append(_validate_one(path, stdin_name, args.explain))
    diagnostics: list[Diagnostic] = [
        d
        for r in results
        for d in r["diagnostics"]  # type: ignore[attr-defined]
    ]
    valid = all(r["valid"] for r in results)
    warnings = [d for d in diagnostics if d.severity is Severity.WARNING]
    promoted = bool(args.warnings_as_errors and warnings)
    errored = not valid or promoted
    if args.json:
        doc = {
            "format_version": VALIDATE_FORMAT,
            "valid": valid,
            "errored": errored,
            "warnings_as_errors": bool(args.warnings_as_errors),
            "diagnostics": [d.to_json() for d in diagnostics],
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
        return EXIT_ERROR if errored else EXIT_OK
    for r in results:
        path, diags = r["path"], r["diagnostics"]
        assert isinstance(diags, list)
        print_diagnostics(diags)
        if not r["valid"]:
            n = sum(1 for d in diags if d.severity is Severity.ERROR)
            print(f"{path}: invalid ({plural(n, 'error')})", file=sys.stderr)
            continue
        counts, sha = r["objects"], str(r["sha256"])
        assert isinstance(counts, dict)
        print(
            f"{path}: valid ({plural(counts['queue'], 'queue')}, "
            f"{plural(counts['urlgroup'], 'URL group')}, "
            f"{plural(counts['worker'], 'worker pool')}; "
            f"manifest {sha[:12]})"
        )
        if args.explain:
            print_sandboxes(r["sandbox"])
        n_warnings = sum(1 for d in diags if d.severity is Severity.WARNING)
        if args.warnings_as_errors and n_warnings:
            print(
                f"{path}: {plural(n_warnings, 'warning')}, which --warnings-as-errors makes errors",
                file=sys.stderr,
            )
    return EXIT_ERROR if errored else EXIT_OK


def cmd_render_kubernetes(args: argparse.Namespace) -> int:
    """``orchestrator render kubernetes PATH``: the manifest as Kubernetes and Gateway API objects."""
    from orchestrator.manifest import load_manifest
    from orchestrator.render import dump_yaml, file_names, render_kubernetes

    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise OrchestratorError(f"{args.out}: exists and is not a directory (-o takes a directory)")
    # No host identity checks: the objects run in a cluster, not as this host's users.
    loaded = load_manifest(args.path)
    rendering = render_kubernetes(loaded.desired, where=loaded.where, namespace=args.namespace)
    warnings = [*loaded.warnings, *rendering.warnings]
    print_diagnostics(warnings)
    if args.strict and warnings:
        print(
            f"{args.path}: {plural(len(warnings), 'warning')}, which --strict makes errors",
            file=sys.stderr,
        )
        return EXIT_ERROR
    documents = list(rendering.documents)
    if args.check:
        from orchestrator.render.check import check_documents

        problems = check_documents(documents)
        for problem in problems:
            print(f"{args.path}: {problem}", file=sys.stderr)
        if problems:
            print(
                f"{args.path}: the rendered objects are invalid "
                f"({plural(len(problems), 'problem')}); nothing was written",
                file=sys.stderr,
            )
            return EXIT_ERROR
    if not args.out:
        sys.stdout.write(dump_yaml(documents))
        return EXIT_OK
    try:
        os.makedirs(args.out, exist_ok=True)
        for name, doc in zip(file_names(documents), documents, strict=True):
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as fh:
                fh.write(dump_yaml([doc]))
    except OSError as exc:
        where = exc.filename or args.out
        raise OrchestratorError(f"{where}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote {plural(len(documents), 'file')} to {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_render_help(args: argparse.Namespace) -> int:
    """``orchestrator render`` without a target: say which targets there are."""
    print(
        "orchestrator render: name a target: orchestrator render kubernetes PATH", file=sys.stderr
    )
    return EXIT_ERROR


def cmd_schema(args: argparse.Namespace) -> int:
    """``orchestrator schema``: print the manifest's JSON Schema exactly as shipped."""
    from orchestrator.manifest.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def register(add: Adder) -> None:
    """Add this module's commands to the parser."""
    p = add("validate", cmd_validate, "check manifests offline (schema and semantic checks)")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a manifest file or directory; '-' reads one manifest file from stdin (relative "
        "paths in it, such as a pool's cwd, are taken from the current directory, or from "
        "--stdin-filename's)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout, valid or not (schemas/validate.schema.json)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="also show the effective sandbox of the listener and of each pool (seccomp, and "
        "the Landlock paths and ports, defaults and runtime paths included) and what this "
        "kernel can enforce",
    )
    p.add_argument(
        "--stdin-filename",
        metavar="FILE",
        help="with '-': the file name messages give the piped manifest (default <stdin>); "
        "relative paths in it are taken from FILE's directory",
    )
    p.add_argument(
        "--warnings-as-errors",
        action="store_true",
        help="exit 1 when there is any warning (each manifest says how many)",
    )

    p = add("render", cmd_render_help, "render the manifest for another platform")
    targets = p.add_subparsers(dest="target", metavar="TARGET")
    k = targets.add_parser(
        "kubernetes",
        help="Kubernetes and Gateway API objects (docs/kubernetes.md)",
        description=(
            "Render the manifest as Kubernetes and Gateway API objects: a Gateway, an HTTPRoute "
            "per URL group, a Service and a NetworkPolicy per queue, a ServiceAccount and a "
            "Deployment per worker pool. Warnings (what http.sys does that a cluster will not) "
            "go to stderr."
        ),
        epilog=EXAMPLES.get("render kubernetes"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    k.set_defaults(handler=cmd_render_kubernetes)
    k.add_argument("path", metavar="PATH", help="a manifest file or directory")
    k.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        help="write one file per object (kind-name.yaml) into DIR instead of printing a stream",
    )
    k.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace of every object whose pool names none (over session.kubernetes.namespace)",
    )
    k.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    k.add_argument(
        "--check",
        action="store_true",
        help="validate the objects offline against the Kubernetes and Gateway API schemas "
        "first (needs orchestrator[kubernetes])",
    )

    add("schema", cmd_schema, "print the manifest JSON Schema")
