"""``orchestrator worker``: the runner's command line, exit codes and composition root.

Owns: argument parsing, logging setup, the boot order (take inherited sockets before importing the app,
so the app never sees ``LISTEN_*`` or inherits the fds), turning boot failures into exit code 3, and
wiring listeners -> ``SocketSource`` -> ``WsgiBridge`` -> ``lifecycle.run``. No request handling here.
Must not import anything from ``orchestrator`` outside ``orchestrator.runner``.

Exit codes:
    0  stopped (SIGTERM/SIGINT after draining, or SIGQUIT)
    1  unexpected failure, e.g. a ``--bind`` address already in use (may be transient: retry)
    2  usage error (argparse)
    3  cannot boot: the app cannot be imported or built, or there is no usable socket. Retrying cannot
       help, so the controller stops respawning a pool whose workers exit with it (gunicorn's
       ``WORKER_BOOT_ERROR``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING

from orchestrator.runner.appspec import load_app, parse_app_spec
from orchestrator.runner.errors import BootError
from orchestrator.runner.lifecycle import run
from orchestrator.runner.listeners import (
    BindAddress,
    Listener,
    bind_listener,
    describe_address,
    inherit_listeners,
    parse_bind,
)
from orchestrator.runner.socket_source import SocketSource
from orchestrator.runner.wsgi import WsgiBridge

if TYPE_CHECKING:
    from orchestrator.runner.httpsys_source import HttpApiPort

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BOOT_ERROR = 3

PROG = "orchestrator worker"
log = logging.getLogger("orchestrator.runner")

_EPILOG = """\
The socket normally comes from the controller by socket activation: fd 3 with LISTEN_FDS=1,
LISTEN_FDNAMES=<queue> and LISTEN_PID=<this pid>. --bind is for running a worker by hand.

exit codes:
  0  stopped (SIGTERM/SIGINT after in-flight requests finished, or SIGQUIT)
  1  unexpected failure (e.g. the --bind address is in use)
  2  usage error
  3  cannot boot: the app cannot be imported, or there is no socket to serve; do not retry
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return value


def _bind(text: str) -> BindAddress:
    try:
        return parse_bind(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``orchestrator worker`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a WSGI application from a request queue (a listening socket).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "app",
        metavar="MODULE:APP",
        help="the app, gunicorn style: 'hello:app' or 'hello:create_app(\"x\")' (literal arguments)",
    )
    parser.add_argument(
        "--threads", type=_positive_int, default=8, metavar="N", help="pool threads (default 8)"
    )
    parser.add_argument(
        "--app-dir",
        metavar="DIR",
        help="put DIR first on sys.path (default: the current directory)",
    )
    parser.add_argument(
        "--bind",
        type=_bind,
        action="append",
        default=[],
        metavar="unix:PATH|HOST:PORT",
        help="listen here as well as on inherited sockets (repeatable; port 0 picks a free port)",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="after SIGTERM, how long in-flight requests may take (default 30)",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=_seconds,
        default=75.0,
        metavar="SECONDS",
        help="close idle keep-alive connections after this long (default 75)",
    )
    parser.add_argument("--access-log", action="store_true", help="log one line per request")
    parser.add_argument("--debug", action="store_true", help="debug logging and full tracebacks")
    return parser


def _configure_logging(*, debug: bool, access_log: bool) -> None:
    logger = logging.getLogger("orchestrator.runner")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s [%(process)d] [%(levelname)s] %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False  # the app's own logging configuration stays the app's business
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("orchestrator.runner.access").setLevel(
        logging.INFO if access_log else logging.WARNING
    )


def _queue_in_environment() -> bool:
    """The controller named an http.sys request queue (the HTTP.sys backend's workers)."""
    return bool(os.environ.get("ORCHESTRATOR_QUEUE") or os.environ.get("ORCHESTRATOR_QUEUE_HANDLE"))


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``orchestrator worker``.

    Args:
        argv: the arguments after ``worker``; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code (see the module docstring).
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error; the caller owns the process exit
        return (
            exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
        )
    _configure_logging(debug=args.debug, access_log=args.access_log)
    listeners: list[Listener] = []
    queue: HttpApiPort | None = None
    try:
        # First, before any app code runs: take the fds (or the http.sys queue on Windows).
        if sys.platform == "win32" and not args.bind and _queue_in_environment():
            from orchestrator.runner.httpsys_source import attach_queue

            queue = attach_queue()
        else:
            listeners = inherit_listeners()
        spec = parse_app_spec(args.app)
        listeners.extend(bind_listener(address) for address in args.bind)
        if not listeners and queue is None:
            raise BootError(
                "no socket to serve: expected one from the controller (LISTEN_FDS) or --bind"
            )
        app = load_app(spec, os.path.abspath(args.app_dir or os.getcwd()))
    except BootError as exc:
        for listener in listeners:
            listener.close()
        if queue is not None:
            queue.close()
        if exc.show_traceback or args.debug:
            traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        _say(f"cannot boot: {exc}")
        return EXIT_BOOT_ERROR
    except OSError as exc:
        for listener in listeners:
            listener.close()
        if queue is not None:
            queue.close()
        _say(f"error: {exc}")
        return EXIT_ERROR
    if queue is not None:
        from orchestrator.runner.httpsys_source import HttpSysSource

        log.info("serving %s with %d threads from an http.sys request queue", spec, args.threads)
        queue_source = HttpSysSource(queue, WsgiBridge(app), threads=args.threads)
        return run(queue_source, graceful_timeout_s=args.graceful_timeout)
    for listener in listeners:
        log.info("listening on %s (%s)", describe_address(listener.sock), listener.name)
    log.info("serving %s with %d threads", spec, args.threads)
    source = SocketSource(
        listeners,
        WsgiBridge(app),
        threads=args.threads,
        keepalive_timeout_s=args.keepalive_timeout,
    )
    return run(source, graceful_timeout_s=args.graceful_timeout)
