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


#: The environment variable that names the run directory when ``--run-dir`` is not given.
RUN_DIR_ENV = "ORCHESTRATOR_RUN_DIR"


def add_run_dir_options(parser: argparse.ArgumentParser, *, short_file: bool = True) -> None:
    """Add ``--run-dir DIR`` and ``-f/--file MANIFEST``, the options ``run_dir_of`` reads, to a
    command that talks to a controller.

    Args:
        parser: the command's parser.
        short_file: also ``-f``; commands where ``-f`` means follow (``events``, ``logs``, as in
            ``tail`` and ``journalctl``) take ``--file`` alone.
    """
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help=f"the controller's run directory (default: ${RUN_DIR_ENV}, else the manifest's "
        "session.runDir with --file, else /run/orchestrator as root)",
    )
    names = ["-f", "--file"] if short_file else ["--file"]
    parser.add_argument(
        *names,
        dest="file",
        metavar="MANIFEST",
        help="take the run directory from this manifest's session.runDir (only its session is read)",
    )


def run_dir_of(args: argparse.Namespace, session_run_dir: str | None) -> str:
    """The run directory a command talks to, from the first of: ``--run-dir``;
    ``$ORCHESTRATOR_RUN_DIR``; ``session_run_dir`` (the ``session.runDir`` of a manifest the
    command loaded anyway, as ``plan`` does) or else the ``session.runDir`` of ``-f MANIFEST``;
    the default (``/run/orchestrator`` as root).

    Every command that talks to a controller calls this, so that one rule finds it everywhere.
    ``args`` may lack ``run_dir`` and ``file`` (read with ``getattr``). A source that is given is
    used or refused, never skipped: a mistyped variable must not quietly reach another controller.

    Raises:
        OrchestratorError: in one line, naming the source: the path exists and is not a directory
            (a socket under it would fail with a bare ``ENOTDIR``), or ``-f``'s manifest cannot be
            read or gives ``session.runDir`` a value that is not a string.
    """
    from orchestrator.controller.paths import default_run_dir, session_paths

    given = getattr(args, "run_dir", None)
    if given:
        return check_run_dir(str(given), "--run-dir names the controller's run directory.")
    from_env = os.environ.get(RUN_DIR_ENV, "")
    if from_env:  # set but empty counts as unset, as for NO_COLOR
        return check_run_dir(from_env, f"{RUN_DIR_ENV} names the controller's run directory.")
    if session_run_dir:
        return check_run_dir(session_run_dir, "It is the manifest's session.runDir.")
    manifest = getattr(args, "file", None)
    if manifest:
        try:
            paths = session_paths(str(manifest))
        except OrchestratorError as exc:
            raise OrchestratorError(
                f"--file {manifest}: {exc.summary}",
                "--file names a manifest whose session.runDir locates the controller.",
            ) from exc
        if paths.run_dir:
            return check_run_dir(paths.run_dir, f"It is session.runDir in {manifest}.")
    return check_run_dir(default_run_dir())


def check_run_dir(run_dir: str, why: str | None = None) -> str:
    """``run_dir``, refused when it exists and is not a directory.

    Args:
        run_dir: the path.
        why: where it came from, for the detail line.

    Raises:
        OrchestratorError: in one line, naming the path.
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise OrchestratorError(
            f"{run_dir}: not a directory",
            why or "--run-dir takes the controller's run directory (where it keeps control.sock).",
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
