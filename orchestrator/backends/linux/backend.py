"""The Linux backend: applies plan steps to this host and observes it.

Owns: ``LinuxBackend``, the composition of queue sockets, the broker, the notify socket, probes, the
shared pool driver (``supervise.driver``) with its Linux launcher, the listener manager, identities
and cgroups. ``apply`` returns only when a step's outcome
is known (a pool's processes are ready, the listener acknowledged its routing table); while it waits
it keeps servicing every other process through ``poll``. ``observe`` reads the system (socket files,
processes, their uids), not only memory, so drift shows in plans and is corrected by the next pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType

from orchestrator.backends.base import Capabilities, Progress, Restarted
from orchestrator.backends.linux.broker import Broker, Grant
from orchestrator.backends.linux.cgroups import CgroupManager, namespace_for
from orchestrator.backends.linux.guarantees import host_guarantees
from orchestrator.backends.linux.host import HostFacts, become_subreaper, read_host_facts
from orchestrator.backends.linux.identity import (
    AUTO_PREFIX,
    LISTENER_USER,
    Identity,
    IdentityManager,
)
from orchestrator.backends.linux.launcher import LinuxLauncher
from orchestrator.backends.linux.listener.message import (
    Limits,
    ListenerConfig,
    QueueConfig,
    RouteConfig,
    SessionConfig,
    Timeouts,
    TlsCertificate,
)
from orchestrator.backends.linux.listener_ctl import Endpoint, ListenerManager, listener_processes
from orchestrator.backends.linux.notify import NotifySocket
from orchestrator.backends.linux.probe import Prober, ProbeResult
from orchestrator.backends.linux.queues import QueueSockets
from orchestrator.backends.linux.rules import CHANGE_RULES
from orchestrator.backends.linux.sandbox import TmpDirs, listener_sandbox
from orchestrator.backends.linux.spawn import worker_environment
from orchestrator.backends.output import OutputSink
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import PermanentBackendError, TemporaryBackendError
from orchestrator.model.desired import (
    PrincipalKind,
    RequestQueue,
    Resource,
    Session,
    State,
    UrlGroup,
    WorkerPool,
)
from orchestrator.model.desired import Timeouts as SessionTimeouts
from orchestrator.model.ids import Key, Kind
from orchestrator.model.live import Fault, LiveState, Repair
from orchestrator.model.urlprefix import HostKind, UrlPrefixError, parse_prefix
from orchestrator.plan.guarantees import HostGuarantees
from orchestrator.plan.steps import Op, Step
from orchestrator.supervise.driver import Generation, Pool, PoolDriver, wait_ready

Emit = Callable[..., None]
ACK_TIMEOUT_S = 10.0
STARTUP = "#startup"  # marks a probe of a pool that is starting (not counted against it)
RETRY_AFTER_S = 5


def _null_emit(event: str, **fields: object) -> None:
    return None


class LinuxBackend:
    """Queues as Unix sockets, pools as supervised processes, the listener as the front end."""

    def __init__(
        self,
        run_dir: str,
        clock: Clock | None = None,
        emit: Emit | None = None,
        host: HostFacts | None = None,
        state_dir: str | None = None,
        allow_degraded: bool = False,
    ) -> None:
        # ``state_dir`` keeps the record of the users this backend created, which must outlive
        # the run directory (a tmpfs emptied at every stop). The controller passes its state
        # directory; a backend built on its own (the contract tests) keeps it in the run dir.
        # ``allow_degraded`` (``run --allow-degraded``): run what the host cannot fully give (a
        # pool's named user as the invoking user, a required sandbox the kernel lacks) instead of
        # refusing it; the controller has listed and logged each dropped guarantee.
        self.allow_degraded = allow_degraded
        self.clock = clock or SystemClock()
        self.emit: Emit = emit or _null_emit
        self.host = host or read_host_facts()
        become_subreaper()
        self.run_dir = os.path.abspath(run_dir)
        self._prepare_run_dir()
        self.cgroups = CgroupManager(self.host, namespace_for(self.run_dir))
        self.identities = IdentityManager(
            self.host, os.path.abspath(state_dir or os.path.join(self.run_dir, "state"))
        )
        self.identities.allow_degraded = allow_degraded
        self.queues = QueueSockets(
            os.path.join(self.run_dir, "queues"), self.host.somaxconn, self.host.uid, self.host.gid
        )
        self.broker = Broker(os.path.join(self.run_dir, "broker.sock"), self.emit)
        self.broker.start()
        self.notify = NotifySocket(os.path.join(self.run_dir, "notify.sock"))
        self.prober = Prober()
        self.launcher = LinuxLauncher(
            self.cgroups,
            self._identity_for,
            lambda queue: self.queues.bound[queue].fileno(),
            self._environment,
            self.host.root,
            TmpDirs(os.path.join(self.run_dir, "tmp"), self.host.root),
        )
        self.driver = PoolDriver(
            self.launcher, self.clock, self.emit, on_change=self._pool_state_changed
        )
        # An address another session serves stops a controller that runs no pool yet (its start).
        self.listener = ListenerManager(
            self.clock,
            self.cgroups,
            self.emit,
            self.host.root,
            run_dir=self.run_dir,
            starting=lambda: not self.driver.pools,
        )
        self.session: Session | None = None
        self.queue_specs: dict[str, RequestQueue] = {}
        self.groups: dict[str, UrlGroup] = {}
        self.pools: dict[str, WorkerPool] = {}
        self.identities_in_use: dict[str, Identity] = {}
        self._starting: dict[str, Identity] = {}  # a pool's identity while a new definition starts
        self.listener_identity: Identity | None = None
        self.notes: list[str] = []
        self._config_dirty = False
        self._startup_probes: dict[str, bool | None] = {}
        self._closed = False

    # -- setup -------------------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        # 0711: others may reach the sockets inside (by their own modes) but not list them.
        mode = 0o711 if self.host.root else 0o700
        os.makedirs(self.run_dir, mode=mode, exist_ok=True)
        os.chmod(self.run_dir, mode)

    @property
    def name(self) -> str:
        return "linux"

    def capabilities(self) -> Capabilities:
        features = {
            "queue_state",
            "verbosity503",
            "queue_length",
            "https",
            "urls_per_group_many",
            "acl",
            "health_probe",
        }
        if self.cgroups.enabled:
            features.add("cgroups")
        if self.host.root:
            features.add("identities")
        notes = (
            ()
            if self.host.root
            else ("not root: every process runs as the invoking user; no cgroups",)
        )
        return Capabilities("linux", frozenset(features), notes, CHANGE_RULES)

    def guarantees(self) -> HostGuarantees:
        return host_guarantees(self.host, self.cgroups.enabled)

    def _identity_for(self, pool: str) -> Identity:
        starting = self._starting.get(pool)
        return starting if starting is not None else self.identities_in_use[pool]

    def _environment(self, spec: WorkerPool, identity: Identity) -> dict[str, str]:
        extra = {e.name: e.value for e in spec.env}
        extra["NOTIFY_SOCKET"] = self.notify.path
        extra.setdefault("ORCHESTRATOR_QUEUE", spec.queue.name)
        extra.setdefault("TMPDIR", self.launcher.tmp_dirs.path(spec.key.name))
        return worker_environment(identity, extra)

    # -- observe -----------------------------------------------------------------------------
    def observe(self) -> LiveState:
        resources: dict[Key, Resource] = {}
        faults: list[Fault] = []
        if self.session is not None:
            resources[self.session.key] = self.session
            live = [p for p in self.listener.processes.values() if p.term_at is None]
            if len(live) < self.listener.processes_wanted:
                faults.append(
                    Fault(
                        key=self.session.key,
                        reason="listener_restarting",
                        detail=f"listener {self.listener.last_exit}; restarting",
                    )
                )
        for name, queue in self.queue_specs.items():
            check = self.queues.check(name)
            if not check.exists or not check.same_inode:
                continue  # gone or replaced: the plan creates it again (drift)
            resources[queue.key] = queue
            if not (check.mode_ok and check.owner_ok):
                faults.append(
                    Fault(
                        key=queue.key,
                        reason="socket_permissions",
                        detail=check.detail,
                        repair=Repair.UPDATE,
                    )
                )
        for group in self.groups.values():
            resources[group.key] = group
        for name, spec in self.pools.items():
            pool = self.driver.pools.get(name)
            if pool is None or pool.active is None:
                continue
            resources[spec.key] = spec
            faults.extend(self._pool_faults(spec, pool))
        return LiveState(
            resources=MappingProxyType(resources), faults=tuple(faults), backend=self.name
        )

    def _pool_faults(self, spec: WorkerPool, pool: Pool) -> list[Fault]:
        faults = self.driver.faults(spec.key.name)
        gen = pool.active
        if gen is None or pool.health.halted:
            return faults
        identity = self.launcher.who(gen.context)[0]
        for inst in gen.instances.values():
            uid = _proc_uid(inst.pid)
            if uid is not None and uid != identity:
                faults.append(
                    Fault(
                        key=spec.key,
                        instance=f"worker/{spec.key.name}[{inst.slot}]",
                        reason="wrong_identity",
                        repair=Repair.REPLACE,
                        detail=f"runs as uid {uid}, expected {identity}",
                    )
                )
        return faults

    # -- apply -------------------------------------------------------------------------------
    def apply(self, step: Step, progress: Progress | None = None) -> None:
        report: Progress = progress or (lambda event, fields: None)
        kind = step.key.kind
        if kind is Kind.SESSION:
            self._apply_session(step, report)
        elif kind is Kind.QUEUE:
            self._apply_queue(step, report)
        elif kind is Kind.URLGROUP:
            self._apply_group(step, report)
        else:
            self._apply_pool(step, report)

    def _apply_session(self, step: Step, report: Progress) -> None:
        if step.op is Op.DELETE:
            self.listener.stop()
            self._wait(lambda: not self.listener.processes, 12.0, report, "listener stopping")
            self.listener.close()
            self.session = None
            return
        assert isinstance(step.after, Session)
        new = step.after
        if step.op is Op.REPLACE and self.session is not None:
            for field in ("run_dir", "state_dir", "backend"):
                if getattr(self.session, field) != getattr(new, field):
                    raise PermanentBackendError(
                        f"session {field.replace('_', ' ')} changed: restart the controller",
                        "The run and state directories and the backend are fixed for a controller's "
                        "lifetime.",
                    )
        identity = self._listener_identity(new)
        if self.listener_identity is None or identity.gid != self.listener_identity.gid:
            self.queues.listener_gid = identity.gid
            self.queues.owner_uid = 0 if self.host.root else self.host.uid
            for name in list(self.queues.bound):
                self.queues.repair(name)
        self.listener_identity = identity
        self.session = new
        self.listener.set_access_log(new.listener.access_log)
        self.listener.start(
            identity,
            listener_processes(new.listener.processes),
            new.listener.open_files,
            listener_sandbox(new.listener.sandbox, self.launcher.allow_degraded),
        )
        self._push(report)

    def _listener_identity(self, session: Session) -> Identity:
        user = session.listener.user
        return (
            self.identities.resolve(user, session.listener.group, (), auto_name=LISTENER_USER)
            if self.host.root
            else self.identities.own()
        )

    def _apply_queue(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op in (Op.DELETE, Op.REPLACE):
            self.queues.delete(name)
            self.queue_specs.pop(name, None)
        if step.op is Op.DELETE:
            self._refresh_grants()
            self._push(report)
            return
        assert isinstance(step.after, RequestQueue)
        spec = step.after
        if name not in self.queues.bound or step.op in (Op.CREATE, Op.REPLACE):
            queue = self.queues.create(name, spec.max_length)
        else:
            queue = self.queues.set_length(name, spec.max_length)
            self.queues.repair(name)
        if queue.clamped_from is not None:
            note = (
                f"queue/{name}: maxLength {queue.clamped_from} clamped to "
                f"net.core.somaxconn = {queue.backlog}"
            )
            self.emit(
                "queue_length_clamped", queue=name, asked=queue.clamped_from, backlog=queue.backlog
            )
            report("note", {"message": note})
        self.queue_specs[name] = spec
        self._refresh_grants()
        self._push(report)

    def _apply_group(self, step: Step, report: Progress) -> None:
        if step.op is Op.DELETE:
            self.groups.pop(step.key.name, None)
        else:
            assert isinstance(step.after, UrlGroup)
            self.groups[step.key.name] = step.after
        errors = self.listener.ensure_endpoints(self._endpoints())
        if errors:
            if step.op is not Op.DELETE:
                self.groups.pop(step.key.name, None)
                self.listener.ensure_endpoints(self._endpoints())
            raise TemporaryBackendError(
                errors[0], "Free the port or change the URL prefix.", delay_s=5.0
            )
        self._push(report)

    def _apply_pool(self, step: Step, report: Progress) -> None:
        name = step.key.name
        if step.op is Op.DELETE:
            self._delete_pool(name, report)
            return
        assert isinstance(step.after, WorkerPool)
        spec = step.after
        if spec.queue.name not in self.queues.bound:
            raise TemporaryBackendError(f"queue {spec.queue.name} does not exist yet")
        if step.op is Op.UPDATE and name in self.driver.pools:
            self.pools[name] = spec
            gen = self.driver.update_in_place(name, spec)
            if gen is not None:
                self._wait_ready(self.driver.pools[name], gen, report)
            self._refresh_grants()
            self._push(report)
            return
        identity = self.identities.resolve(
            spec.user, spec.group, spec.groups, auto_name=AUTO_PREFIX + name
        )
        self._starting[name] = identity
        try:
            self.driver.roll_over(
                name,
                spec,
                lambda pool, gen: self._wait_ready(pool, gen, report),
                keep_lone_failure=True,
            )
        except PermanentBackendError:
            # The new processes failed and the old ones keep serving.
            self._config_dirty = True
            raise
        except TemporaryBackendError:
            # A new pool stays registered (restarting, or stopped by rapid-fail protection) so that
            # its URLs answer 503 and status says why, until its definition changes or a reset.
            self.pools[name] = spec
            self.identities_in_use[name] = identity
            self._refresh_grants()
            self._config_dirty = True
            raise
        finally:
            self._starting.pop(name, None)
        self.pools[name] = spec
        self.identities_in_use[name] = identity
        self._refresh_grants()
        self._push(report)

    def _wait_ready(self, pool: Pool, gen: Generation, report: Progress) -> None:
        name, spec = pool.name, gen.spec
        self._startup_probes.pop(name, None)
        wait_ready(
            pool,
            gen,
            report,
            self.poll,
            self.clock,
            also=lambda: self._startup_probe_ok(name, spec),
        )
        self._startup_probes.pop(name, None)

    def _startup_probe_ok(self, name: str, spec: WorkerPool) -> bool:
        """The health probe of a starting pool passed (probes run on the prober's threads; a
        failure during start-up is retried, it does not count against the pool)."""
        if spec.health.path is None:
            return True
        result = self._startup_probes.get(name)
        if result is True:
            return True
        if result is None and f"{name}{STARTUP}" not in self.prober.pending:
            self._startup_probes[name] = None
            self.prober.submit(
                f"{name}{STARTUP}",
                self.queues.path(spec.queue.name),
                spec.health.path,
                min(spec.health.timeout_s, 2.0),
            )
        elif result is False:
            self._startup_probes[name] = None  # try again on the next turn
        return False

    def _delete_pool(self, name: str, report: Progress) -> None:
        spec = self.pools.pop(name, None)
        if spec is not None:
            self._drain_queue(spec.queue.name, spec.shutdown_time_limit_s, report)
        self.driver.remove_pool(name, "removed from the manifest")
        limit = spec.shutdown_time_limit_s + 5.0 if spec else 10.0
        self._wait(lambda: self.driver.stopped(name), limit, report, f"worker/{name} stopping")
        self.launcher.tmp_dirs.remove(name)
        identity = self.identities_in_use.pop(name, None)
        if identity is not None and identity.user == AUTO_PREFIX + name:
            in_use = {i.user for i in self.identities_in_use.values()}
            if self.identities.release(identity.user, in_use):
                self.emit("user_deleted", user=identity.user)
        self._refresh_grants()
        self._push(report)

    def _drain_queue(self, queue: str, limit_s: float, report: Progress) -> None:
        """Wait until the listener has no request in flight for ``queue`` (bounded)."""
        if any(p.queue.name == queue for n, p in self.pools.items()):
            return  # another pool still serves the queue
        deadline = self.clock.monotonic() + limit_s
        while self.clock.monotonic() < deadline:
            if _inflight(self.listener.stats(), queue) == 0:
                return
            report("drain_wait", {"message": f"queue/{queue}: waiting for requests in flight"})
            self.poll(0.1)

    def _wait(self, done: Callable[[], bool], limit_s: float, report: Progress, what: str) -> None:
        deadline = self.clock.monotonic() + limit_s
        while not done():
            if self.clock.monotonic() >= deadline:
                raise TemporaryBackendError(f"{what}: not done within {limit_s:g}s")
            self.poll(0.05)

    # -- listener config ---------------------------------------------------------------------
    def _endpoints(self) -> set[Endpoint]:
        wildcard: set[tuple[str, int]] = set()
        specific: set[Endpoint] = set()
        for group in self.groups.values():
            for url in group.urls:
                try:
                    prefix = parse_prefix(url)
                except UrlPrefixError:
                    continue
                if prefix.host_kind is HostKind.IP:
                    specific.add(Endpoint(prefix.scheme, prefix.host.strip("[]"), prefix.port))
                else:
                    wildcard.add((prefix.scheme, prefix.port))
        # One wildcard socket serves every address of its port; a specific bind would collide.
        # Port 0 is not one port: each scheme's wildcard gets a free port of its own, and a
        # specific address on port 0 yields only to the wildcard of its own scheme.
        wild_ports = {port for _, port in wildcard if port != 0}
        out = {
            e
            for e in specific
            if e.port not in wild_ports and (e.port != 0 or (e.scheme, 0) not in wildcard)
        }
        out |= {Endpoint(scheme, "0.0.0.0", port) for scheme, port in wildcard}
        return out

    def _config(self) -> ListenerConfig:
        """The listener's configuration (version and sockets are the listener manager's)."""
        session = self.session
        queues = []
        for name, spec in sorted(self.queue_specs.items()):
            # The driver's pools, not only the applied ones: a pool halted while its create
            # step still waits for it must answer 503 as soon as `status` says it is halted.
            serving = [p for p in self.driver.pools.values() if p.spec.queue.name == name]
            halted = [r for r in serving if r.health.halted]
            state, reason = "enabled", ""
            if spec.state is State.DISABLED:
                state, reason = "disabled", "Disabled"
            elif serving and len(halted) == len(serving):
                state, reason = "offline", "AppOffline"
            queues.append(
                QueueConfig(
                    name=name,
                    path=self.queues.path(name),
                    state=state,
                    reason=reason,
                    verbosity503=str(spec.verbosity503),
                    retry_after=RETRY_AFTER_S,
                )
            )
        timeouts = _timeouts(session.timeouts) if session else Timeouts()
        routes = []
        for name, group in sorted(self.groups.items()):
            overrides = {
                f.name: getattr(group.timeouts, f.name)
                for f in dataclasses.fields(group.timeouts)
                if getattr(group.timeouts, f.name) is not None
            }
            for url in group.urls:
                routes.append(
                    RouteConfig(
                        prefix=url,
                        group=name,
                        queue=group.queue.name if group.queue else None,
                        state=str(group.state),
                        max_connections=group.max_connections,
                        timeouts=dataclasses.replace(timeouts, **overrides),
                    )
                )
        if session is None:
            return ListenerConfig(routes=tuple(routes), queues=tuple(queues))
        tls = []
        for binding in session.tls:
            try:
                with open(binding.cert_file, encoding="ascii") as fh:
                    cert = fh.read()
                with open(binding.key_file, encoding="ascii") as fh:
                    key = fh.read()
            except OSError as exc:
                raise PermanentBackendError(
                    f"cannot read the TLS files for {binding.address}: {exc.strerror}",
                    f"{exc.filename}",
                ) from exc
            tls.append(TlsCertificate(address=binding.address, cert_pem=cert, key_pem=key))
        limits = session.limits
        return ListenerConfig(
            session=SessionConfig(
                name=session.key.name,
                limits=Limits(
                    max_connections=limits.max_connections,
                    max_request_header_bytes=limits.max_request_header_bytes,
                    max_url_bytes=limits.max_url_bytes,
                    max_body_bytes=limits.max_body_bytes,
                    max_header_fields=limits.max_header_fields,
                ),
                timeouts=timeouts,
                tls=tuple(tls),
            ),
            routes=tuple(routes),
            queues=tuple(queues),
        )

    def _push(self, report: Progress) -> None:
        if self.session is None:
            return
        version = self.listener.push(self._config())
        self._config_dirty = False
        self._wait(
            lambda: self.listener.acked(version), ACK_TIMEOUT_S, report, "listener routing table"
        )

    def _pool_state_changed(self, pool: Pool) -> None:
        # Rapid-fail tripped or re-armed: the listener must answer 503 (or serve again) at once,
        # so the routing table goes out now rather than at the end of this poll.
        if self.session is not None:
            self.listener.push(self._config())
            self._config_dirty = False
        else:
            self._config_dirty = True

    def _refresh_grants(self) -> None:
        grants: dict[str, Grant] = {}
        for name, spec in self.queue_specs.items():
            if name not in self.queues.bound:
                continue
            uids: set[int] = set()
            gids: set[int] = set()
            if not self.host.root:
                uids.add(self.host.uid)
            elif spec.acl is None:
                for pool, ident in self.identities_in_use.items():
                    if pool in self.pools and self.pools[pool].queue.name == name:
                        uids.add(ident.uid)
            else:
                import grp
                import pwd

                for principal in spec.acl:
                    with contextlib.suppress(KeyError):
                        if principal.kind is PrincipalKind.USER:
                            uids.add(pwd.getpwnam(principal.name).pw_uid)
                        elif principal.kind is PrincipalKind.GROUP:
                            gids.add(grp.getgrnam(principal.name).gr_gid)
            grants[name] = Grant(self.queues.bound[name].fileno(), frozenset(uids), frozenset(gids))
        self.broker.set_grants(grants)

    # -- the event pump ----------------------------------------------------------------------
    def poll(self, timeout_s: float, wake_fds: Iterable[int] = ()) -> set[int]:
        """Wait up to ``timeout_s`` for anything to do, do it, and return the ready ``wake_fds``.

        Services process exits, readiness reports, probe results and the listener's channel;
        restarts what is due; escalates stops; schedules health probes and periodic recycles.
        """
        handlers: dict[int, Callable[[], None]] = {
            self.notify.fileno(): self._on_notify,
            self.prober.fileno(): lambda: self.prober.drain(self._on_probe),
        }
        for pidfd in self.launcher.pidfds():
            handlers[pidfd] = self._reap
        handlers.update(self.listener.fds(self._reap))
        wake = set(wake_fds)
        poller = select.poll()
        for fd in [*handlers, *wake]:
            poller.register(fd, select.POLLIN)
        now = self.clock.monotonic()
        due = min(self.driver.next_deadline(), self.listener.next_deadline())
        wait = max(0.0, min(timeout_s, due - now))
        woken: set[int] = set()
        for fd, _ in poller.poll(wait * 1000):
            if fd in handlers:
                handlers[fd]()
            elif fd in wake:
                woken.add(fd)
        self._reap()
        self.driver.tick()
        self.listener.tick()
        self._schedule_probes()
        wall = time.localtime(self.clock.wall())
        self.driver.recycles(wall.tm_hour * 60 + wall.tm_min)
        if self._config_dirty and self.session is not None:
            self.listener.push(self._config())
            self._config_dirty = False
        return woken

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exit_status = self.launcher.reaped(pid, status)
            if exit_status is not None:
                self.driver.exited(pid, exit_status)
            elif self.listener.owns_pid(pid):
                self.listener.handle_status(pid, status)
            # else: an orphan re-parented to us (we are the subreaper); reaped, never counted

    def _on_notify(self) -> None:
        for pid, fields in self.notify.read():
            if fields.get("READY") == "1":
                self.driver.notified_ready(pid)

    def _schedule_probes(self) -> None:
        for pool in self.driver.due_probes():
            spec = pool.spec
            assert spec.health.path is not None
            self.prober.submit(
                pool.name,
                self.queues.path(spec.queue.name),
                spec.health.path,
                spec.health.timeout_s,
            )

    def _on_probe(self, result: ProbeResult) -> None:
        if result.pool.endswith(STARTUP):
            self._startup_probes[result.pool.removesuffix(STARTUP)] = result.ok
            return
        self.driver.probe_result(result.pool, result.ok, result.detail)

    # -- captured output (backends.output.CapturesOutput) --------------------------------------
    def capture_output(self, sink: OutputSink) -> None:
        """Workers and listener processes started from now on write to pipes read by ``sink``."""
        self.launcher.output = sink
        self.listener.output = sink

    def reopen_logs(self) -> None:
        """SIGUSR1: the access log file is opened again and handed to the listener processes."""
        self.listener.reopen_access_log()

    # -- operator actions --------------------------------------------------------------------
    def reset(self, pool: str) -> bool:
        """Re-arm a pool stopped by rapid-fail protection."""
        was = self.driver.reset(pool)
        self._config_dirty = True
        return was

    def restart(self, pool: str, report: Progress | None = None) -> Restarted:
        """Recycle ``pool`` on demand, create-first: the path a changed definition takes."""
        if pool not in self.pools:
            raise KeyError(pool)
        progress: Progress = report or (lambda event, fields: None)
        try:
            old, gen = self.driver.restart(
                pool,
                lambda p, g: self._wait_ready(p, g, progress),
                keep_lone_failure=True,
            )
        except (TemporaryBackendError, PermanentBackendError):
            # The front end must hear of a pool that now answers 503 (or serves again).
            self._config_dirty = True
            raise
        self._config_dirty = True
        return Restarted(pool, gen.number, old, tuple(sorted(gen.instances)))

    def status(self) -> dict[str, object]:
        """What ``orchestrator status`` shows about this backend."""
        workers, pools = self.driver.status()
        stats = self.listener.stats()
        listener = {
            "pid": min(self.listener.processes, default=None),
            "pids": sorted(self.listener.processes),
            "uid": self.listener_identity.uid if self.listener_identity else None,
            "user": self.listener_identity.user if self.listener_identity else None,
            # As bound: a port 0 in the manifest shows the port the kernel chose.
            "addresses": self.listener.addresses(),
            "endpoints": self.listener.endpoints(),
            "restarts": self.listener.restarts,
            # The hot path the processes run (compiled or python), as they report it.
            "core": next((str(p["core"]) for p in stats if p.get("core")), None),
            "sandbox": self.listener.confinement(),
            "stats": stats,
        }
        queues = []
        for name, spec in sorted(self.queue_specs.items()):
            bound = self.queues.bound.get(name)
            queues.append(
                {
                    "name": name,
                    "state": str(spec.state),
                    "path": self.queues.path(name),
                    "backlog": bound.backlog if bound else None,
                    "waiting": bound.waiting() if bound else None,
                    "clamped_from": bound.clamped_from if bound else None,
                }
            )
        return {
            "workers": workers,
            "pools": pools,
            "listener": listener,
            "queues": queues,
            "cgroups": self.cgroups.enabled,
            "root": self.host.root,
        }

    def shutdown(self, report: Progress | None = None) -> None:
        """Graceful stop: the listener stops accepting and finishes what is in flight (the workers
        still run), then the pools stop (SIGTERM, ``shutdownTimeLimit``, kill), then the sockets go."""
        progress: Progress = report or (lambda e, f: None)
        grace = max((p.shutdown_time_limit_s for p in self.pools.values()), default=5.0)
        self.listener.stop()
        with contextlib.suppress(TemporaryBackendError):
            self._wait(
                lambda: not self.listener.processes,
                min(grace, 30.0) + 1.0,
                progress,
                "listener draining",
            )
        for name in list(self.driver.pools):
            self.driver.remove_pool(name, "controller stopping")
        with contextlib.suppress(TemporaryBackendError):
            self._wait(lambda: not self.driver.pools, grace + 2.0, progress, "pools stopping")
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Kill everything at once (the graceful path is shutdown), wait for each, forget them.
        instances = self.driver.instances()
        for inst in instances:
            self.launcher.kill(inst.process)
        for inst in instances:
            self.launcher.reap_now(inst.process)
        self.driver.forget()
        self.launcher.tmp_dirs.remove_all()
        self.listener.close()
        self.queues.close_all()
        self.broker.stop()
        self.notify.close()
        self.prober.close()
        self.cgroups.remove_namespace()


def _timeouts(timeouts: SessionTimeouts) -> Timeouts:
    """The session's timers as the listener's message carries them."""
    return Timeouts(
        entity_body_s=timeouts.entity_body_s,
        drain_entity_body_s=timeouts.drain_entity_body_s,
        request_queue_s=timeouts.request_queue_s,
        idle_connection_s=timeouts.idle_connection_s,
        header_wait_s=timeouts.header_wait_s,
        min_send_rate=timeouts.min_send_rate,
    )


def _inflight(stats: list[dict[str, object]], queue: str) -> int:
    """Requests in flight to ``queue`` across the listener processes' latest counters."""
    total = 0
    for entry in stats:
        queues = entry.get("queues")
        record = queues.get(queue) if isinstance(queues, dict) else None
        if isinstance(record, dict):
            total += int(str(record.get("inflight", 0)))
    return total


def _proc_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Uid:"):
                    return int(line.split()[2])  # effective uid
    except OSError:
        return None
    return None
