"""What every command shares: exit codes, the handler type, diagnostics, run-dir and colour choice.

Owns: small helpers of the command-line surface: the colour decision (``--no-color``,
``FORCE_COLOR``, ``NO_COLOR``, a terminal), the run directory an option names (refused in one line
when it cannot be one) and the one-line message for a path problem. No command lives here. Must
not import a backend.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator.errors import Diagnostic, OrchestratorError

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
    """The run directory a command talks to: ``--run-dir``, else the manifest's, else the default.

    Raises:
        OrchestratorError: the path exists and is not a directory (``--run-dir /etc/passwd``):
            connecting to a socket under it would fail with a bare ``ENOTDIR``.
    """
    from orchestrator.controller.paths import default_run_dir

    return check_run_dir(str(args.run_dir or session_run_dir or default_run_dir()))


def check_run_dir(run_dir: str) -> str:
    """``run_dir``, refused when it exists and is not a directory.

    Raises:
        OrchestratorError: in one line, naming the path.
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise OrchestratorError(
            f"{run_dir}: not a directory",
            "--run-dir takes the controller's run directory (where it keeps control.sock).",
        )
    return run_dir


def path_problem(exc: OSError) -> str | None:
    """The one-line message for an ``OSError`` about a path a user named, or ``None``.

    An error that names no file (a socket reset, a full pipe) is not a path the user can fix, so it
    is left to the caller (a bug keeps its traceback).
    """
    if exc.filename is None:
        return None
    where = os.fsdecode(exc.filename)
    reason = exc.strerror or str(exc)
    if exc.filename2 is not None:
        where += f" -> {os.fsdecode(exc.filename2)}"
    return f"{where}: {reason}"


def manifest_files(loaded_source: object) -> list[dict[str, str]]:
    import base64

    from orchestrator.manifest.load import ManifestSet

    assert isinstance(loaded_source, ManifestSet)
    return [
        {"name": f.name, "content_b64": base64.b64encode(f.content).decode()}
        for f in loaded_source.files
    ]


def colour(args: argparse.Namespace) -> bool:
    """Whether a command colours what it prints on stdout.

    In order: ``--no-color`` (a per-invocation flag beats the environment, as no-color.org asks);
    ``FORCE_COLOR`` set and non-empty forces colour, even into a pipe or a CI log, and beats
    ``NO_COLOR`` (force-color.org's reference code checks it last); ``NO_COLOR`` set and non-empty
    turns colour off; otherwise colour only on a terminal. JSON output is never coloured.
    """
    if getattr(args, "no_color", False):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def duration(text: str) -> float:
    from orchestrator.model.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
