"""Operator verbs: ``restart``, ``reload``, ``show`` and ``completion`` (and the hidden
``__complete`` the completion scripts call).

Owns: their arguments, examples and output. The work is the controller's (the admin API's
``restart`` and ``reload`` jobs), ``plan.saved`` (a saved plan as text) and ``cli.completion``
(the scripts, generated from the parser).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from orchestrator.cli.common import EXIT_ERROR, EXIT_OK, Adder, add_run_dir_options, run_dir_of
from orchestrator.errors import OrchestratorError, PlanError

EXAMPLES = {
    "restart": """examples:
  orchestrator restart api
  orchestrator restart api --run-dir /run/site

An overlapped recycle on demand, the path a changed definition takes: new processes start, and the
old ones stop only once the new ones are ready, so no request fails. Prints the old and new pids.
Use it to roll out new code on disk without editing the manifest.""",
    "reload": """examples:
  orchestrator reload                 # re-read the manifest now (as SIGHUP does)
  orchestrator reload --force         # retry a manifest that was rejected, without an edit

Prints the outcome: applied, no changes, or rejected with its errors (exit 1).""",
    "show": """examples:
  orchestrator plan site.yaml --out site.plan && orchestrator show site.plan
  orchestrator show site.plan --json | jq '.summary'

Needs no controller and no manifest: everything comes from the saved file.""",
    "completion": """examples:
  orchestrator completion bash > /etc/bash_completion.d/orchestrator
  source <(orchestrator completion bash)
  orchestrator completion zsh > "${fpath[1]}/_orchestrator"
  orchestrator completion fish > ~/.config/fish/completions/orchestrator.fish

Pool and queue names are completed from the running controller (nothing when none runs).""",
}


def _progress(event: dict[str, object]) -> None:
    message = event.get("message")
    if message:
        print(str(message), file=sys.stderr, flush=True)


def _pids(pids: object) -> str:
    return ", ".join(str(p) for p in pids) if isinstance(pids, list) and pids else "-"


def cmd_restart(args: argparse.Namespace) -> int:
    """``orchestrator restart POOL``: an overlapped recycle of one pool, on demand."""
    from orchestrator.controller.client import Client

    result = Client(run_dir_of(args, None), timeout_s=None).request(
        "restart", {"pool": args.pool}, on_event=_progress, timeout_s=None
    )
    print(
        f"worker/{result.get('pool')} restarted (generation {result.get('generation')}): "
        f"pids {_pids(result.get('old_pids'))} -> {_pids(result.get('new_pids'))}"
    )
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    """``orchestrator reload [--force]``: re-read the manifest and say what became of it."""
    from orchestrator.controller.client import Client

    result = Client(run_dir_of(args, None), timeout_s=None).request(
        "reload", {"force": args.force}, on_event=_progress, timeout_s=None
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(str(result.get("message")))
        errors = result.get("errors")
        for error in errors if isinstance(errors, list) else []:
            print(f"  {error}")
        warnings = result.get("warnings")
        if isinstance(warnings, list) and warnings:
            print(f"  ({len(warnings)} warning{'' if len(warnings) == 1 else 's'}; see --json)")
    return EXIT_ERROR if result.get("outcome") == "rejected" else EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """``orchestrator show PLANFILE``: a saved plan as text or JSON."""
    from orchestrator.plan.render import read_saved_plan
    from orchestrator.plan.saved import render_saved

    try:
        with open(args.planfile, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise OrchestratorError(f"{args.planfile}: not a saved plan (not text)") from None
    try:
        read_saved_plan(text, args.planfile)
    except PlanError as exc:
        # One line: the file is named, and its summary says what is wrong with it.
        raise OrchestratorError(exc.summary) from None
    doc = json.loads(text)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(render_saved(doc, args.planfile))
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    """``orchestrator completion SHELL``: the completion script for a shell."""
    from orchestrator.cli.completion import script
    from orchestrator.cli.main import build_parser

    sys.stdout.write(script(args.shell, build_parser()))
    return EXIT_OK


def complete(argv: Sequence[str]) -> int:
    """``orchestrator __complete pools|queues [--run-dir DIR]``: the names a completion script
    offers, one a line, from the running controller; nothing (and exit 0) when none answers, so
    that a shell never shows an error while completing."""
    parser = argparse.ArgumentParser(prog="orchestrator __complete", add_help=False)
    parser.add_argument("what", choices=["pools", "queues"])
    parser.add_argument("--run-dir")
    try:
        args, _ = parser.parse_known_args(list(argv))
    except SystemExit:
        return EXIT_OK
    from orchestrator.controller.client import Client

    try:
        state = Client(run_dir_of(args, None), timeout_s=2.0).request("state")
    except (OrchestratorError, OSError):
        return EXIT_OK
    if args.what == "pools":
        pools = state.get("pools")
        names = sorted(pools) if isinstance(pools, dict) else []
    else:
        queues = state.get("queues")
        found = queues if isinstance(queues, list) else []
        names = sorted(str(q.get("name")) for q in found if isinstance(q, dict))
    for name in names:
        print(name)
    return EXIT_OK


def register(add: Adder) -> None:
    """Add this module's commands to the parser."""
    p = add("restart", cmd_restart, "recycle a pool now, overlapped (no failed requests)")
    p.add_argument("pool", metavar="POOL")
    add_run_dir_options(p)

    p = add("reload", cmd_reload, "re-read the manifest now, and say what became of it")
    p.add_argument(
        "--force", action="store_true", help="retry a manifest that was rejected, unchanged"
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_run_dir_options(p)

    p = add("show", cmd_show, "show a plan saved with 'plan --out'")
    p.add_argument("planfile", metavar="PLANFILE")
    p.add_argument("--json", action="store_true", help="print the saved JSON document")

    p = add("completion", cmd_completion, "print a shell completion script")
    p.add_argument("shell", metavar="SHELL", choices=["bash", "zsh", "fish"])
