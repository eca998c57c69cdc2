"""Live state: what a backend observed, what it last applied, and the faults it saw.

Owns: ``LiveState``, ``Fault``, ``Repair`` and ``QueueServing``, and the live-state fingerprint used
by the stale-plan check.
Live state holds only managed fields; handles, pids and fds stay in the backend's private registry.
Pure: standard library and ``orchestrator.model`` only.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from orchestrator.model.desired import Resource
from orchestrator.model.ids import Key


class Repair(enum.StrEnum):
    """What it takes to correct a fault: nothing (self-healing), an in-place update, a replacement."""

    NONE = "none"
    UPDATE = "update"
    REPLACE = "replace"


class QueueServing(enum.StrEnum):
    """Whether a request queue serves, and if not why (``status``'s queue ``state``)."""

    ENABLED = "enabled"
    DISABLED = "disabled"  # by its definition (state: disabled)
    OFFLINE = "offline"  # every pool on it was stopped by rapid-fail protection
    STOPPED = "stopped"  # its last pool was removed (IIS: a stopped pool's queue answers 503)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """Something observed that differs from the object's definition without a field showing it.

    Examples: a queue socket chmod'ed by hand (``UPDATE``), a queue socket deleted (``REPLACE``), a
    worker process that exited and is being restarted by the supervisor (``NONE``).
    """

    key: Key
    reason: str
    detail: str = ""
    repair: Repair = Repair.NONE
    instance: str = ""  # e.g. "worker/api[1]" when the fault is about one process of a pool

    @property
    def address(self) -> str:
        """Where the fault is: the instance when there is one, else the object."""
        return self.instance or str(self.key)


def _empty() -> Mapping[Key, Resource]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveState:
    """What exists now.

    Attributes:
        resources: the managed objects as observed (a missing key does not exist).
        applied: what the controller last applied per key; empty when nothing was ever applied.
        faults: observations that need no field to show them (see ``Fault``).
        backend: the backend that observed it.
        generation: how many applies the controller has made (0 with no controller).
        manifest_sha256: the hash of the manifest last applied, "" when none.
    """

    resources: Mapping[Key, Resource] = field(default_factory=_empty)
    applied: Mapping[Key, Resource] = field(default_factory=_empty)
    faults: tuple[Fault, ...] = ()
    backend: str = ""
    generation: int = 0
    manifest_sha256: str = ""

    @staticmethod
    def empty(backend: str = "") -> LiveState:
        """Nothing exists (the state a plan is made against when no controller runs)."""
        return LiveState(backend=backend)

    def fingerprint(self) -> str:
        """A hash of everything a plan depends on, for the stale-plan check.

        Built from the resources' ``repr`` (frozen dataclasses of plain values, so it is complete and
        stable across processes) rather than their JSON form, which costs ten times more at scale.
        """
        digest = hashlib.sha256()
        seen: dict[int, bytes] = {}  # applied and observed objects are usually the same instances
        for label, mapping in (("resources", self.resources), ("applied", self.applied)):
            digest.update(label.encode())
            for key in sorted(mapping, key=Key.sort_key):
                obj = mapping[key]
                text = seen.get(id(obj))
                if text is None:
                    text = seen[id(obj)] = repr(obj).encode()
                digest.update(text)
                digest.update(b"\n")
        for fault in sorted(self.faults, key=lambda f: (f.key.sort_key(), f.instance, f.reason)):
            digest.update(f"{fault.key}|{fault.instance}|{fault.reason}|{fault.repair}\n".encode())
        return digest.hexdigest()
