"""The supervisor's decisions as pure functions over frozen values, tested in virtual time.

Owns: ``Policy`` (a pool's supervision settings in seconds), ``PoolHealth`` (crash history and halt
state), ``ExitInfo``, ``Child`` and the commands ``Spawn``, ``Terminate``, ``Kill`` and ``Halt``, and the
functions that decide: ``on_exit``, ``reconcile_slots``, ``escalate``, ``probe_verdict``,
``recycle_reason``. Must not import ``orchestrator`` packages or do any I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

#: The exit code a worker uses to say "I cannot boot; do not retry" (gunicorn's WORKER_BOOT_ERROR).
BOOT_FAILURE_EXIT = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A pool's supervision settings (from the manifest, in seconds)."""

    processes: int = 1
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 30.0
    reset_after_s: float = 30.0
    rapid_fail_enabled: bool = True
    max_crashes: int = 5
    rapid_fail_interval_s: float = 300.0
    startup_time_limit_s: float = 90.0
    shutdown_time_limit_s: float = 90.0
    unhealthy_threshold: int = 3
    recycle_time_s: float = 0.0
    recycle_requests: int = 0
    recycle_memory_bytes: int = 0
    recycle_schedule: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitInfo:
    """How one process ended."""

    slot: int
    at: float
    started_at: float
    code: int | None = None  # exit status when it exited
    signal: int | None = None  # the signal that killed it
    expected: bool = False  # we asked it to stop
    oom: bool = False  # its cgroup recorded an OOM kill

    @property
    def boot_failure(self) -> bool:
        """It said it cannot boot (exit code 3)."""
        return self.code == BOOT_FAILURE_EXIT

    def describe(self) -> str:
        """ "exited with code 1", "killed by signal 9 (out of memory)", ..."""
        if self.oom:
            return f"killed by the kernel: out of memory (signal {self.signal or 9})"
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        if self.boot_failure:
            return f"exited with code {self.code} (cannot boot)"
        return f"exited with code {self.code}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolHealth:
    """A pool's crash history and whether rapid-fail protection stopped it."""

    crashes: tuple[float, ...] = ()  # times of recent crashes, oldest first
    consecutive: int = 0  # crashes since the last stable period
    halted: str = ""  # why the pool is stopped ("" when it runs)
    halted_at: float = 0.0
    restarts: int = 0
    last_exit: str = ""
    ooms: int = 0


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start a process in ``slot``."""

    slot: int


@dataclass(frozen=True, slots=True)
class Terminate:
    """Ask a process to stop (SIGTERM)."""

    pid: int


@dataclass(frozen=True, slots=True)
class Kill:
    """Kill a process and everything in its group (SIGKILL / ``cgroup.kill``)."""

    pid: int


@dataclass(frozen=True, slots=True)
class Halt:
    """Stop the whole pool (rapid-fail protection or a boot failure)."""

    reason: str


Command = Spawn | Terminate | Kill | Halt


@dataclass(frozen=True, slots=True, kw_only=True)
class Child:
    """One running process as the driver knows it."""

    slot: int
    pid: int
    started_at: float
    ready: bool = False
    term_at: float | None = None  # when SIGTERM was sent
    requests: int = 0
    rss_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitDecision:
    """What an exit means: when the slot may restart, or that the pool halts."""

    health: PoolHealth
    restart_at: float | None
    halt: Halt | None = None
    counted: bool = True


def restart_delay(consecutive: int, policy: Policy) -> float:
    """The wait before the ``consecutive``-th restart in a row: doubling from the initial delay."""
    if consecutive <= 0:
        return 0.0
    return min(policy.max_backoff_s, policy.initial_backoff_s * 2.0 ** (consecutive - 1))


def on_exit(health: PoolHealth, info: ExitInfo, policy: Policy) -> ExitDecision:
    """Decide what a process exit means for its pool.

    An exit we asked for counts for nothing. Any other exit is a crash: it is recorded, the restart
    waits ``restart_delay`` (reset when the process had run for ``reset_after_s``), and
    ``max_crashes`` crashes within ``rapid_fail_interval_s`` halt the pool (IIS rapid-fail
    protection). A boot failure (exit code 3) halts the pool at once: retrying cannot help.
    """
    if info.expected:
        return ExitDecision(health=health, restart_at=None, counted=False)
    stable = info.at - info.started_at >= policy.reset_after_s
    consecutive = 1 if stable else health.consecutive + 1
    window_start = info.at - policy.rapid_fail_interval_s
    crashes = (*(t for t in health.crashes if t > window_start), info.at)
    updated = replace(
        health,
        crashes=crashes,
        consecutive=consecutive,
        restarts=health.restarts + 1,
        last_exit=info.describe(),
        ooms=health.ooms + (1 if info.oom else 0),
    )
    if info.boot_failure:
        reason = f"a process {info.describe()}; not restarted until the pool changes or is reset"
        halted = replace(updated, halted=reason, halted_at=info.at)
        return ExitDecision(health=halted, restart_at=None, halt=Halt(reason))
    if policy.rapid_fail_enabled and len(crashes) >= policy.max_crashes:
        reason = (
            f"rapid-fail protection: {len(crashes)} crashes within "
            f"{policy.rapid_fail_interval_s:g}s (last: {info.describe()})"
        )
        halted = replace(updated, halted=reason, halted_at=info.at)
        return ExitDecision(health=halted, restart_at=None, halt=Halt(reason))
    return ExitDecision(health=updated, restart_at=info.at + restart_delay(consecutive, policy))


def reset(health: PoolHealth) -> PoolHealth:
    """Re-arm a halted pool (``orchestrator reset POOL`` or a changed definition)."""
    return PoolHealth(restarts=health.restarts, last_exit=health.last_exit, ooms=health.ooms)


def reconcile_slots(
    children: Sequence[Child],
    policy: Policy,
    restart_at: dict[int, float],
    now: float,
    *,
    halted: bool = False,
) -> list[Command]:
    """Which slots to (re)start and which surplus processes to stop.

    Args:
        children: running processes (not yet asked to stop) of one generation.
        policy: the pool's policy (``processes`` is the wanted count).
        restart_at: per empty slot, the earliest time it may start again (absent: at once).
        now: the current monotonic time.
        halted: the pool is stopped; nothing is started.

    Returns:
        ``Spawn`` for each empty slot whose time has come, and ``Terminate`` for surplus processes,
        oldest first (slots beyond the wanted count).
    """
    commands: list[Command] = []
    live = [c for c in children if c.term_at is None]
    used = {c.slot for c in live}
    if not halted:
        commands.extend(
            Spawn(slot)
            for slot in range(policy.processes)
            if slot not in used and restart_at.get(slot, now) <= now
        )
    surplus = sorted((c for c in live if c.slot >= policy.processes), key=lambda c: c.started_at)
    commands.extend(Terminate(c.pid) for c in surplus)
    return commands


def escalate(children: Iterable[Child], grace_s: float, now: float) -> list[Kill]:
    """Processes asked to stop more than ``grace_s`` ago are killed (with their whole group)."""
    return [Kill(c.pid) for c in children if c.term_at is not None and now - c.term_at >= grace_s]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeState:
    """A pool's health-probe record."""

    failures: int = 0
    last: str = ""
    last_ok_at: float | None = None


def probe_verdict(
    state: ProbeState, ok: bool, detail: str, now: float, policy: Policy
) -> tuple[ProbeState, bool]:
    """Record one probe result; returns the new state and whether the pool must be replaced
    (``unhealthy_threshold`` failures in a row)."""
    if ok:
        return ProbeState(failures=0, last=detail, last_ok_at=now), False
    failures = state.failures + 1
    updated = ProbeState(failures=failures, last=detail, last_ok_at=state.last_ok_at)
    if failures >= policy.unhealthy_threshold:
        return ProbeState(failures=0, last=detail, last_ok_at=state.last_ok_at), True
    return updated, False


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def recycle_reason(
    started_at: float,
    now: float,
    children: Sequence[Child],
    policy: Policy,
    *,
    wall_minutes_before: int | None = None,
    wall_minutes_now: int | None = None,
) -> str:
    """Why a generation is due for an overlapped recycle ("" when it is not).

    Args:
        started_at: when the generation started (monotonic).
        now: the current monotonic time.
        children: its processes (for request counts and memory).
        policy: the recycling settings.
        wall_minutes_before: minute of the day at the previous check (for ``schedule``).
        wall_minutes_now: minute of the day now.
    """
    if policy.recycle_time_s and now - started_at >= policy.recycle_time_s:
        return f"time: running for {policy.recycle_time_s:g}s"
    if policy.recycle_requests and sum(c.requests for c in children) >= policy.recycle_requests:
        return f"requests: served {policy.recycle_requests}"
    if policy.recycle_memory_bytes:
        biggest = max((c.rss_bytes for c in children), default=0)
        if biggest > policy.recycle_memory_bytes:
            return f"memory: a process uses {biggest} bytes"
    if policy.recycle_schedule and wall_minutes_before is not None and wall_minutes_now is not None:
        for at in policy.recycle_schedule:
            minute = _minutes(at)
            crossed = (
                wall_minutes_before < minute <= wall_minutes_now
                if wall_minutes_before <= wall_minutes_now
                else minute > wall_minutes_before or minute <= wall_minutes_now
            )
            if crossed:
                return f"schedule: {at}"
    return ""
