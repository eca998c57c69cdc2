"""The controller daemon: the composition root and its main loop.

Owns: ``Daemon`` and ``DaemonOptions``. It loads the manifest, picks the backend, and runs a
gunicorn-style synchronous loop on the main thread: wait (on the backend's fds, the signal wake-up
pipe, the reconcile trigger and the admin job queue), then reap and supervise (inside the backend's
``poll``), serve admin jobs, and run a reconcile pass when triggered, when its requeue time comes or
on the periodic resync. Signal handlers only enqueue; nothing is logged, spawned or reloaded inside
one. SIGTERM/SIGINT stop gracefully, SIGHUP re-reads the manifest.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.backends.base import Backend
from orchestrator.backends.output import CapturesOutput
from orchestrator.backends.registry import create_backend, resolve_backend_name
from orchestrator.clock import Clock, SystemClock
from orchestrator.controller.admin import AdminServer, Job
from orchestrator.controller.dashboard.service import DashboardService
from orchestrator.controller.degraded import Guarantees
from orchestrator.controller.logs import LogWriter
from orchestrator.controller.metrics import Metrics, serve_metrics
from orchestrator.controller.operations import reload_answer
from orchestrator.controller.output import OutputHub, journal_stream
from orchestrator.controller.paths import (
    DEFAULT_SESSION,
    RunDir,
    StateDir,
    default_run_dir,
    default_state_dir,
    move_state,
    session_paths,
)
from orchestrator.controller.sdnotify import SdNotify
from orchestrator.controller.status import status_document
from orchestrator.errors import Diagnostic, ManifestError, OrchestratorError
from orchestrator.manifest.identities import HostIdentities
from orchestrator.manifest.load import (
    LoadedManifest,
    ManifestFile,
    ManifestSet,
    load_manifest,
    read_manifest_set,
    untrusted,
)
from orchestrator.model.desired import Session
from orchestrator.model.live import LiveState
from orchestrator.plan.render import plan_document, render_text
from orchestrator.plan.snapshot import spec_document
from orchestrator.plan.stale import check_manifest_unchanged
from orchestrator.reconcile.events import EventLog
from orchestrator.reconcile.manifests import ManifestTracker
from orchestrator.reconcile.reconciler import Reconciler, Result
from orchestrator.reconcile.rollout import EXIT_APPLIED, Rollout
from orchestrator.reconcile.trigger import Trigger
from orchestrator.watch import ManifestWatcher


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """How ``orchestrator run`` was invoked."""

    path: str
    run_dir: str | None = None
    state_dir: str | None = None
    log_format: str = "text"
    resume: bool = False
    #: Run a manifest that asks for guarantees this host cannot give, listing and logging each.
    allow_degraded: bool = False
    resync_s: float = 10.0
    watch: bool = True
    debounce_s: float = 0.3
    poll_s: float = 5.0


@dataclass
class _Signals:
    received: queue.SimpleQueue[int] = field(default_factory=queue.SimpleQueue)

    def handle(self, signum: int, _frame: object) -> None:
        # Only enqueue: the main loop does the work (never log, spawn or reload in a handler).
        self.received.put(signum)


class Daemon:
    """One controller: a manifest, a backend, a reconciler and an admin socket."""

    def __init__(self, options: DaemonOptions, clock: Clock | None = None) -> None:
        self.options = options
        self.clock = clock or SystemClock()
        self.events = EventLog(self.clock)
        # Every event the main thread emits refreshes `status` before the event is logged, so a
        # process that the log says has exited is never listed as running afterwards (a status
        # throttled to one refresh in 0.5 s listed a killed worker as ready: the C24 test's kill
        # loop then signalled a pid that was gone). Main thread only: the snapshot reads the
        # backend, which only the main thread may touch.
        self.events.subscribe(self._refresh_on_event)
        self.log_writer = LogWriter(options.log_format)
        self.events.subscribe(self.log_writer)
        # Workers' and the listener's stdout and stderr, tagged, on this log and in `logs`.
        self.output = OutputHub(
            options.log_format, self.log_writer.write_raw, journal=journal_stream(os.environ)
        )
        self.emit = self.events.emit
        self.trigger = Trigger()
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.signals = _Signals()
        self.sd = SdNotify()
        self.stopping = False
        self.reload_requested = False
        self.snapshot: dict[str, object] = {"state": "starting"}
        self.metrics = Metrics(lambda: self.snapshot)
        self.metrics_address: str | None = None  # as bound (the manifest may say port 0)
        self.dashboard = DashboardService(
            self.clock,
            status=lambda: self.snapshot,
            events=self.events,
            emit=self.emit,
            say=self.log_writer.write_raw if options.log_format == "text" else None,
        )
        self.last_result: Result | None = None
        # The live state of the last full refresh (frozen: the admin threads serialise it for
        # `status --spec` without touching the backend, which only the main thread may).
        self.last_live: LiveState | None = None
        self.next_pass_at = 0.0
        self.pass_count = 0
        self.backend: Backend | None = None
        self.reconciler: Reconciler | None = None
        self.tracker: ManifestTracker | None = None
        self.rollout: Rollout | None = None
        self.watcher: ManifestWatcher | None = None
        self.guarantees: Guarantees | None = None  # once the backend says what it can give
        self._lock_fd: int | None = None
        self._resumed_from: str | None = None  # the state directory --resume found the LKG in
        self._reload_signalled = False
        self._jobs: dict[str, Callable[[Job], None]] = {
            "plan": self._job_plan,
            "apply": self._job_apply,
            "reset": self._job_reset,
            "reload": self._job_reload,
            "restart": self._job_restart,
            "down": self._job_down,
        }

    # -- start-up ----------------------------------------------------------------------------
    def _load(self, source: str | ManifestSet) -> LoadedManifest:
        if isinstance(source, str):
            source = read_manifest_set(source)
            problems = self._untrusted(source)
            if problems:
                raise ManifestError(problems)
        loaded = load_manifest(source, identities=HostIdentities(), strict_identities=True)
        if self.guarantees is not None:
            # Asking for what this controller cannot give is refused like an invalid manifest
            # (reload, apply, plan), unless it runs with --allow-degraded.
            self.guarantees.check(loaded)
        return loaded

    @staticmethod
    def _untrusted(mset: ManifestSet) -> list[Diagnostic]:
        """As root, files or directories another user could change (see ``untrusted``)."""
        uid = os.geteuid()
        return untrusted(mset, uid) if uid == 0 else []

    def run(self) -> int:
        """Run until stopped; returns the exit code."""
        loaded: LoadedManifest | None
        try:
            loaded = self._load(self.options.path)
        except ManifestError as exc:
            if not self.options.resume:
                print(exc.render(), file=sys.stderr)
                print(
                    f"{self.options.path}: not started (the manifest is invalid)", file=sys.stderr
                )
                return 1
            loaded = self._resume(exc)
        if loaded is None:
            return 1
        session = loaded.desired.session
        run_dir = RunDir(
            os.path.abspath(
                self.options.run_dir or (session.run_dir if session else None) or default_run_dir()
            )
        )
        if not self._lock(run_dir):
            return 1
        state_dir = self._open_state(run_dir, session)
        self.tracker = ManifestTracker(state_dir.root)
        self.tracker.accept(loaded)
        backend_name = resolve_backend_name(session.backend.value if session else "auto")
        try:
            # Only the linux backend persists anything of its own (the users it created), and
            # only its exec shim needs to know that a required sandbox may be dropped.
            extra: dict[str, object] = (
                {"state_dir": state_dir.root, "allow_degraded": self.options.allow_degraded}
                if backend_name == "linux"
                else {}
            )
            self.backend = create_backend(
                backend_name, run_dir=run_dir.root, emit=self.emit, clock=self.clock, **extra
            )
        except OrchestratorError as exc:
            print(exc.render(), file=sys.stderr)
            return 1
        self.guarantees = Guarantees(
            self.backend.guarantees(),
            allow_degraded=self.options.allow_degraded,
            emit=self.emit,
            identities=HostIdentities(),
        )
        if self.guarantees.refused(loaded):
            print(self.guarantees.refusal(self.options.path, loaded), file=sys.stderr)
            with contextlib.suppress(Exception):
                self.backend.close()
            return 1
        self.guarantees.announce(loaded)
        if isinstance(self.backend, CapturesOutput):
            self.output.start()
            self.backend.capture_output(self.output)
        self.reconciler = Reconciler(self.backend, self.clock, events=self.events)
        self.rollout = Rollout(
            self.reconciler, self.tracker, self.clock, events=self.events, metrics=self.metrics
        )
        admin_gid = self._admin_gid(session.admin_group if session else None)
        admin = AdminServer(
            run_dir.control,
            admin_gid=admin_gid,
            snapshot=lambda: self.snapshot,
            events=self.events,
            submit=self._submit,
            emit=self.emit,
            spec=self._spec,
            output=self.output,
        )
        admin.start()
        if session is not None and session.metrics.address:
            try:
                self.metrics_address = serve_metrics(self.metrics, session.metrics.address)
                self.emit(
                    "metrics_serving", asked=session.metrics.address, address=self.metrics_address
                )
            except OSError as exc:
                self.emit("metrics_unavailable", address=session.metrics.address, error=str(exc))
        self._configure_dashboard()
        for signum in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGCHLD,
            signal.SIGUSR1,
        ):
            signal.signal(signum, self.signals.handle)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        self._start_watch()
        self.emit(
            "controller_start",
            pid=os.getpid(),
            run_dir=run_dir.root,
            state_dir=state_dir.root,
            backend=backend_name,
            manifest=loaded.desired.manifest_sha256[:12],
            uid=os.geteuid(),
        )
        with open(run_dir.pidfile, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
        try:
            self._loop(wake_read)
        finally:
            signal.set_wakeup_fd(-1)
            self._stop_watch()
            self.emit("controller_stopping")
            with contextlib.suppress(Exception):
                self.backend.shutdown()
            admin.stop()
            self.dashboard.stop()
            self.output.stop()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run_dir.pidfile)
            self.emit("controller_stopped")
            os.close(wake_read)
            os.close(wake_write)
        return 0

    def _resume(self, exc: ManifestError) -> LoadedManifest | None:
        print(exc.render(), file=sys.stderr)
        state_root = self.options.state_dir
        old_root: str | None = None
        if state_root is None or self.options.run_dir is None:
            # The files are invalid, but their session's name and paths may still be readable.
            try:
                hint = session_paths(self.options.path)
            except OrchestratorError as problem:
                if state_root is None:
                    print(
                        f"{self.options.path}: cannot tell the state directory from the files "
                        f"({problem.summary}); give --state-dir",
                        file=sys.stderr,
                    )
                    return None
            else:
                state_root = state_root or hint.state_dir or default_state_dir(hint.name)
                old_root = self.options.run_dir or hint.run_dir
        assert state_root is not None
        state_root = os.path.abspath(state_root)
        tracker = ManifestTracker(state_root)
        lkg = tracker.last_known_good()
        if lkg is None:
            # Kept in the run directory by versions before --state-dir (moved once started).
            old = RunDir(os.path.abspath(old_root or self.options.run_dir or default_run_dir()))
            tracker = ManifestTracker(old.old_state)
            lkg = tracker.last_known_good()
        if lkg is None:
            print(
                f"{self.options.path}: invalid, and no last-known-good manifest in {state_root}",
                file=sys.stderr,
            )
            return None
        problems = self._untrusted(lkg)
        if problems:
            # Whoever can change the copy chooses what a root controller runs, as a manifest's
            # author does: the same owner and mode rule.
            print(ManifestError(problems).render(), file=sys.stderr)
            print(
                f"{tracker.lkg_path}: not resumed: another user could have changed this "
                "last-known-good manifest; make it and its directories root's and not writable "
                "by others (commands above), or fix the manifest files",
                file=sys.stderr,
            )
            return None
        self._resumed_from = state_root
        print(
            f"{self.options.path}: invalid; resuming the last-known-good manifest "
            f"{lkg.sha256[:12]}",
            file=sys.stderr,
        )
        return self._load(lkg)

    def _open_state(self, run_dir: RunDir, session: Session | None) -> StateDir:
        """The state directory (``--state-dir``, the one ``--resume`` read, ``session.stateDir``,
        the default), created, with state moved in from the run directory of older versions.

        Raises:
            OSError: it cannot be created, or old state cannot be moved (a path problem: one line).
        """
        name = session.key.name if session is not None else DEFAULT_SESSION
        chosen = (
            self.options.state_dir
            or self._resumed_from
            or (session.state_dir if session is not None else None)
            or default_state_dir(name)
        )
        state = StateDir(os.path.abspath(chosen))
        state.create()
        moved = move_state(run_dir.old_state, state)
        if moved:
            # Said once, in the log: where the files went is what an operator looks for next.
            self.emit(
                "state_moved", source=run_dir.old_state, target=state.root, files=sorted(moved)
            )
        return state

    def _lock(self, run_dir: RunDir) -> bool:
        os.makedirs(run_dir.root, mode=0o711 if os.geteuid() == 0 else 0o700, exist_ok=True)
        fd = os.open(os.path.join(run_dir.root, "controller.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            print(
                f"a controller is already running at {run_dir.root}; stop it first "
                "(orchestrator down --run-dir ...)",
                file=sys.stderr,
            )
            return False
        self._lock_fd = fd
        return True

    @staticmethod
    def _admin_gid(name: str | None) -> int | None:
        if not name:
            return None
        import grp

        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None

    # -- file watching (hot reload) hooks -----------------------------------------------------
    def _start_watch(self) -> None:
        """Start watching the manifest (see ``orchestrator.watch``); a no-op without it."""
        if not self.options.watch:
            return
        self.watcher = ManifestWatcher(
            self.options.path,
            self._file_hint,
            debounce_s=self.options.debounce_s,
            poll_s=self.options.poll_s,
            emit=self.emit,
        )
        self.watcher.start()

    def _stop_watch(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def _file_hint(self) -> None:
        # Called from the watcher's thread: only set flags and wake the loop.
        self.reload_requested = True
        self.trigger.set()

    # -- the loop ----------------------------------------------------------------------------
    def _submit(self, job: Job) -> None:
        self.jobs.put(job)
        self.trigger.set()

    def _loop(self, wake_read: int) -> None:
        assert self.backend is not None
        while not self.stopping:
            now = self.clock.monotonic()
            self.sd.watchdog(now)
            if now >= self.next_pass_at:
                result = self._pass()
                self._refresh_snapshot()
                if result is not None and result.converged:
                    # After the snapshot, so that a service manager that sees READY=1 and asks for
                    # the status gets the converged state.
                    self.sd.ready(self._sd_status())
            timeout = max(0.0, min(self.next_pass_at - self.clock.monotonic(), 1.0))
            ping_in = self.sd.watchdog_due_in(self.clock.monotonic())
            if ping_in is not None:
                timeout = min(timeout, ping_in)
            woken = self.backend.poll(timeout, [wake_read, self.trigger.fileno()])
            if wake_read in woken:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
            self._handle_signals()
            if self.trigger.fileno() in woken:
                self.trigger.consume()
            if self.reload_requested:
                self.reload_requested = False
                announce, self._reload_signalled = self._reload_signalled, False
                if self._reload(announce=announce):
                    self.next_pass_at = self.clock.monotonic() + 1.0
            self._serve_jobs()
            # Uptimes and counters move without events: keep them current, at most twice a second.
            if self.clock.monotonic() - float(str(self.snapshot.get("_at", 0))) >= 0.5:
                self._refresh_snapshot(observe=False)
            self.dashboard.tick(self.snapshot)

    def _handle_signals(self) -> None:
        while True:
            try:
                signum = self.signals.received.get_nowait()
            except queue.Empty:
                return
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.emit("signal", signal=signal.Signals(signum).name, action="stop")
                self.stopping = True
            elif signum == signal.SIGHUP:
                self.emit("signal", signal="SIGHUP", action="reload")
                self.reload_requested = True
                # systemd's Type=notify-reload waits for RELOADING=1 after its SIGHUP, even when
                # the files did not change.
                self._reload_signalled = True
            elif signum == signal.SIGUSR1:
                # logrotate's postrotate signals the controller: the log files it opened for
                # others (the listener's access log) are opened again.
                self.emit("signal", signal="SIGUSR1", action="reopen logs")
                if isinstance(self.backend, CapturesOutput):
                    self.backend.reopen_logs()

    def _reload(self, force: bool = False, *, announce: bool = False) -> bool:
        """Re-read the manifest files and apply them if they changed; returns whether a new
        manifest was applied. An invalid or unchanged set changes nothing that runs.

        The service manager hears ``RELOADING=1`` before a reload that has work to do (or always,
        with ``announce``) and ``READY=1`` once its outcome is known."""
        if announce:
            self.sd.reloading()
        try:
            return self._read_and_apply(force)
        finally:
            self._configure_dashboard()
            self.sd.reloaded(self._sd_status())

    def _configure_dashboard(self) -> None:
        """Serve the dashboard the desired manifest asks for (moved, re-keyed or stopped)."""
        assert self.tracker is not None
        loaded = self.tracker.desired or self.tracker.running
        session = loaded.desired.session if loaded is not None else None
        self.dashboard.configure(session.dashboard if session is not None else None)

    def _sd_status(self) -> str:
        return (
            f"running manifest {self.tracker.running_sha256[:12] if self.tracker else ''};"
            f" generation {self.reconciler.generation if self.reconciler else 0}"
        )

    def _read_and_apply(self, force: bool) -> bool:
        assert self.tracker is not None
        assert self.rollout is not None
        try:
            mset = read_manifest_set(self.options.path)
        except ManifestError as exc:
            return self.rollout.reject("", exc.diagnostics, "load")
        sha = mset.sha256
        problems = self._untrusted(mset)
        if problems:
            # Keyed by content and permissions: fixing the permissions is a change worth a retry.
            return self.rollout.reject(f"{sha}@{mset.trust_key}", problems, "load")
        self.tracker.forget_untrusted(sha)
        self.tracker.on_disk(sha)
        if not self.tracker.should_try(sha, force=force):
            return False
        self.sd.reloading()
        try:
            loaded = self._load(mset)
        except ManifestError as exc:
            return self.rollout.reject(sha, exc.diagnostics, "load")
        self.emit("manifest_loaded", manifest=sha[:12], files=len(mset.files))
        if self.guarantees is not None:
            self.guarantees.announce(loaded)
        report = self.rollout.apply(loaded, source="reload")
        self.dashboard.plans.note(
            report.result, self.reconciler.generation if self.reconciler else 0
        )
        self._refresh_snapshot()
        return report.exit_code == EXIT_APPLIED

    def _pass(self) -> Result | None:
        """A pass toward the manifest in force (``Rollout.resync``), then the next one's time."""
        assert self.rollout is not None
        result = self.rollout.resync()
        if result is None:
            self.next_pass_at = self.clock.monotonic() + self.options.resync_s
            return None
        self.pass_count += 1
        self.last_result = result
        self.dashboard.plans.note(result, self.reconciler.generation if self.reconciler else 0)
        wait = self.options.resync_s if result.requeue_after_s is None else result.requeue_after_s
        self.next_pass_at = self.clock.monotonic() + min(wait, self.options.resync_s)
        return result

    # -- admin jobs --------------------------------------------------------------------------
    def _serve_jobs(self) -> None:
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            try:
                self._jobs[job.op](job)
            except OrchestratorError as exc:
                job.fail(exc.summary, exc.detail, type(exc).__name__)
            except Exception as exc:  # a bug: answer the client, log it, keep running
                self.emit("job_crashed", op=job.op, traceback=traceback.format_exc())
                job.fail(f"internal error: {exc!r}", "This is a bug; see the controller's log.")

    @staticmethod
    def _posted(job: Job) -> ManifestSet:
        files = job.args.get("files")
        if not isinstance(files, list) or not files:
            raise ManifestError([Diagnostic("no manifest files were sent")])
        return ManifestSet(
            str(job.args.get("path", "")),
            tuple(
                ManifestFile(str(f["name"]), base64.b64decode(str(f["content_b64"])))
                for f in files
                if isinstance(f, dict)
            ),
        )

    def _job_plan(self, job: Job) -> None:
        assert self.reconciler is not None
        loaded = self._load(self._posted(job))
        plan = self.reconciler.plan(loaded.desired)
        job.done(
            {
                "plan": plan_document(plan, manifest_path=str(job.args.get("path", ""))),
                "text": render_text(plan, colour=bool(job.args.get("colour"))),
            }
        )

    def _job_apply(self, job: Job) -> None:
        assert self.rollout is not None
        mset = self._posted(job)
        try:
            loaded = self._load(mset)
        except ManifestError as exc:
            job.fail("the manifest is invalid", exc.render(), "ManifestError")
            return
        if self.guarantees is not None:
            self.guarantees.announce(loaded)
        expected = job.args.get("expected_manifest_sha256")
        check_manifest_unchanged(
            str(expected) if expected else None, loaded.desired.manifest_sha256
        )
        fingerprint = job.args.get("expected_fingerprint")
        cancel = self.events.subscribe(lambda record: job.event(_progress(record)))
        try:
            report = self.rollout.apply(
                loaded,
                source="apply",
                allow_mass_delete=bool(job.args.get("allow_mass_delete")),
                expected_fingerprint=str(fingerprint) if fingerprint else None,
            )
        finally:
            cancel()
        self.dashboard.plans.note(
            report.result, self.reconciler.generation if self.reconciler else 0
        )
        self._configure_dashboard()
        self._refresh_snapshot()
        self.next_pass_at = self.clock.monotonic() + 1.0
        result, message = report.result, report.message
        if result is None:
            job.fail(message.split("\n", 1)[0], message.split("\n", 1)[-1], "PlanError")
            return
        job.done(
            {
                "exit_code": report.exit_code,
                "message": message,
                "reconcile_id": result.reconcile_id,
                "outcomes": [
                    {"step": o.step_id, "status": o.status, "error": o.error}
                    for o in result.outcomes
                ],
                "summary": result.plan.summary(),
            }
        )

    def _job_reset(self, job: Job) -> None:
        assert self.backend is not None
        pool = str(job.args.get("pool", ""))
        was = self.backend.reset(pool)
        self._refresh_snapshot()  # `status` right after `reset` must not show the pool halted
        job.done(
            {
                "pool": pool,
                "was_halted": was,
                "message": f"worker/{pool} re-armed" if was else f"worker/{pool} was not stopped",
            }
        )

    def _job_reload(self, job: Job) -> None:
        assert self.tracker is not None
        force = bool(job.args.get("force"))
        if force:
            # A forced retry is judged afresh: its rejection is recorded (and logged) again.
            self.tracker.rejected = None
        seen: list[dict[str, object]] = []
        cancel = self.events.subscribe(seen.append)
        try:
            accepted = self._reload(force=force)
        finally:
            cancel()
        job.done(reload_answer(accepted, seen, self.tracker, self.options.path))

    def _job_restart(self, job: Job) -> None:
        assert self.backend is not None
        pool = str(job.args.get("pool", ""))
        try:
            done = self.backend.restart(
                pool, lambda event, fields: job.event({"event": event, **fields})
            )
        except KeyError:
            pools = self.snapshot.get("pools")
            names = ", ".join(sorted(pools)) if isinstance(pools, dict) and pools else "none"
            job.fail(f"unknown pool {pool!r} (pools: {names})", "", "UnknownPool")
            return
        finally:
            self._refresh_snapshot(observe=False)
        job.done(
            {
                "pool": done.pool,
                "generation": done.generation,
                "old_pids": list(done.old_pids),
                "new_pids": list(done.new_pids),
            }
        )

    def _job_down(self, job: Job) -> None:
        self.stopping = True
        job.done({"message": "stopping: draining the listener, then the pools"})

    # -- status -------------------------------------------------------------------------------
    def _spec(self) -> dict[str, object] | None:
        """``state`` with ``spec``: the live state a controller-backed plan diffs against (what the
        backend observed, what was last applied, the generation), for ``plan --live``. Read on
        an admin thread from the frozen state of the last refresh; ``None`` before the first."""
        live = self.last_live
        return None if live is None else spec_document(live)

    def _refresh_on_event(self, record: dict[str, object]) -> None:
        if (
            threading.current_thread() is threading.main_thread()
            and self.tracker is not None
            and self.reconciler is not None
        ):
            self._refresh_snapshot(observe=False)

    def _refresh_snapshot(self, *, observe: bool = True) -> None:
        """Rebuild the status document; ``observe`` also re-reads live state for drift (costly)."""
        assert self.tracker is not None
        assert self.reconciler is not None
        assert self.backend is not None
        backend_status = self.backend.status()
        live = self.reconciler.live() if observe else None
        if live is not None:
            self.last_live = live
        self.snapshot = status_document(
            now=self.clock.monotonic(),
            stopping=self.stopping,
            pid=os.getpid(),
            backend=self.backend.name,
            backend_status=backend_status,
            # The manifest in force may have been applied from another path (`apply OTHER`).
            manifest_path=(
                self.tracker.running.source.root if self.tracker.running else self.options.path
            ),
            tracker=self.tracker,
            generation=self.reconciler.generation,
            passes=self.pass_count,
            last_result=self.last_result,
            live=live,
            previous=self.snapshot,
            metrics_address=self.metrics_address,
            dashboard_url=self.dashboard.url,
            degraded=(
                self.guarantees.document(self.tracker.running or self.tracker.desired)
                if self.guarantees is not None
                else []
            ),
        )


def _progress(record: dict[str, object]) -> dict[str, object]:
    """An event as the CLI shows it while it waits."""
    event = str(record.get("event", ""))
    message = record.get("message")
    if not message:
        step = record.get("step")
        if event == "step_start":
            message = f"{step}: started"
        elif event == "step_applied":
            message = f"{step}: done in {record.get('duration_s')}s"
        elif event == "step_failed":
            message = f"{step}: FAILED: {record.get('error')}"
        elif event == "step_skipped":
            message = f"{step}: skipped (upstream failed: {record.get('upstream')})"
        elif event == "process_exit":
            message = f"worker/{record.get('pool')} pid {record.get('pid')} {record.get('exit')}"
        else:
            message = event
    return {**record, "message": message}


def run_daemon(options: DaemonOptions) -> int:
    """Entry point for ``orchestrator run``."""
    return Daemon(options).run()
