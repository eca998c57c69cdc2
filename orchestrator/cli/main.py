"""The ``orchestrator`` command: the parser and the entry point.

Owns: the top-level options, the subcommands' registration (each ``*_commands`` module adds its
own), and how errors end a command. No logic: every command calls into ``manifest``, ``plan``,
``render``, ``controller`` or a backend and renders what it gets back. A user mistake never prints a
traceback; a bug does (and ``--debug`` shows tracebacks for everything).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.cli import (
    controller_commands,
    logs_commands,
    manifest_commands,
    ops_commands,
    plan_commands,
)
from orchestrator.cli.common import EXIT_ERROR, EXIT_OK, Handler, path_problem
from orchestrator.errors import OrchestratorError

EXAMPLES = {
    **manifest_commands.EXAMPLES,
    **plan_commands.EXAMPLES,
    **controller_commands.EXAMPLES,
    **ops_commands.EXAMPLES,
    **logs_commands.EXAMPLES,
    "worker": """examples:
  orchestrator worker hello:app
  orchestrator worker --threads 16 "factory:create_app()"

Serves a WSGI app from the socket the controller hands over as fd 3 (LISTEN_FDS).""",
}


class _Version(argparse.Action):
    """``--version``: the version, and which listener core runs (found only when asked: importing
    it costs every other command time)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help=str(kwargs.get("help", "")),
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from orchestrator.backends.registry import listener_core

        print(f"orchestrator {__version__}\nlistener core: {listener_core()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description=(
            "Declarative orchestrator for process-isolated HTTP services: URL groups routed to "
            "request queues served by least-privilege worker pools, planned and applied like "
            "terraform."
        ),
        epilog=(
            "Run 'orchestrator COMMAND --help' for a command's options and examples.\n\n"
            "environment:\n"
            "  NO_COLOR=1     no colour (no-color.org)\n"
            "  FORCE_COLOR=1  colour even into a pipe or a CI log (force-color.org); beats\n"
            "                 NO_COLOR, and --no-color beats both"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action=_Version,
        help="show the version and which listener core (compiled or pure Python) runs, and exit",
    )
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

    for module in (
        manifest_commands,
        plan_commands,
        controller_commands,
        ops_commands,
        logs_commands,
    ):
        module.register(add)
    p = add(
        "worker",
        cmd_worker,
        "serve a WSGI or ASGI app from the inherited queue socket, or on --listen HOST:PORT",
    )
    p.add_argument("worker_args", nargs=argparse.REMAINDER, metavar="[OPTIONS] MODULE:APP")
    return parser


def cmd_worker(args: argparse.Namespace) -> int:
    """``orchestrator worker MODULE:APP``: the worker runner (see ``orchestrator.runner``)."""
    from orchestrator.runner.main import main as runner_main

    return runner_main(list(args.worker_args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["worker"]:
        # The runner has its own options; hand them over untouched.
        from orchestrator.runner.main import main as runner_main

        return runner_main(arguments[1:])
    if arguments[:1] == ["__complete"]:
        # Hidden: what the completion scripts call (never listed, never an error on a shell).
        return ops_commands.complete(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
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
    except OSError as exc:
        # A path an option named that cannot be read, written or created (--out into a missing
        # directory, a run directory on a read-only mount) is the user's to fix: one line, no
        # traceback. An OSError naming no file is not a path problem and keeps its traceback.
        message = path_problem(exc)
        if message is None or args.debug:
            raise
        print(message, file=sys.stderr)
        return EXIT_ERROR
