"""The Linux backend: applies plan steps to this host and observes it.

Owns: ``LinuxBackend``, the composition of queue sockets, the broker, the notify socket, probes, the
supervisor, the listener manager, identities and cgroups. ``apply`` returns only when a step's outcome
is known (a pool's processes are ready, the listener acknowledged its routing table); while it waits
it keeps servicing every other process through ``poll``. ``observe`` reads the system (socket files,
processes, their uids), not only memory, so drift shows in plans and is corrected by the next pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType

from orchestrator.backends.base import Capabilities, Progress
from orchestrator.backends.linux.broker import Broker, Grant
from orchestrator.backends.linux.cgroups import CgroupManager
from orchestrator.backends.linux.host import HostFacts, become_subreaper, read_host_facts
from orchestrator.backends.linux.identity import (
    AUTO_PREFIX,
    LISTENER_USER,
    Identity,
    IdentityManager,
)
from orchestrator.backends.linux.listener_ctl import Endpoint, ListenerManager, listener_processes
from orchestrator.backends.linux.notify import NotifySocket
from orchestrator.backends.linux.probe import Prober, ProbeResult
from orchestrator.backends.linux.queues import QueueSockets
from orchestrator.backends.linux.spawn import worker_environment
from orchestrator.backends.linux.supervisor import Generation, PoolRunner, Supervisor
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
from orchestrator.model.ids import Key, Kind
from orchestrator.model.live import Fault, LiveState, Repair
from orchestrator.model.serialize import to_data
from orchestrator.model.urlprefix import HostKind, UrlPrefixError, parse_prefix
from orchestrator.plan.steps import Op, Step
from orchestrator.supervise import core

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
    ) -> None:
        self.clock = clock or SystemClock()
        self.emit: Emit = emit or _null_emit
        self.host = host or read_host_facts()
        become_subreaper()
        self.run_dir = os.path.abspath(run_dir)
        self._prepare_run_dir()
        namespace = "orch-" + hashlib.sha256(self.run_dir.encode()).hexdigest()[:8]
        self.cgroups = CgroupManager(self.host, namespace)
        self.identities = IdentityManager(self.host, os.path.join(self.run_dir, "state"))
        self.queues = QueueSockets(
            os.path.join(self.run_dir, "queues"), self.host.somaxconn, self.host.uid, self.host.gid
        )
        self.broker = Broker(os.path.join(self.run_dir, "broker.sock"), self.emit)
        self.broker.start()
        self.notify = NotifySocket(os.path.join(self.run_dir, "notify.sock"))
        self.prober = Prober()
        self.supervisor = Supervisor(
            self.clock,
            self.cgroups,
            self.emit,
            self._environment,
            self.host.root,
            self._pool_state_changed,
        )
        self.listener = ListenerManager(self.clock, self.cgroups, self.emit, self.host.root)
        self.session: Session | None = None
        self.queue_specs: dict[str, RequestQueue] = {}
        self.groups: dict[str, UrlGroup] = {}
        self.pools: dict[str, WorkerPool] = {}
        self.identities_in_use: dict[str, Identity] = {}
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
        os.makedirs(os.path.join(self.run_dir, "state"), mode=0o700, exist_ok=True)

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
        return Capabilities("linux", frozenset(features), notes)

    def _environment(self, spec: WorkerPool, identity: Identity) -> dict[str, str]:
        extra = {e.name: e.value for e in spec.env}
        extra["NOTIFY_SOCKET"] = self.notify.path
        extra.setdefault("ORCHESTRATOR_QUEUE", spec.queue.name)
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
            runner = self.supervisor.pools.get(name)
            if runner is None or runner.active is None:
                continue
            resources[spec.key] = spec
            faults.extend(self._pool_faults(spec, runner))
        return LiveState(
            resources=MappingProxyType(resources), faults=tuple(faults), backend=self.name
        )

    def _pool_faults(self, spec: WorkerPool, runner: PoolRunner) -> list[Fault]:
        faults = []
        gen = runner.active
        assert gen is not None
        if runner.health.halted:
            faults.append(
                Fault(
                    key=spec.key,
                    reason="rapid_fail",
                    detail=runner.health.halted + f"; run: orchestrator reset {spec.key.name}",
                )
            )
            return faults
        running = {i.slot for i in gen.instances.values() if i.term_at is None}
        for slot in range(gen.policy.processes):
            if slot not in running:
                faults.append(
                    Fault(
                        key=spec.key,
                        instance=f"worker/{spec.key.name}[{slot}]",
                        reason="process_exited",
                        detail=f"{runner.health.last_exit or 'not running'}; restarting",
                    )
                )
        for inst in gen.instances.values():
            uid = _proc_uid(inst.pid)
            if uid is not None and uid != gen.identity.uid:
                faults.append(
                    Fault(
                        key=spec.key,
                        instance=f"worker/{spec.key.name}[{inst.slot}]",
                        reason="wrong_identity",
                        repair=Repair.REPLACE,
                        detail=f"runs as uid {uid}, expected {gen.identity.uid}",
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
            for field in ("run_dir", "backend"):
                if getattr(self.session, field) != getattr(new, field):
                    raise PermanentBackendError(
                        f"session {field.replace('_', ' ')} changed: restart the controller",
                        "The run directory and the backend are fixed for a controller's lifetime.",
                    )
        identity = self._listener_identity(new)
        if self.listener_identity is None or identity.gid != self.listener_identity.gid:
            self.queues.listener_gid = identity.gid
            self.queues.owner_uid = 0 if self.host.root else self.host.uid
            for name in list(self.queues.bound):
                self.queues.repair(name)
        self.listener_identity = identity
        self.session = new
        self.listener.start(
            identity, listener_processes(new.listener.processes), new.listener.open_files
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
        if step.op is Op.UPDATE and name in self.supervisor.pools:
            self.pools[name] = spec
            self.supervisor.reset(name)
            self.supervisor.update_in_place(name, spec)
            gen = self.supervisor.pools[name].active
            if gen is not None:
                self._wait_ready(name, gen, spec, report)
            self._refresh_grants()
            self._push(report)
            return
        identity = self.identities.resolve(
            spec.user, spec.group, spec.groups, auto_name=AUTO_PREFIX + name
        )
        runner = self.supervisor.pools.get(name)
        if runner is not None and runner.health.halted:
            # Stopped by rapid-fail protection, it serves nothing: its generations go before the
            # re-arm, or the reset would start the failing definition again next to the new one.
            for previous in [g for g in runner.generations if not g.stopping]:
                self.supervisor.stop_generation(runner, previous, "replaced while stopped")
        self.supervisor.reset(name)
        old = [g for g in runner.generations if not g.stopping] if runner else []
        queue_name = spec.queue.name
        gen = self.supervisor.start_generation(
            name, spec, identity, lambda: self.queues.bound[queue_name].fileno()
        )
        try:
            self._wait_ready(name, gen, spec, report)
        except (TemporaryBackendError, PermanentBackendError) as exc:
            runner = self.supervisor.pools[name]
            if old:
                # Overlapped recycle failed: drop the new processes, the old ones keep serving; the
                # new ones' crashes must not leave the pool stopped by rapid-fail protection.
                self.supervisor.stop_generation(runner, gen, "did not become ready")
                self.supervisor.reset(name)
                self._config_dirty = True
                raise PermanentBackendError(
                    f"worker/{name}: the new processes did not become healthy; the old ones keep "
                    "serving",
                    exc.summary + ". Fix the pool's definition, or run: orchestrator reset " + name,
                ) from exc
            # A new pool stays registered (restarting, or stopped by rapid-fail protection) so that
            # its URLs answer 503 and status says why, until its definition changes or a reset.
            self.pools[name] = spec
            self.identities_in_use[name] = identity
            self._refresh_grants()
            self._config_dirty = True
            raise
        self.pools[name] = spec
        self.identities_in_use[name] = identity
        runner = self.supervisor.pools[name]
        for previous in old:
            self.supervisor.stop_generation(runner, previous, "replaced by a new definition")
        self._refresh_grants()
        self._push(report)

    def _wait_ready(self, name: str, gen: Generation, spec: WorkerPool, report: Progress) -> None:
        runner = self.supervisor.pools[name]
        deadline = self.clock.monotonic() + spec.startup_time_limit_s
        last = ""
        self._startup_probes.pop(name, None)
        while True:
            if gen.ready() and not runner.health.halted and self._startup_probe_ok(name, spec):
                gen.ever_ready = True
                self._startup_probes.pop(name, None)
                return
            if runner.health.halted:
                raise TemporaryBackendError(
                    f"worker/{name} was stopped: {runner.health.halted}",
                    "Fix the pool, then change its definition or run: orchestrator reset " + name,
                    delay_s=spec.rapid_fail.interval_s,
                )
            now = self.clock.monotonic()
            if now >= deadline:
                raise TemporaryBackendError(
                    f"worker/{name} did not become healthy within {spec.startup_time_limit_s:g}s",
                    f"Last exit: {runner.health.last_exit or 'none'}.",
                )
            ready = sum(1 for i in gen.instances.values() if i.ready)
            message = (
                f"worker/{name}: {ready}/{gen.policy.processes} processes ready, "
                f"waiting up to {deadline - now:.0f}s"
            )
            if message != last:
                report(
                    "health_wait",
                    {
                        "message": message,
                        "pool": name,
                        "ready": ready,
                        "wanted": gen.policy.processes,
                    },
                )
                last = message
            self.poll(0.05)

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
        self.supervisor.remove_pool(name, "removed from the manifest")
        limit = spec.shutdown_time_limit_s + 5.0 if spec else 10.0
        self._wait(lambda: self.supervisor.stopped(name), limit, report, f"worker/{name} stopping")
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
        wildcard: dict[int, str] = {}
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
                    wildcard[prefix.port] = prefix.scheme
        # One wildcard socket serves every address of its port; a specific bind would collide.
        out = {e for e in specific if e.port not in wildcard}
        out |= {Endpoint(scheme, "0.0.0.0", port) for port, scheme in wildcard.items()}
        return out

    def _config(self) -> dict[str, object]:
        session = self.session
        queues: dict[str, object] = {}
        for name, spec in self.queue_specs.items():
            # The supervisor's pools, not only the applied ones: a pool halted while its create
            # step still waits for it must answer 503 as soon as `status` says it is halted.
            serving = [r for r in self.supervisor.pools.values() if r.queue_name == name]
            halted = [r for r in serving if r.health.halted]
            state, reason = "enabled", ""
            if spec.state is State.DISABLED:
                state, reason = "disabled", "Disabled"
            elif serving and len(halted) == len(serving):
                state, reason = "offline", "AppOffline"
            queues[name] = {
                "path": self.queues.path(name),
                "state": state,
                "reason": reason,
                "verbosity503": str(spec.verbosity503),
                "retry_after": RETRY_AFTER_S,
            }
        routes = []
        for name, group in sorted(self.groups.items()):
            timeouts = to_data(session.timeouts) if session else {}
            overrides = {k: v for k, v in to_data(group.timeouts).items() if v is not None}
            for url in group.urls:
                routes.append(
                    {
                        "prefix": url,
                        "group": name,
                        "queue": group.queue.name if group.queue else None,
                        "state": str(group.state),
                        "max_connections": group.max_connections,
                        "timeouts": {**timeouts, **overrides},
                    }
                )
        tls = []
        if session is not None:
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
                tls.append({"address": binding.address, "cert_pem": cert, "key_pem": key})
        return {
            "session": {
                "name": session.key.name if session else "",
                "limits": to_data(session.limits) if session else {},
                "timeouts": to_data(session.timeouts) if session else {},
                "tls": tls,
            },
            "routes": routes,
            "queues": queues,
        }

    def _push(self, report: Progress) -> None:
        if self.session is None:
            return
        version = self.listener.push(self._config())
        self._config_dirty = False
        self._wait(
            lambda: self.listener.acked(version), ACK_TIMEOUT_S, report, "listener routing table"
        )

    def _pool_state_changed(self, pool: str) -> None:
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
        for pidfd in self.supervisor.pidfds():
            handlers[pidfd] = self._reap
        handlers.update(self.listener.fds(self._reap))
        wake = set(wake_fds)
        poller = select.poll()
        for fd in [*handlers, *wake]:
            poller.register(fd, select.POLLIN)
        now = self.clock.monotonic()
        due = min(
            self.supervisor.next_deadline(), self.listener.next_deadline(), self._next_probe()
        )
        wait = max(0.0, min(timeout_s, due - now))
        woken: set[int] = set()
        for fd, _ in poller.poll(wait * 1000):
            if fd in handlers:
                handlers[fd]()
            elif fd in wake:
                woken.add(fd)
        self._reap()
        self.supervisor.tick()
        self.listener.tick()
        self._schedule_probes()
        self._recycles()
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
            if pid in self.supervisor.by_pid:
                self.supervisor.handle_status(pid, status)
            elif self.listener.owns_pid(pid):
                self.listener.handle_status(pid, status)
            # else: an orphan re-parented to us (we are the subreaper); reaped, never counted

    def _on_notify(self) -> None:
        for pid, fields in self.notify.read():
            self.supervisor.on_notify(pid, fields)

    def _next_probe(self) -> float:
        times = [
            r.next_probe_at
            for n, r in self.supervisor.pools.items()
            if n in self.pools and self.pools[n].health.path
        ]
        return min(times, default=self.clock.monotonic() + 3600)

    def _schedule_probes(self) -> None:
        now = self.clock.monotonic()
        for name, runner in self.supervisor.pools.items():
            spec = self.pools.get(name)
            if spec is None or spec.health.path is None or runner.health.halted:
                continue
            gen = runner.serving
            if gen is None or not gen.ever_ready or now < runner.next_probe_at:
                continue
            runner.next_probe_at = now + spec.health.interval_s
            self.prober.submit(
                name, self.queues.path(spec.queue.name), spec.health.path, spec.health.timeout_s
            )

    def _on_probe(self, result: ProbeResult) -> None:
        if result.pool.endswith(STARTUP):
            self._startup_probes[result.pool.removesuffix(STARTUP)] = result.ok
            return
        runner = self.supervisor.pools.get(result.pool)
        spec = self.pools.get(result.pool)
        if runner is None or spec is None or runner.active is None:
            return
        runner.probe, replace = core.probe_verdict(
            runner.probe, result.ok, result.detail, self.clock.monotonic(), runner.active.policy
        )
        if not result.ok:
            self.emit(
                "probe_failed",
                pool=result.pool,
                detail=result.detail,
                failures=runner.probe.failures,
            )
        if replace and not runner.recycling:
            self.emit("pool_unhealthy", pool=result.pool, detail=result.detail)
            self._start_recycle(result.pool, spec, f"unhealthy: {result.detail}")

    def _start_recycle(self, name: str, spec: WorkerPool, reason: str) -> None:
        runner = self.supervisor.pools[name]
        identity = self.identities_in_use.get(name)
        if identity is None:
            return
        runner.recycling = True
        queue_name = spec.queue.name
        self.emit("recycle_start", pool=name, reason=reason)
        self.supervisor.start_generation(
            name, spec, identity, lambda: self.queues.bound[queue_name].fileno()
        )

    def _recycles(self) -> None:
        now = self.clock.monotonic()
        wall = time.localtime(self.clock.wall())
        minute = wall.tm_hour * 60 + wall.tm_min
        for name, runner in list(self.supervisor.pools.items()):
            spec = self.pools.get(name)
            if spec is None:
                continue
            active = runner.active
            if runner.recycling and active is not None:
                older = [g for g in runner.generations if g is not active and not g.stopping]
                if active.ready():
                    active.ever_ready = True
                    for gen in older:
                        self.supervisor.stop_generation(runner, gen, "recycled")
                    runner.recycling = False
                    self.emit("recycle_done", pool=name, generation=active.number)
                elif now - active.started_at > spec.startup_time_limit_s or runner.health.halted:
                    self.supervisor.stop_generation(runner, active, "recycle did not become ready")
                    runner.recycling = False
                    self.emit("recycle_failed", pool=name)
                continue
            serving = runner.serving
            if serving is None or runner.health.halted:
                continue
            before = runner.last_minute if runner.last_minute is not None else minute
            runner.last_minute = minute
            reason = core.recycle_reason(
                serving.started_at,
                now,
                [i.as_child() for i in serving.instances.values()],
                serving.policy,
                wall_minutes_before=before,
                wall_minutes_now=minute,
            )
            if reason:
                self._start_recycle(name, spec, reason)

    # -- operator actions --------------------------------------------------------------------
    def reset(self, pool: str) -> bool:
        """Re-arm a pool stopped by rapid-fail protection."""
        was = self.supervisor.reset(pool)
        self._config_dirty = True
        return was

    def status(self) -> dict[str, object]:
        """What ``orchestrator status`` shows about this backend."""
        now = self.clock.monotonic()
        workers = []
        for name, runner in sorted(self.supervisor.pools.items()):
            for gen in runner.generations:
                for inst in sorted(gen.instances.values(), key=lambda i: i.slot):
                    workers.append(
                        {
                            "pool": name,
                            "generation": gen.number,
                            "slot": inst.slot,
                            "pid": inst.pid,
                            "uid": gen.identity.uid,
                            "user": gen.identity.user,
                            "state": "stopping"
                            if inst.term_at is not None or gen.stopping
                            else ("ready" if inst.ready else "starting"),
                            "uptime_s": round(now - inst.started_at, 1),
                            "restarts": runner.health.restarts,
                            "health": runner.probe.last or ("ok" if inst.ready else ""),
                            "last_exit": runner.health.last_exit,
                        }
                    )
        pools = {
            name: {
                "halted": runner.health.halted,
                "halted_since": (self.clock.wall() - (now - runner.health.halted_at))
                if runner.health.halted
                else None,
                "restarts": runner.health.restarts,
                "last_exit": runner.health.last_exit,
                "probe": {"failures": runner.probe.failures, "last": runner.probe.last},
                "generations": [g.number for g in runner.generations],
                "queue": runner.queue_name,
            }
            for name, runner in sorted(self.supervisor.pools.items())
        }
        stats = self.listener.stats()
        listener = {
            "pid": min(self.listener.processes, default=None),
            "pids": sorted(self.listener.processes),
            "uid": self.listener_identity.uid if self.listener_identity else None,
            "user": self.listener_identity.user if self.listener_identity else None,
            "addresses": sorted(f"{e.host}:{e.port}" for e in self.listener.sockets),
            "restarts": self.listener.restarts,
            # The hot path the processes run (compiled or python), as they report it.
            "core": next((str(p["core"]) for p in stats if p.get("core")), None),
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
        for name in list(self.supervisor.pools):
            self.supervisor.remove_pool(name, "controller stopping")
        with contextlib.suppress(TemporaryBackendError):
            self._wait(lambda: not self.supervisor.pools, grace + 2.0, progress, "pools stopping")
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.supervisor.close()
        self.listener.close()
        self.queues.close_all()
        self.broker.stop()
        self.notify.close()
        self.prober.close()
        self.cgroups.remove_namespace()


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
