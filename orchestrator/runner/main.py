"""``orchestrator worker``: the runner's command line, exit codes and composition root.

Owns: argument parsing, logging setup, the boot order (take inherited sockets before importing the app,
so the app never sees ``LISTEN_*`` or inherits the fds), turning boot failures into exit code 3, and
wiring listeners -> ``SocketSource`` -> ``WsgiBridge`` -> ``lifecycle.run``. No request handling here.
Must not import anything from ``orchestrator`` outside ``orchestrator.runner``.

``--listen HOST:PORT`` is the container mode (``orchestrator render kubernetes`` emits it): serve that
TCP address and nothing else, because a pod has no controller to hand over a queue socket.

Exit codes:
    0  stopped (SIGTERM/SIGINT after draining, or SIGQUIT)
    1  unexpected failure, e.g. a ``--bind``/``--listen`` address already in use (may be transient:
       retry)
    2  usage error (argparse), e.g. a ``--listen`` value that is not ``HOST:PORT``
    3  cannot boot: the app cannot be imported or built, there is no usable socket, or ``--listen``
       was given to a worker the controller also handed a queue. Retrying cannot help, so the
       controller stops respawning a pool whose workers exit with it (gunicorn's
       ``WORKER_BOOT_ERROR``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, NoReturn

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
    parse_listen,
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
--listen is for containers (Kubernetes): serve only that TCP address; no inherited socket.

exit codes:
  0  stopped (SIGTERM/SIGINT after in-flight requests finished, or SIGQUIT)
  1  unexpected failure (e.g. the --bind or --listen address is in use)
  2  usage error
  3  cannot boot: the app cannot be imported, there is no socket to serve, or --listen was
     given while the controller also passed a queue socket; do not retry
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


def _listen(text: str) -> BindAddress:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line.

    A worker's stderr ends up in a journal, in ``kubectl logs`` or in a pod's crash-loop message, where
    argparse's multi-line usage block would push the actual mistake out of view.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``orchestrator worker`` argument parser."""
    parser = _Parser(
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
    # --listen means "this address and nothing else", so adding --bind addresses to it would
    # contradict it: argparse refuses the pair.
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--bind",
        type=_bind,
        action="append",
        default=[],
        metavar="unix:PATH|HOST:PORT",
        help="listen here as well as on inherited sockets (repeatable; port 0 picks a free port)",
    )
    where.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT",
        help="serve only this TCP address, with no inherited socket (containers, e.g. "
        "0.0.0.0:8080 or [::]:8080; port 0 picks a free port)",
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


def _listen_only(address: BindAddress) -> Listener:
    """Take the ``--listen`` socket after checking that no queue was handed over as well.

    Raises:
        BootError: the controller passed a queue socket (or an http.sys queue) to this process too.
        OSError: the address cannot be bound (in use, not local, unknown host name).
    """
    # Still called with --listen: it unsets LISTEN_* so the app's children never misread them,
    # and it tells us whether a controller started this process.
    inherited = inherit_listeners()
    names = [listener.name for listener in inherited]
    for listener in inherited:
        listener.close()
    if sys.platform == "win32" and _queue_in_environment():
        names.append(os.environ.get("ORCHESTRATOR_QUEUE") or "an http.sys queue")
    if names:
        # Refuse rather than ignore the queue: a worker that ignored it would report ready while
        # the controller's queue, which it was started to serve, got no service at all. The usual
        # cause is a Kubernetes command copied into the host manifest; exit code 3 stops the pool
        # at once, so `orchestrator status` shows it halted and its log says why.
        raise BootError(
            f"--listen {address} serves only its own address, but the controller also passed the "
            f"queue {', '.join(names)}; remove --listen from the pool's command"
        )
    return _bind_explained(address)


def _bind_explained(address: BindAddress) -> Listener:
    """``bind_listener``, with an error that names the address (errno text alone does not)."""
    try:
        return bind_listener(address)
    except OSError as exc:
        raise OSError(f"cannot listen on {address}: {exc.strerror or exc}") from None


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
        if args.listen is not None:
            listeners = [_listen_only(args.listen)]
        elif sys.platform == "win32" and not args.bind and _queue_in_environment():
            from orchestrator.runner.httpsys_source import attach_queue

            queue = attach_queue()
        else:
            listeners = inherit_listeners()
        spec = parse_app_spec(args.app)
        listeners.extend(_bind_explained(address) for address in args.bind)
        if not listeners and queue is None:
            raise BootError(
                "no socket to serve: expected one from the controller (LISTEN_FDS), --bind or --listen"
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
