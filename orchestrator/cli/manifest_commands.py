"""Commands that read a manifest and need no controller: ``validate``, ``render``, ``schema``.

Owns: their arguments and output. The work is in ``manifest`` and ``render``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from orchestrator.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    Adder,
    plural,
    print_diagnostics,
)
from orchestrator.errors import ManifestError, OrchestratorError, Severity
from orchestrator.model.ids import Kind

EXAMPLES = {
    "validate": """examples:
  orchestrator validate site.yaml
  orchestrator validate manifests/            # every *.yaml/*.yml in the directory, merged
  orchestrator validate --json manifests/ | jq '.manifests[].diagnostics'

exit codes: 0 valid, 1 invalid""",
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
                print_diagnostics(diags)
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
            print_diagnostics(loaded.warnings)
            print(
                f"{path}: valid ({plural(counts['queue'], 'queue')}, "
                f"{plural(counts['urlgroup'], 'URL group')}, "
                f"{plural(counts['worker'], 'worker pool')}; "
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
    p.add_argument("paths", nargs="+", metavar="PATH", help="a manifest file or directory")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

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
