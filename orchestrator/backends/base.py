"""The backend protocol every backend implements, and the capability record it reports.

Owns: ``Supervision`` (``poll``, ``status``, ``reset``, ``restart``, ``shutdown``: what the
controller's main loop asks of a backend between reconcile passes), ``Backend`` (``observe``,
``apply``, ``capabilities``, ``guarantees``, ``close``, and supervision), ``Capabilities``,
``Restarted``, ``Progress`` and ``Emit``; ``QueueOpener`` and ``QueueRefused``, the
backend-neutral face of opening a queue by name (``orchestrator open``), whose implementation the
registry hands out per backend. Other errors are those of
``orchestrator.errors``: ``TemporaryBackendError`` (retried with backoff) and
``PermanentBackendError`` (not retried until the object's definition changes).
Must not import a backend implementation, ``reconcile``, ``controller`` or ``cli``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from orchestrator.model.live import LiveState
from orchestrator.plan.guarantees import HostGuarantees
from orchestrator.plan.rules import BASELINE, ChangeRules
from orchestrator.plan.steps import Step

#: Where a backend sends its events (``EventLog.emit``): an event name and its fields.
Emit = Callable[..., None]
#: Progress reports while a step runs (e.g. waiting on health checks): an event name and its fields.
Progress = Callable[[str, dict[str, object]], None]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do here; the same manifest may need less on a smaller backend.

    ``features`` names: ``queue_state``, ``verbosity503``, ``queue_length``, ``https``,
    ``urls_per_group_many``, ``acl``, ``health_probe``, ``cgroups``, ``identities``.

    ``changes`` is the backend's declaration of the attribute changes it cannot make in place
    (each forces a replacement, or a pool's restart); ``plan`` reads it, and the contract suite
    checks it against what ``apply`` does. It is also readable by backend name without
    constructing the backend (``backends.registry.change_rules``), for plans made without a
    controller, so it must not depend on the host.
    """

    backend: str
    features: frozenset[str]
    notes: tuple[str, ...] = ()
    changes: ChangeRules = BASELINE

    def has(self, feature: str) -> bool:
        """Whether ``feature`` is supported."""
        return feature in self.features


@dataclass(frozen=True, slots=True)
class Restarted:
    """What ``Supervision.restart`` did: the pool's processes before, and the ready new ones.

    A backend without pids (the fake) reports empty tuples; ``generation`` always moves.
    """

    pool: str
    generation: int
    old_pids: tuple[int, ...]
    new_pids: tuple[int, ...]


class Supervision(Protocol):
    """What runs between reconcile passes: the processes a backend started, watched and re-armed.

    Only the controller's main thread calls these, never concurrently with ``apply``.
    """

    def poll(self, timeout_s: float, wake_fds: Iterable[int] = ()) -> set[int]:
        """Wait up to ``timeout_s`` for anything to do, do it, and return the ready ``wake_fds``.

        The controller's loop sleeps here: the backend services process exits, readiness reports
        and health probes, restarts what is due and escalates stops, and returns early when one of
        ``wake_fds`` (signals, the reconcile trigger) becomes readable. It may return early with
        nothing ready; it never reads from a ``wake_fds`` descriptor.
        """
        ...

    def status(self) -> dict[str, object]:
        """What ``orchestrator status`` shows about this backend.

        The keys every backend reports: ``workers`` (a list, one entry per process: ``pool``,
        ``pid``, ``state``, ...), ``pools`` (pool name to ``halted`` (the reason, falsy when it
        runs), ``restarts``, ...), ``queues`` (a list: ``name``, ``state``, ...) and ``listener``.
        """
        ...

    def reset(self, pool: str) -> bool:
        """Re-arm ``pool`` after rapid-fail protection stopped it (``orchestrator reset POOL``).

        Returns:
            Whether the pool was stopped; ``False`` for a running or unknown pool (nothing changes).
        """
        ...

    def restart(self, pool: str, report: Progress | None = None) -> Restarted:
        """Recycle ``pool`` on demand (``orchestrator restart POOL``), overlapped: new processes of
        the same definition start, and the old ones stop only once those are ready, the way a
        changed definition rolls over. Returns once the new generation is ready.

        Raises:
            KeyError: the backend runs no pool of that name.
            TemporaryBackendError, PermanentBackendError: the new processes did not become ready
                (the old ones, if any, keep serving).
        """
        ...

    def shutdown(self, report: Progress | None = None) -> None:
        """Stop gracefully: drain, stop the pools within their ``shutdownTimeLimit``, then
        release everything as ``close`` does. ``report`` hears progress while it waits."""
        ...


@runtime_checkable
class Backend(Supervision, Protocol):
    """Turns plan steps into reality, reports what exists, and supervises what it started."""

    @property
    def name(self) -> str:
        """The backend's name (``linux``, ``httpsys``, ``fake``)."""
        ...

    def capabilities(self) -> Capabilities:
        """What this backend supports on this host."""
        ...

    def guarantees(self) -> HostGuarantees:
        """What this backend can guarantee here (identities, ACL subjects, cgroup limits,
        sandboxes): the host facts ``plan.guarantees.dropped_guarantees`` judges a manifest by."""
        ...

    def observe(self) -> LiveState:
        """Read the current state of every managed object (resources and faults).

        ``applied``, ``generation`` and ``manifest_sha256`` are the controller's memory, not the
        backend's; a backend leaves them empty.
        """
        ...

    def apply(self, step: Step, progress: Progress | None = None) -> None:
        """Carry out one step; return only when its outcome is known.

        Raises:
            TemporaryBackendError: try again later.
            PermanentBackendError: retrying the same definition cannot help.
        """
        ...

    def close(self) -> None:
        """Stop everything this backend started and release what it holds."""
        ...


class QueueRefused(Exception):
    """The controller's queue broker refused a queue: ``kind`` is ``unknown`` or ``denied`` (or
    ``error`` when its answer could not be read); the message is its explanation."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class QueueOpener(Protocol):
    """Opens a queue by name through the running controller, for a program to serve it
    (``orchestrator open``). ``orchestrator.backends.registry.queue_opener`` hands out the
    backend's own, so the command line never imports a backend."""

    def __call__(self, broker_path: str, name: str) -> int:
        """Ask the broker listening at ``broker_path`` for queue ``name``.

        Returns:
            The queue's listening socket, a file descriptor the caller now owns.

        Raises:
            QueueRefused: no such queue, or the caller may not open it.
            OSError: no broker answers at ``broker_path``.
        """
        ...
