"""What every command shares: exit codes, the handler type, diagnostics, run-dir and colour choice.

Owns: small helpers of the command-line surface. No command lives here. Must not import a backend.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator.errors import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Handler = Callable[[argparse.Namespace], int]
#: ``add(name, handler, help)``: a subcommand's parser, with its examples as the epilog.
Adder = Callable[[str, Handler, str], argparse.ArgumentParser]


def print_diagnostics(diags: Sequence[Diagnostic]) -> None:
    for d in diags:
        print(d.render(), file=sys.stderr)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run_dir_of(args: argparse.Namespace, session_run_dir: str | None) -> str:
    from orchestrator.controller.paths import default_run_dir

    return str(args.run_dir or session_run_dir or default_run_dir())


def manifest_files(loaded_source: object) -> list[dict[str, str]]:
    import base64

    from orchestrator.manifest.load import ManifestSet

    assert isinstance(loaded_source, ManifestSet)
    return [
        {"name": f.name, "content_b64": base64.b64encode(f.content).decode()}
        for f in loaded_source.files
    ]


def colour(args: argparse.Namespace) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def duration(text: str) -> float:
    from orchestrator.model.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
