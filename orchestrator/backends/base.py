"""The backend protocol every backend implements, and the capability record it reports.

Owns: ``Backend`` (``observe``, ``apply``, ``capabilities``, ``close``), ``Capabilities`` and
``Progress``. Errors are those of ``orchestrator.errors``: ``TemporaryBackendError`` (retried with
backoff) and ``PermanentBackendError`` (not retried until the object's definition changes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from orchestrator.model.live import LiveState
from orchestrator.plan.steps import Step

#: Progress reports while a step runs (e.g. waiting on health checks): an event name and its fields.
Progress = Callable[[str, dict[str, object]], None]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do here; the same manifest may need less on a smaller backend.

    ``features`` names: ``queue_state``, ``verbosity503``, ``queue_length``, ``https``,
    ``urls_per_group_many``, ``acl``, ``health_probe``, ``cgroups``, ``identities``.
    """

    backend: str
    features: frozenset[str]
    notes: tuple[str, ...] = ()

    def has(self, feature: str) -> bool:
        """Whether ``feature`` is supported."""
        return feature in self.features


class Backend(Protocol):
    """Turns plan steps into reality and reports what exists."""

    @property
    def name(self) -> str:
        """The backend's name (``linux``, ``httpsys``, ``fake``)."""
        ...

    def capabilities(self) -> Capabilities:
        """What this backend supports on this host."""
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
