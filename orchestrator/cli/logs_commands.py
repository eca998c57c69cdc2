"""The ``logs`` command: a pool's captured output, from the controller's ring buffers.

Owns: its arguments and output. The capture, the rings and the streaming are the controller's
(``controller.output``, ``controller.logs``), read through the admin API's ``logs`` operation.
"""

from __future__ import annotations

import argparse
import json
import time

from orchestrator.cli.common import EXIT_OK, Adder, add_run_dir_options, duration, run_dir_of

EXAMPLES = {
    "logs": """examples:
  orchestrator logs api                       # what api's workers printed lately, tagged api[PID]
  orchestrator logs api -f                    # and follow, across restarts, until Ctrl-C
  orchestrator logs api --tail 50 --since 10m
  orchestrator logs listener                  # the listener's own output (not its access log)
  orchestrator logs worker/listener           # a pool that is named listener
  orchestrator logs api --json | jq -r 'select(.stream == "stderr") | .line'

Each pool keeps its most recent lines (5000, at most 2 MiB; a line is cut at 16 KiB), so a
flooding pool loses its own oldest lines, never another pool's. The controller's log has every
line too, as 'pool[pid]: line' (or JSON with --log-format json).""",
}


def cmd_logs(args: argparse.Namespace) -> int:
    """``orchestrator logs POOL``: the pool's recent output; with ``-f``, new lines as they come."""
    from orchestrator.controller.client import Client

    def show(record: dict[str, object]) -> None:
        if "dropped" in record:
            line = f"orchestrator: {record['dropped']} lines skipped (this client fell behind)"
            print(json.dumps(record) if args.json else line, flush=True)
        elif args.json:
            print(json.dumps(record), flush=True)
        else:
            stamp = ""
            if args.timestamps:
                ts = float(str(record.get("ts", 0)))
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts)) + " "
            print(
                f"{stamp}{record.get('pool')}[{record.get('pid')}]: {record.get('line')}",
                flush=True,
            )

    request: dict[str, object] = {"pool": args.pool, "follow": args.follow}
    if args.tail is not None:
        request["tail"] = args.tail
    if args.since is not None:
        request["since_s"] = args.since
    Client(run_dir_of(args, None), timeout_s=None).request(
        "logs", request, on_event=show, timeout_s=None
    )
    return EXIT_OK


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def register(add: Adder) -> None:
    """Add this module's commands to the parser."""
    p = add("logs", cmd_logs, "show a pool's captured stdout and stderr, tagged by pid")
    p.add_argument(
        "pool", metavar="POOL", help="a pool's name, or 'listener' for the listener's output"
    )
    p.add_argument(
        "--follow", "-f", action="store_true", help="keep streaming new lines until Ctrl-C"
    )
    p.add_argument("--tail", type=_count, metavar="N", help="only the last N buffered lines")
    p.add_argument(
        "--since",
        type=duration,
        metavar="DURATION",
        help="only lines written in the last DURATION (e.g. 30s, 10m, 2h)",
    )
    p.add_argument("--timestamps", "-t", action="store_true", help="prefix each line's time")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    add_run_dir_options(p, short_file=False)
