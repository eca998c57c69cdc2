"""The controller's side of the listener: its ports, its processes and its routing table.

Owns: ``ListenerManager``. The controller binds every TCP port (even below 1024, which the
unprivileged listener could not) and keeps them for its lifetime, so a listener that crashes or is
restarted makes clients wait in the kernel's backlog, never see a refused connection. The routing table
and settings (a ``listener.message.ListenerConfig``, built by the backend) are pushed over each
process's private channel as a versioned ``config`` message with the listening sockets attached (this
module adds the version and the sockets); a process acknowledges each version, so a push is known to
be in force.

Port 0 (a URL prefix such as ``http://127.0.0.1:0/``) asks the kernel for a free port: the first
socket of the address picks it, the other processes' sockets (``SO_REUSEPORT``) join that port, and
it is kept as long as the address is wanted (a reload that still names port 0 keeps it). The bound
port is what the listener routes by (prefixes with port 0 are sent with it), what ``addresses()``
and ``endpoints()`` report and what the ``listener_bound`` event says.

The access log (``session.listener.accessLog``) is an fd sent with each config: the controller's
stderr (``on``) or a file the controller opens (a path: the listener's user need not be able to
open it), in the controller's log format. ``reopen_access_log`` (SIGUSR1, for logrotate) opens the
file again and pushes the config, so every process moves to the new file. Each process's own stdout
and stderr go to the controller's output sink (``spawn_captured``), as ``listener``.

One owner per address on the host: before it binds an address (after, for port 0: the port the
kernel gave), the manager takes it in the host-wide registry (``addresses.AddressRegistry``), and
gives it up when the address stops being wanted or the manager closes. An address another session
serves is an error naming that owner, like "address in use"; while the controller is starting
(``starting()``: no pool runs yet) it is ``StartRefused`` instead, which ends the controller with
that one line. ``SO_REUSEPORT`` then only joins this manager's own sockets: the kernel already
refuses it between different effective uids, and the registry covers one uid's controllers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from orchestrator.backends.linux.addresses import AddressRegistry, AddressTaken, Owner
from orchestrator.backends.linux.cgroups import Cgroup, CgroupManager
from orchestrator.backends.linux.identity import Identity
from orchestrator.backends.linux.listener.channel import Channel
from orchestrator.backends.linux.listener.message import (
    AccessLogConfig,
    ListenerConfig,
    SocketConfig,
)
from orchestrator.backends.linux.sandbox import ShimReport, observed, spawn_reporting
from orchestrator.backends.linux.spawn import ProcessSpec, worker_environment
from orchestrator.backends.output import OutputSink
from orchestrator.clock import Clock
from orchestrator.model.urlprefix import HostKind, UrlPrefixError, parse_prefix
from orchestrator.supervise import core

Emit = Callable[..., None]
LISTEN_BACKLOG = 4096


@dataclass(slots=True)
class ListenerProcess:
    """One listener process and its channel."""

    slot: int
    pid: int
    popen: subprocess.Popen[bytes]
    pidfd: int
    channel: Channel
    started_at: float
    cgroup: Cgroup | None
    acked: int = 0
    stats: dict[str, object] = field(default_factory=dict)
    term_at: float | None = None
    #: What the exec shim applied (its sandbox), read once it is there.
    report: ShimReport = field(default_factory=lambda: ShimReport(None))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A TCP address the listener serves."""

    scheme: str
    host: str  # an IP literal, or "0.0.0.0"/"::" for every address
    port: int

    @property
    def id(self) -> str:
        """A stable name used in the config message."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port`` as asked (the port may be 0)."""
        return f"{self.host}:{self.port}"


class StartRefused(SystemExit):
    """An address of the first manifest is served by another session: the controller does not
    start. A ``SystemExit`` (status 1, its message on stderr, no traceback), so that it passes the
    reconciler's error handling and the controller's shutdown runs on the way out."""


#: ``processes: auto`` runs one listener per usable CPU, at most this many.
AUTO_PROCESSES_MAX = 16


def listener_processes(setting: int | str) -> int:
    """How many listener processes a ``session.listener.processes`` value asks for on this host:
    the number itself, or for ``auto`` one per CPU this process may run on (its affinity, so a
    container's or a cgroup's CPU set counts), at most ``AUTO_PROCESSES_MAX``."""
    if setting != "auto":
        return int(setting)
    return max(1, min(AUTO_PROCESSES_MAX, len(os.sched_getaffinity(0))))


class ListenerManager:
    """Keeps ``processes`` listener processes running with the current config."""

    def __init__(
        self,
        clock: Clock,
        cgroups: CgroupManager,
        emit: Emit,
        drop: bool,
        *,
        run_dir: str = "",
        starting: Callable[[], bool] = lambda: False,
        registry: AddressRegistry | None = None,
    ) -> None:
        self.clock = clock
        self.cgroups = cgroups
        self.emit = emit
        self.drop = drop
        #: The addresses this controller holds on the host (``registry``: tests give their own).
        self.registry = registry or AddressRegistry(Owner("", run_dir, os.getpid()))
        #: Whether an address conflict should stop the controller rather than fail one apply.
        self.starting = starting
        self.identity: Identity | None = None
        self.processes_wanted = 0
        self.nofile: tuple[int, int] = (0, 0)  # set by start()
        self.processes: dict[int, ListenerProcess] = {}  # by pid
        self.restart_at: dict[int, float] = {}
        self.consecutive = 0
        self.sockets: dict[Endpoint, list[socket.socket]] = {}  # one per listener process slot
        self.ports: dict[Endpoint, int] = {}  # the port each endpoint is bound to (port 0: chosen)
        self.wanted_endpoints: set[Endpoint] = set()
        self.config = ListenerConfig()
        #: The exec shim's sandbox entry for listener processes (``start`` sets it).
        self.sandbox: Mapping[str, object] | None = None
        self.version = 0
        self.last_exit = ""
        self.restarts = 0
        self._cgroup_seq = 0
        #: Where the processes' stdout and stderr go (``None``: the controller's stderr).
        self.output: OutputSink | None = None
        self.access_setting = "on"  # on | off | PATH (session.listener.accessLog)
        self._access_file: int | None = None  # the file opened for a PATH setting

    # -- ports --------------------------------------------------------------------------------
    def ensure_endpoints(self, wanted: set[Endpoint]) -> list[str]:
        """Bind what is new, close what is gone: one socket per endpoint and listener process
        (``SO_REUSEPORT``, so the kernel spreads connections across the processes). An endpoint
        with port 0 gets a free port from its first socket; the others bind that port. A new
        address is taken in the host's registry first (port 0: once bound). Returns errors
        (address in use, permission, served by another session).

        Raises:
            StartRefused: another session serves a new address while ``starting()``.
        """
        self.wanted_endpoints = set(wanted)
        count = max(1, self.processes_wanted)
        errors = []
        for endpoint in sorted(set(self.sockets) - wanted, key=lambda e: e.id):
            for sock in self.sockets.pop(endpoint):
                sock.close()
            self._release(endpoint, self.ports.pop(endpoint, None))
        for endpoint in sorted(wanted, key=lambda e: e.id):
            if endpoint not in self.sockets and endpoint.port != 0:
                error = self._claim(endpoint, endpoint.port)
                if error is not None:
                    errors.append(error)
                    continue
            group = self.sockets.setdefault(endpoint, [])
            while len(group) > count:
                group.pop().close()
            while len(group) < count:
                try:
                    group.append(self._bind(endpoint, self.ports.get(endpoint, endpoint.port)))
                except OSError as exc:
                    errors.append(
                        f"cannot listen on {endpoint.host}:{endpoint.port}: {exc.strerror}"
                    )
                    break
                if endpoint not in self.ports:
                    port = int(group[0].getsockname()[1])
                    try:
                        error = self._claim(endpoint, port) if endpoint.port == 0 else None
                    except StartRefused:
                        for sock in self.sockets.pop(endpoint):
                            sock.close()
                        raise
                    if error is not None:
                        errors.append(error)
                        while group:
                            group.pop().close()
                        break
                    self.ports[endpoint] = port
                    self.emit(
                        "listener_bound",
                        scheme=endpoint.scheme,
                        address=endpoint.address,
                        host=endpoint.host,
                        port=self.ports[endpoint],
                    )
            if not group:
                del self.sockets[endpoint]
                self._release(endpoint, self.ports.pop(endpoint, endpoint.port or None))
        return errors

    def _claim(self, endpoint: Endpoint, port: int) -> str | None:
        """Take ``endpoint`` on ``port`` in the host's registry; returns the error, if any.

        Raises:
            StartRefused: another session serves it and the controller is starting.
        """
        try:
            self.registry.acquire(endpoint.host, port)
        except AddressTaken as exc:
            if self.starting():
                raise StartRefused(str(exc)) from None
            self.emit("address_taken", address=exc.address, held=exc.held, error=str(exc))
            return str(exc)
        except OSError as exc:
            return f"cannot listen on {endpoint.address}: {exc.strerror or exc}"
        return None

    def _release(self, endpoint: Endpoint, port: int | None) -> None:
        """Give up ``endpoint``'s registry entry unless another endpoint (another scheme on the
        same address) still uses it."""
        if port is None:
            return
        others = {(e.host, p) for e, p in self.ports.items() if e in self.sockets}
        if (endpoint.host, port) not in others:
            self.registry.release(endpoint.host, port)

    def addresses(self) -> list[str]:
        """``host:port`` of every listening address, with the port it is bound to."""
        return sorted(f"{e.host}:{port}" for e, port in self.ports.items())

    def endpoints(self) -> list[dict[str, object]]:
        """Every listening address as asked (``address``, its port may be 0) and as bound
        (``bound``, ``port``)."""
        return [
            {
                "scheme": e.scheme,
                "address": e.address,
                "bound": f"{e.host}:{port}",
                "port": port,
            }
            for e, port in sorted(self.ports.items(), key=lambda item: item[0].id)
        ]

    def _bind(self, endpoint: Endpoint, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # A restarted controller rebinds its ports at once, without EADDRINUSE.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((endpoint.host.strip("[]"), port))
            sock.listen(LISTEN_BACKLOG)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(False)
        return sock

    # -- config ------------------------------------------------------------------------------
    def push(self, config: ListenerConfig) -> int:
        """Send a new config (routing table and settings) to every process; returns its version."""
        self.version += 1
        self.config = config
        with contextlib.suppress(OSError):  # a renamed session: the registry says the new name
            self.registry.rename(config.session.name)
        for proc in self.processes.values():
            self._send_config(proc)
        return self.version

    def _send_config(self, proc: ListenerProcess) -> None:
        endpoints = sorted(self.sockets, key=lambda e: e.id)
        fds = [self.sockets[e][proc.slot % len(self.sockets[e])].fileno() for e in endpoints]
        access_fd = self._access_fd()
        if access_fd is not None:
            fds.append(access_fd)
        config = replace(
            self._resolved(self.config),
            version=self.version,
            access_log=self._access_config(access_fd is not None),
            sockets=tuple(
                SocketConfig(
                    id=e.id, scheme=e.scheme, host=e.host, port=self.ports[e], asked_port=e.port
                )
                for e in endpoints
            ),
        )
        try:
            proc.channel.send(config.to_message(), fds)
        except OSError as exc:
            self.emit("listener_channel_error", pid=proc.pid, error=str(exc))

    # -- the access log ----------------------------------------------------------------------
    def set_access_log(self, setting: str) -> None:
        """``on`` (the controller's stderr), ``off``, or a file's path (opened now, appending;
        one that cannot be opened leaves the access log off and says why in an event)."""
        if setting == self.access_setting and (
            setting in ("on", "off") or self._access_file is not None
        ):
            return
        self._close_access_file()
        self.access_setting = setting
        if setting not in ("on", "off"):
            self._open_access_file()

    def reopen_access_log(self) -> None:
        """Open the access log file again (logrotate renamed it) and hand every process the new
        one; a no-op unless the access log is a file."""
        if self.access_setting in ("on", "off"):
            return
        self._close_access_file()
        self._open_access_file()
        self.emit("access_log_reopened", path=self.access_setting, ok=self._access_file is not None)
        if self.processes:
            self.push(self.config)

    def _open_access_file(self) -> None:
        try:
            self._access_file = os.open(
                self.access_setting,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY,
                0o640,
            )
        except OSError as exc:
            self.emit(
                "access_log_unavailable",
                path=self.access_setting,
                error=exc.strerror or str(exc),
                detail="the access log is off until the file can be opened (SIGUSR1 retries)",
            )

    def _close_access_file(self) -> None:
        if self._access_file is not None:
            os.close(self._access_file)
            self._access_file = None

    def _access_fd(self) -> int | None:
        if self.access_setting == "off":
            return None
        if self.access_setting == "on":
            return sys.stderr.fileno()
        return self._access_file

    def _access_config(self, enabled: bool) -> AccessLogConfig:
        sink = self.output
        return AccessLogConfig(
            enabled=enabled,
            format=sink.log_format if sink is not None else "json",
            # The journal reads a priority from each line of its stream; a file has none.
            prefix="<6>"
            if sink is not None and sink.journal and self.access_setting == "on"
            else "",
        )

    def _resolved(self, config: ListenerConfig) -> ListenerConfig:
        """``config`` with every route prefix on port 0 given its endpoint's bound port: the
        listener routes by the port a connection arrived on."""
        if not any(e.port == 0 for e in self.ports):
            return config
        routes = tuple(replace(r, prefix=self._bound_prefix(r.prefix)) for r in config.routes)
        return replace(config, routes=routes)

    def _bound_prefix(self, text: str) -> str:
        try:
            prefix = parse_prefix(text)
        except UrlPrefixError:
            return text
        if prefix.port != 0:
            return text
        # The endpoint that serves it (see LinuxBackend._endpoints): the prefix's own IP address,
        # else the wildcard address of its port.
        hosts = [prefix.host.strip("[]")] if prefix.host_kind is HostKind.IP else []
        for host in [*hosts, "0.0.0.0"]:
            port = self.ports.get(Endpoint(prefix.scheme, host, 0))
            if port is not None:
                return str(replace(prefix, port=port))
        return text

    def acked(self, version: int) -> bool:
        """Every running process has acknowledged ``version`` (or a later one)."""
        live = [p for p in self.processes.values() if p.term_at is None]
        return len(live) >= self.processes_wanted and all(p.acked >= version for p in live)

    def stats(self) -> list[dict[str, object]]:
        """The latest counters of each process."""
        return [dict(p.stats, pid=p.pid) for p in self.processes.values()]

    # -- processes ---------------------------------------------------------------------------
    def start(
        self,
        identity: Identity,
        processes: int,
        open_files: int | None = None,
        sandbox: Mapping[str, object] | None = None,
    ) -> None:
        """Run ``processes`` listener processes as ``identity``, each with ``open_files``
        descriptors at most, in ``sandbox`` (the exec shim's entry), restarting them when one of
        these changes."""
        nofile = self._nofile(open_files)
        changed = self.identity is not None and (
            identity != self.identity or nofile != self.nofile or sandbox != self.sandbox
        )
        self.identity = identity
        self.nofile = nofile
        self.sandbox = sandbox
        resized = processes != self.processes_wanted
        self.processes_wanted = processes
        if resized and self.wanted_endpoints:
            self.ensure_endpoints(self.wanted_endpoints)
        if changed:
            for proc in list(self.processes.values()):
                self._terminate(proc)
        self.tick()

    def _spawn(self, slot: int) -> None:
        assert self.identity is not None
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._cgroup_seq += 1
        cgroup = self.cgroups.create(f"listener/i{self._cgroup_seq}")
        # ORCH_LISTENER_PROFILE=DIR makes each listener write a cProfile of itself there (benchmarks).
        # The profiler switch and the hot-path switches (which core, or none: a diagnostic) pass
        # from the controller's environment to the listener's; nothing else does.
        extra = {
            k: v
            for k, v in os.environ.items()
            if k
            in ("ORCH_LISTENER_PROFILE", "ORCHESTRATOR_NO_EXTENSIONS", "ORCH_LISTENER_NO_FASTPATH")
        }
        env = worker_environment(self.identity, extra)
        spec = ProcessSpec(
            argv=(
                sys.executable,
                "-m",
                "orchestrator.backends.linux.listener",
                "--channel-fd",
                "3",
            ),
            env=env,
            cwd="/",
            identity=self.identity,
            drop=self.drop,
            fds=(child.fileno(),),
            cgroup=cgroup,
            rlimits={"CORE": (0, 0), "NOFILE": self.nofile},
            sandbox=self.sandbox,
        )
        try:
            popen, report = spawn_reporting(spec, self.output, None)
        finally:
            child.close()
        parent.setblocking(False)
        proc = ListenerProcess(
            slot,
            popen.pid,
            popen,
            os.pidfd_open(popen.pid),
            Channel(parent),
            self.clock.monotonic(),
            cgroup,
            report=report,
        )
        self.processes[popen.pid] = proc
        self.emit("listener_start", pid=popen.pid, slot=slot, user=self.identity.user)
        if self.version:  # a config was pushed: the new process gets it now
            self._send_config(proc)

    def _nofile(self, wanted: int | None) -> tuple[int, int]:
        """The listener's RLIMIT_NOFILE: ``wanted``, at most the controller's own hard limit (a
        higher one could not be set without CAP_SYS_RESOURCE, and the listener would not boot)."""
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        ceiling = hard if hard != resource.RLIM_INFINITY else 65536
        if wanted is None:
            return (ceiling, ceiling)
        if wanted > ceiling:
            self.emit(
                "listener_open_files_clamped",
                wanted=wanted,
                limit=ceiling,
                detail="session.listener.openFiles is above the controller's hard limit",
            )
            wanted = ceiling
        return (wanted, wanted)

    def _terminate(self, proc: ListenerProcess) -> None:
        if proc.term_at is None:
            proc.term_at = self.clock.monotonic()
            with contextlib.suppress(OSError):
                proc.channel.send({"type": "drain"})
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)

    def tick(self) -> None:
        """Start missing processes whose restart time has come; kill ones that ignored SIGTERM."""
        now = self.clock.monotonic()
        live_slots = {p.slot for p in self.processes.values() if p.term_at is None}
        for slot in range(self.processes_wanted if self.identity else 0):
            if slot not in live_slots and self.restart_at.get(slot, now) <= now:
                self.restart_at.pop(slot, None)
                self._spawn(slot)
        for proc in list(self.processes.values()):
            if proc.term_at is None and proc.slot >= self.processes_wanted:
                self._terminate(proc)
            elif proc.term_at is not None and now - proc.term_at > 10:
                self._kill(proc)

    def _kill(self, proc: ListenerProcess) -> None:
        if proc.cgroup is not None:
            self.cgroups.kill(proc.cgroup)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)

    def fds(self, reap: Callable[[], None]) -> dict[int, Callable[[], None]]:
        """Selector fds and their handlers: pidfds (``reap``) and channels (acks, stats)."""
        handlers: dict[int, Callable[[], None]] = {}
        for proc in self.processes.values():
            handlers[proc.pidfd] = reap
            handlers[proc.channel.fileno()] = functools.partial(self._on_message, proc)
        return handlers

    def owns_pid(self, pid: int) -> bool:
        """Whether ``pid`` is a listener process (the subreaper loop must not steal its status)."""
        return pid in self.processes

    def _on_message(self, proc: ListenerProcess) -> None:
        for message, fds in proc.channel.receive():
            for fd in fds:
                os.close(fd)
            kind = message.get("type")
            if kind == "ack":
                proc.acked = max(proc.acked, int(str(message.get("version", 0))))
                self.consecutive = 0
            elif kind == "stats":
                proc.stats = message
            elif kind == "log":
                self.emit(
                    "listener_log",
                    pid=proc.pid,
                    **{k: v for k, v in message.items() if k not in ("type", "pid")},
                )

    def handle_status(self, pid: int, status: int) -> None:
        """A listener process exited (reaped by the backend): restart it after a backoff."""
        proc = self.processes.get(pid)
        if proc is None:
            return
        proc.popen.returncode = os.waitstatus_to_exitcode(status)  # reaped by us, not by Popen
        self.processes.pop(proc.pid, None)
        os.close(proc.pidfd)
        proc.report.close()
        proc.channel.close()
        if proc.cgroup is not None:
            self.cgroups.kill(proc.cgroup)
            self.cgroups.remove(proc.cgroup, timeout_s=0.5)
        expected = proc.term_at is not None
        self.last_exit = (
            f"killed by signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exited with code {os.WEXITSTATUS(status)}"
        )
        self.emit("listener_exit", pid=proc.pid, exit=self.last_exit, expected=expected)
        if not expected and proc.slot < self.processes_wanted:
            self.consecutive += 1
            self.restarts += 1
            policy = core.Policy(initial_backoff_s=0.05, max_backoff_s=5.0)
            self.restart_at[proc.slot] = self.clock.monotonic() + core.restart_delay(
                self.consecutive, policy
            )

    def next_deadline(self) -> float:
        """When ``tick`` has something to do."""
        times = list(self.restart_at.values())
        times += [p.term_at + 10 for p in self.processes.values() if p.term_at is not None]
        return min(times, default=self.clock.monotonic() + 3600)

    def stop(self) -> None:
        """Drain and stop every process (waits up to 10 s in ``tick``/``_on_exit``)."""
        self.processes_wanted = 0
        for proc in list(self.processes.values()):
            self._terminate(proc)

    def close(self) -> None:
        """Kill the processes and close the ports."""
        for proc in list(self.processes.values()):
            self._kill(proc)
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(proc.pid, 0)
                proc.popen.returncode = os.waitstatus_to_exitcode(status)
            if proc.popen.returncode is None:
                proc.popen.returncode = -9
            os.close(proc.pidfd)
            proc.report.close()
            proc.channel.close()
            if proc.cgroup is not None:
                self.cgroups.remove(proc.cgroup, timeout_s=0.5)
        self.processes.clear()
        for group in self.sockets.values():
            for sock in group:
                sock.close()
        self.sockets.clear()
        self.ports.clear()
        self.registry.release_all()
        self._close_access_file()

    def confinement(self) -> dict[str, object] | None:
        """The sandbox of one listener process (the lowest pid, status's ``pid``) as it is
        (seccomp read back from ``/proc``, Landlock as the shim reported it); ``None`` without a
        process."""
        if not self.processes:
            return None
        proc = self.processes[min(self.processes)]
        return observed(proc.pid, proc.report.read())
