"""Commands that run or talk to a controller: ``run``, ``status``, ``down``, ``reset``, ``events``,
``open``.

Owns: their arguments and output. The work is the controller's (``controller.daemon``, the admin API
through ``controller.client``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from orchestrator.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    RUN_DIR_ENV,
    Adder,
    add_run_dir_options,
    check_run_dir,
    duration,
    run_dir_of,
)
from orchestrator.errors import OrchestratorError

#: ``status``: the controller answered, and something fails (docs/status.md, "Exit codes").
EXIT_FAILING = 3

EXAMPLES = {
    "run": """examples:
  orchestrator run examples/quickstart                 # as yourself: everything runs as you
  sudo orchestrator run /etc/orchestrator/             # as root: dedicated users, cgroups
  orchestrator run site.yaml --log-format json --run-dir /run/site
  orchestrator run examples/isolated --allow-degraded  # not root: runs, without what it asks

Logs go to stderr, one event a line. SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the manifest.
With NOTIFY_SOCKET set (systemd Type=notify) it reports READY=1 after the first convergence,
RELOADING=1 then READY=1 around each reload, and WATCHDOG=1 when WATCHDOG_USEC is set.
State that must survive a stop (last-known-good manifest, created users) is in --state-dir.
A manifest asking for what this controller cannot give (other users, ACLs naming them, cgroup
limits, a required sandbox) is refused, each guarantee named, unless --allow-degraded is given.""",
    "status": """examples:
  orchestrator status
  orchestrator status --json | jq '.workers[] | {pool, pid, state}'
  orchestrator status --json --spec > live.json   # a snapshot for: orchestrator plan B --live live.json
  ORCHESTRATOR_RUN_DIR=/run/site orchestrator status
  orchestrator status -f site.yaml                  # the run directory of site.yaml's session.runDir

--spec adds "spec", the desired state the controller applied: enough to plan against offline.""",
    "down": """examples:
  orchestrator down
  orchestrator down --timeout 5m --run-dir /run/site

Drains the listener, stops every pool within its shutdownTimeLimit, then the controller; waits
until it is gone.""",
    "reset": """examples:
  orchestrator reset api

Re-arms a pool that rapid-fail protection stopped (status shows it STOPPED, and why).""",
    "events": """examples:
  orchestrator events
  orchestrator events -f                      # follow until Ctrl-C
  orchestrator events --json | jq 'select(.event == "process_exit")'""",
    "open": """examples:
  orchestrator open api -- gunicorn --bind fd://3 app:app
  orchestrator open api -- uvicorn --fd 3 app:app

The broker checks your uid and groups against the queue's ACL and passes its listening socket.""",
}


def cmd_run(args: argparse.Namespace) -> int:
    """``orchestrator run PATH``: the controller in the foreground."""
    from orchestrator.controller.daemon import DaemonOptions, run_daemon

    # The same order as the commands that talk to it (run_dir_of), so that a shell with
    # ORCHESTRATOR_RUN_DIR set finds the controller it started; the manifest's comes next.
    run_dir = args.run_dir or os.environ.get(RUN_DIR_ENV) or None
    if run_dir:
        check_run_dir(
            run_dir,
            f"{'--run-dir' if args.run_dir else RUN_DIR_ENV} names the controller's run directory.",
        )
    if args.state_dir:
        check_run_dir(args.state_dir, "--state-dir names the controller's state directory.")
    return run_daemon(
        DaemonOptions(
            path=args.path,
            run_dir=run_dir,
            state_dir=args.state_dir,
            log_format=args.log_format,
            resume=args.resume,
            allow_degraded=args.allow_degraded,
            watch=not args.no_watch,
            debounce_s=args.debounce,
            poll_s=args.poll,
            resync_s=args.resync,
        )
    )


def cmd_status(args: argparse.Namespace) -> int:
    """``orchestrator status``: queues, URL groups, pools and their processes, the manifest."""
    from orchestrator.controller.client import Client
    from orchestrator.controller.status import failing, render_status

    if args.spec and not args.json:
        raise OrchestratorError(
            "--spec is data for 'plan --live': give --json too",
            "orchestrator status --json --spec > live.json",
        )
    client = Client(run_dir_of(args, None))
    state = client.request("state", {"spec": True} if args.spec else None)
    if args.spec and state.get("spec") is None:
        # A snapshot without it would only fail later, in 'plan --live'.
        raise OrchestratorError(
            f"the controller at {client.run_dir.root} sent no spec",
            "It predates 'status --spec', or has not accepted a manifest yet; "
            "restart it on this version.",
        )
    state.pop("_at", None)
    if args.json:
        print(json.dumps(state, indent=2, default=str))
    else:
        sys.stdout.write(render_status(state))
    # As `systemctl is-failed`: non-zero while anything fails, so scripts need not parse. A --spec
    # snapshot is data for CI, wanted whatever the controller's health.
    return EXIT_FAILING if failing(state) and not args.spec else EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    """``orchestrator down``: stop everything the controller started, then the controller."""
    import time

    from orchestrator.controller.client import Client
    from orchestrator.errors import ControllerUnavailable

    client = Client(run_dir_of(args, None))
    result = client.request("down")
    print(str(result.get("message", "stopping")))
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            client.request("state", timeout_s=2.0)
        except ControllerUnavailable:
            print("stopped")
            return EXIT_OK
        except OrchestratorError:
            pass
        time.sleep(0.2)
    print(f"still stopping after {args.timeout:g}s; see the controller's log", file=sys.stderr)
    return EXIT_ERROR


def cmd_reset(args: argparse.Namespace) -> int:
    """``orchestrator reset POOL``: re-arm a pool stopped by rapid-fail protection."""
    from orchestrator.controller.client import Client

    result = Client(run_dir_of(args, None)).request("reset", {"pool": args.pool})
    print(str(result.get("message")))
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    """``orchestrator events``: the controller's recent events, or a live stream."""
    from orchestrator.controller.client import Client
    from orchestrator.controller.logs import format_text

    def show(event: dict[str, object]) -> None:
        print(json.dumps(event) if args.json else format_text(event), flush=True)

    Client(run_dir_of(args, None), timeout_s=None).request(
        "events", {"since": args.since, "follow": args.follow}, on_event=show, timeout_s=None
    )
    return EXIT_OK


def cmd_open(args: argparse.Namespace) -> int:
    """``orchestrator open QUEUE -- CMD...``: open a queue by name and exec CMD with it as fd 3."""
    from orchestrator.controller.paths import RunDir

    rest = list(args.command)
    # Options after QUEUE and before "--" (argparse hands everything after QUEUE to us).
    while rest and rest[0] != "--":
        if rest[0] == "--run-dir" and len(rest) > 1:
            args.run_dir = rest[1]
            rest = rest[2:]
        elif rest[0].startswith("--run-dir="):
            args.run_dir = rest[0].split("=", 1)[1]
            rest = rest[1:]
        elif rest[0] in ("-f", "--file") and len(rest) > 1:
            args.file = rest[1]
            rest = rest[2:]
        elif rest[0].startswith("--file="):
            args.file = rest[0].split("=", 1)[1]
            rest = rest[1:]
        else:
            break
    args.command = rest
    if not args.command or args.command == ["--"]:
        raise OrchestratorError(
            "no command given", "Usage: orchestrator open QUEUE -- CMD [ARG...]"
        )
    if sys.platform == "win32":
        raise OrchestratorError("orchestrator open is for the linux backend")
    from orchestrator.backends.base import QueueRefused
    from orchestrator.backends.registry import queue_opener

    open_queue = queue_opener("auto")
    broker = RunDir(run_dir_of(args, None)).broker
    try:
        fd = open_queue(broker, args.queue)
    except QueueRefused as exc:
        raise OrchestratorError(f"cannot open queue {args.queue}: {exc.kind}", str(exc)) from exc
    except OSError as exc:
        raise OrchestratorError(
            f"no broker answers at {broker}: {exc.strerror or exc}",
            "Is the controller running? (orchestrator status --run-dir ...)",
        ) from exc
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.set_inheritable(3, True)
    env = dict(os.environ)
    # exec keeps the pid, so LISTEN_PID names the program about to run.
    env.update(LISTEN_FDS="1", LISTEN_FDNAMES=args.queue, LISTEN_PID=str(os.getpid()))
    command = args.command[1:] if args.command[0] == "--" else args.command
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        raise OrchestratorError(f"cannot execute {command[0]}: {exc.strerror}") from exc
    return EXIT_ERROR


def register(add: Adder) -> None:
    """Add this module's commands to the parser."""
    p = add("run", cmd_run, "run the controller in the foreground")
    p.add_argument("path", metavar="PATH", help="a manifest file or directory (watched)")
    p.add_argument(
        "--run-dir",
        metavar="DIR",
        help=f"sockets and the lock (default: ${RUN_DIR_ENV}, else session.runDir, else "
        "/run/orchestrator as root)",
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="last-known-good manifest and created users, kept across stops (default: "
        "session.stateDir, else /var/lib/orchestrator/SESSION as root, "
        "$XDG_STATE_HOME/orchestrator/SESSION otherwise)",
    )
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument(
        "--resume",
        action="store_true",
        help="start on the last-known-good manifest when the files are invalid",
    )
    p.add_argument(
        "--allow-degraded",
        action="store_true",
        help="run a manifest that asks for what this controller cannot give (other users, "
        "ACLs naming them, cgroup limits, a required sandbox), logging each dropped guarantee",
    )
    p.add_argument(
        "--no-watch", action="store_true", help="do not watch the files (SIGHUP reloads)"
    )
    p.add_argument(
        "--debounce",
        type=duration,
        default=0.3,
        metavar="DURATION",
        help="quiet time after a file change before reloading (default 300ms)",
    )
    p.add_argument(
        "--poll",
        type=duration,
        default=5.0,
        metavar="DURATION",
        help="interval of the content-hash poll (default 5s)",
    )
    p.add_argument(
        "--resync",
        type=duration,
        default=10.0,
        metavar="DURATION",
        help="interval of the periodic reconcile that corrects drift (default 10s)",
    )

    p = add("status", cmd_status, "show queues, URL groups, pools, processes and the manifest")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.add_argument(
        "--spec",
        action="store_true",
        help="with --json: add 'spec', the applied desired state, so that the output is a "
        "snapshot 'orchestrator plan PATH --live FILE' plans against",
    )
    add_run_dir_options(p)

    p = add("down", cmd_down, "stop everything the controller started, and the controller")
    add_run_dir_options(p)
    p.add_argument("--timeout", type=duration, default=120.0, metavar="DURATION")

    p = add("reset", cmd_reset, "re-arm a pool stopped by rapid-fail protection")
    p.add_argument("pool", metavar="POOL")
    add_run_dir_options(p)

    p = add("events", cmd_events, "show the controller's recent events")
    p.add_argument("--follow", "-f", action="store_true", help="keep streaming new events")
    p.add_argument("--since", type=int, default=0, metavar="SEQ")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    add_run_dir_options(p, short_file=False)

    p = add("open", cmd_open, "open a queue by name and exec a command with it as fd 3")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")
    add_run_dir_options(p)
