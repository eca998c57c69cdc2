"""The ``orchestrator`` command: argument parsing, exit codes and the choice of renderer.

Owns: the command-line surface and how results and errors are printed. No logic: every command calls
into ``manifest``, ``plan``, ``controller`` or a backend and renders what it gets back.
A user mistake never prints a traceback; a bug does (and ``--debug`` shows tracebacks for everything).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator import __version__
from orchestrator.errors import Diagnostic, ManifestError, OrchestratorError, Severity
from orchestrator.model.ids import Kind

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Handler = Callable[[argparse.Namespace], int]


def _print_diagnostics(diags: Sequence[Diagnostic]) -> None:
    for d in diags:
        print(d.render(), file=sys.stderr)


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
                _print_diagnostics(diags)
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
            _print_diagnostics(loaded.warnings)
            print(
                f"{path}: valid ({_plural(counts['queue'], 'queue')}, "
                f"{_plural(counts['urlgroup'], 'URL group')}, "
                f"{_plural(counts['worker'], 'worker pool')}; "
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
    _print_diagnostics(warnings)
    if args.strict and warnings:
        print(
            f"{args.path}: {_plural(len(warnings), 'warning')}, which --strict makes errors",
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
                f"({_plural(len(problems), 'problem')}); nothing was written",
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
    print(f"wrote {_plural(len(documents), 'file')} to {args.out}", file=sys.stderr)
    return EXIT_OK


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _run_dir(args: argparse.Namespace, session_run_dir: str | None) -> str:
    from orchestrator.controller.paths import default_run_dir

    return str(args.run_dir or session_run_dir or default_run_dir())


def _manifest_files(loaded_source: object) -> list[dict[str, str]]:
    import base64

    from orchestrator.manifest.load import ManifestSet

    assert isinstance(loaded_source, ManifestSet)
    return [
        {"name": f.name, "content_b64": base64.b64encode(f.content).decode()}
        for f in loaded_source.files
    ]


def _colour(args: argparse.Namespace) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def cmd_plan(args: argparse.Namespace) -> int:
    """``orchestrator plan PATH``: a dry run against the live state of the running controller."""
    from orchestrator.backends.registry import resolve_backend_name
    from orchestrator.controller.client import Client
    from orchestrator.errors import ControllerUnavailable
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.model.live import LiveState
    from orchestrator.plan.diff import make_plan
    from orchestrator.plan.render import plan_document, render_text

    loaded = load_manifest(args.path, identities=HostIdentities())
    _print_diagnostics(loaded.warnings)
    session = loaded.desired.session
    run_dir = _run_dir(args, session.run_dir if session else None)
    manifest_path = os.path.abspath(args.path)
    client = Client(run_dir)
    try:
        reply = client.request(
            "plan",
            {
                "files": _manifest_files(loaded.source),
                "path": manifest_path,
                "colour": _colour(args),
            },
        )
        doc, text = reply["plan"], str(reply["text"])
        assert isinstance(doc, dict)
    except ControllerUnavailable as exc:
        backend = resolve_backend_name(session.backend.value if session else "auto")
        plan = make_plan(loaded.desired, LiveState.empty(backend))
        doc = plan_document(plan, manifest_path=manifest_path)
        text = render_text(plan, colour=_colour(args))
        note = (
            f"Note: {exc.summary}, so live state is empty and every object is a create.\n"
            "      Start one with: orchestrator run PATH\n\n"
        )
        if not args.json:
            sys.stdout.write(note)
        else:
            print(note.strip().replace("\n      ", " "), file=sys.stderr)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(text)
        if args.out:
            print(f"\nSaved the plan to {args.out}. Apply exactly this plan with:")
            print(f"  orchestrator apply {args.out}")
    summary = doc.get("summary")
    changes = isinstance(summary, dict) and bool(doc.get("applyable"))
    return EXIT_CHANGES if args.detailed_exitcode and changes else EXIT_OK


def _is_saved_plan(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"{") and b'"format_version"' in head


def cmd_apply(args: argparse.Namespace) -> int:
    """``orchestrator apply PATH|PLANFILE``: apply through the running controller and wait."""
    from orchestrator.controller.client import Client
    from orchestrator.manifest import load_manifest
    from orchestrator.manifest.identities import HostIdentities
    from orchestrator.plan.render import read_saved_plan
    from orchestrator.plan.stale import check_manifest_unchanged

    expected_fingerprint: str | None = None
    manifest_path = args.path
    saved = None
    if _is_saved_plan(args.path):
        with open(args.path, encoding="utf-8") as fh:
            saved = read_saved_plan(fh.read(), args.path)
        manifest_path = saved.manifest_path
        expected_fingerprint = saved.live_fingerprint
    loaded = load_manifest(manifest_path, identities=HostIdentities(), strict_identities=True)
    _print_diagnostics(loaded.warnings)
    if saved is not None:
        check_manifest_unchanged(
            saved.manifest_sha256, loaded.desired.manifest_sha256, path=manifest_path
        )
    session = loaded.desired.session
    run_dir = _run_dir(args, session.run_dir if session else None)
    client = Client(run_dir, timeout_s=None)
    result = client.request(
        "apply",
        {
            "files": _manifest_files(loaded.source),
            "path": os.path.abspath(manifest_path),
            "expected_manifest_sha256": loaded.desired.manifest_sha256,
            "expected_fingerprint": expected_fingerprint,
            "allow_mass_delete": bool(args.allow_mass_delete),
        },
        on_event=_progress_printer(args),
        timeout_s=None,
    )
    if args.json:
        print(json.dumps({"event": "summary", **result}))
    else:
        print(str(result.get("message", "")))
    return int(str(result.get("exit_code", EXIT_OK)))


def _progress_printer(args: argparse.Namespace) -> Callable[[dict[str, object]], None]:
    live = sys.stderr.isatty() and not args.json

    def show(event: dict[str, object]) -> None:
        if args.json:
            print(json.dumps(event), flush=True)
            return
        text = str(event.get("message") or event.get("event"))
        if live:
            sys.stderr.write("\r\x1b[K" + text[:200])
            if event.get("final"):
                sys.stderr.write("\n")
        else:
            print(text, file=sys.stderr)
        sys.stderr.flush()

    return show


def _duration(text: str) -> float:
    from orchestrator.model.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    """``orchestrator run PATH``: the controller in the foreground."""
    from orchestrator.controller.daemon import DaemonOptions, run_daemon

    return run_daemon(
        DaemonOptions(
            path=args.path,
            run_dir=args.run_dir,
            log_format=args.log_format,
            resume=args.resume,
            watch=not args.no_watch,
            debounce_s=args.debounce,
            poll_s=args.poll,
            resync_s=args.resync,
        )
    )


def cmd_status(args: argparse.Namespace) -> int:
    """``orchestrator status``: queues, URL groups, pools and their processes, the manifest."""
    from orchestrator.controller.client import Client
    from orchestrator.controller.status import render_status

    state = Client(_run_dir(args, None)).request("state")
    state.pop("_at", None)
    if args.json:
        print(json.dumps(state, indent=2, default=str))
    else:
        sys.stdout.write(render_status(state))
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    """``orchestrator down``: stop everything the controller started, then the controller."""
    import time

    from orchestrator.controller.client import Client
    from orchestrator.errors import ControllerUnavailable

    client = Client(_run_dir(args, None))
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

    result = Client(_run_dir(args, None)).request("reset", {"pool": args.pool})
    print(str(result.get("message")))
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    """``orchestrator events``: the controller's recent events, or a live stream."""
    from orchestrator.controller.client import Client
    from orchestrator.controller.logs import format_text

    def show(event: dict[str, object]) -> None:
        print(json.dumps(event) if args.json else format_text(event), flush=True)

    Client(_run_dir(args, None), timeout_s=None).request(
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
    broker = RunDir(_run_dir(args, None)).broker
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


def cmd_schema(args: argparse.Namespace) -> int:
    """``orchestrator schema``: print the manifest's JSON Schema exactly as shipped."""
    from orchestrator.manifest.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


EXAMPLES = {
    "validate": """examples:
  orchestrator validate site.yaml
  orchestrator validate manifests/            # every *.yaml/*.yml in the directory, merged
  orchestrator validate --json manifests/ | jq '.manifests[].diagnostics'

exit codes: 0 valid, 1 invalid""",
    "plan": """examples:
  orchestrator plan site.yaml                       # dry run against the running controller
  orchestrator plan site.yaml --detailed-exitcode   # CI: exit 0 no changes, 2 changes, 1 error
  orchestrator plan site.yaml --json | jq '.resource_changes[] | select(.change.actions == ["delete"])'
  orchestrator plan site.yaml --out plan.json && orchestrator apply plan.json

With no controller running, live state is empty and every object is a create.""",
    "apply": """examples:
  orchestrator apply site.yaml          # plan and apply through the controller, wait until healthy
  orchestrator apply plan.json          # apply exactly a saved plan; refused if it is stale
  orchestrator apply site.yaml --json   # NDJSON progress events

exit codes: 0 applied and healthy, 1 failed before any change, 3 failed and rolled back,
4 failed and rollback incomplete (needs an operator)""",
    "run": """examples:
  orchestrator run examples/quickstart                 # as yourself: everything runs as you
  sudo orchestrator run /etc/orchestrator/             # as root: dedicated users, cgroups
  orchestrator run site.yaml --log-format json --run-dir /run/site

Logs go to stderr, one event a line. SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the manifest.
With NOTIFY_SOCKET set (systemd Type=notify) it reports READY=1 after the first convergence.""",
    "status": """examples:
  orchestrator status
  orchestrator status --json | jq '.workers[] | {pool, pid, state}'""",
    "open": """examples:
  orchestrator open api -- gunicorn --bind fd://3 app:app
  orchestrator open api -- uvicorn --fd 3 app:app

The broker checks your uid and groups against the queue's ACL and passes its listening socket.""",
    "worker": """examples:
  orchestrator worker hello:app
  orchestrator worker --threads 16 "factory:create_app()"

Serves a WSGI app from the socket the controller hands over as fd 3 (LISTEN_FDS).""",
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
        epilog="Run 'orchestrator COMMAND --help' for a command's options and examples.",
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

    p = add("validate", cmd_validate, "check manifests offline (schema and semantic checks)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a manifest file or directory")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("plan", cmd_plan, "show what apply would change (a dry run)")
    p.add_argument("path", metavar="PATH", help="a manifest file or directory")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (format 1.0)")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes, 0 when there are none, 1 on error",
    )
    p.add_argument("--out", metavar="FILE", help="save the plan for 'orchestrator apply FILE'")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument("--no-color", action="store_true", help="never use colour")

    p = add("apply", cmd_apply, "apply a manifest or a saved plan through the controller")
    p.add_argument("path", metavar="PATH|PLANFILE", help="a manifest, or a plan saved with --out")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow a plan that deletes every object or more than half of them",
    )
    p.add_argument("--json", action="store_true", help="print NDJSON events")

    p = add("run", cmd_run, "run the controller in the foreground")
    p.add_argument("path", metavar="PATH", help="a manifest file or directory (watched)")
    p.add_argument("--run-dir", metavar="DIR", help="sockets and state (default: session.runDir)")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument(
        "--resume",
        action="store_true",
        help="start on the last-known-good manifest when the files are invalid",
    )
    p.add_argument(
        "--no-watch", action="store_true", help="do not watch the files (SIGHUP reloads)"
    )
    p.add_argument(
        "--debounce",
        type=_duration,
        default=0.3,
        metavar="DURATION",
        help="quiet time after a file change before reloading (default 300ms)",
    )
    p.add_argument(
        "--poll",
        type=_duration,
        default=5.0,
        metavar="DURATION",
        help="interval of the content-hash poll (default 5s)",
    )
    p.add_argument(
        "--resync",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="interval of the periodic reconcile that corrects drift (default 10s)",
    )

    p = add("status", cmd_status, "show queues, URL groups, pools, processes and the manifest")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")

    p = add("down", cmd_down, "stop everything the controller started, and the controller")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")
    p.add_argument("--timeout", type=_duration, default=120.0, metavar="DURATION")

    p = add("reset", cmd_reset, "re-arm a pool stopped by rapid-fail protection")
    p.add_argument("pool", metavar="POOL")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")

    p = add("events", cmd_events, "show the controller's recent events")
    p.add_argument("--follow", "-f", action="store_true", help="keep streaming new events")
    p.add_argument("--since", type=int, default=0, metavar="SEQ")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")

    p = add("open", cmd_open, "open a queue by name and exec a command with it as fd 3")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory of the controller")

    p = add(
        "worker",
        cmd_worker,
        "serve a WSGI or ASGI app from the inherited queue socket, or on --listen HOST:PORT",
    )
    p.add_argument("worker_args", nargs=argparse.REMAINDER, metavar="[OPTIONS] MODULE:APP")

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
    return parser


def cmd_render_help(args: argparse.Namespace) -> int:
    """``orchestrator render`` without a target: say which targets there are."""
    print(
        "orchestrator render: name a target: orchestrator render kubernetes PATH", file=sys.stderr
    )
    return EXIT_ERROR


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
