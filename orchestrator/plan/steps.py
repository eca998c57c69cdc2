"""The plan as a value: actions, steps, drift items and the plan itself.

Owns: ``Op`` (a closed set of actions that renders itself), ``FieldChange``, ``Step``, ``DriftItem`` and
``Plan``. A step's ``reason`` is for people; nothing that applies a plan may branch on it.
Pure: standard library and ``orchestrator.model`` only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchestrator.model.desired import Resource
from orchestrator.model.ids import Key


class Op(enum.StrEnum):
    """What a step does to its object."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # destroy first (-/+): the old and new cannot coexist
    REPLACE_CBD = "replace_cbd"  # create before destroy (+/-): start new, wait healthy, stop old
    DELETE = "delete"

    @property
    def symbol(self) -> str:
        """The terraform-style symbol."""
        return _SYMBOLS[self]

    @property
    def actions(self) -> tuple[str, ...]:
        """Terraform's JSON ``change.actions`` vocabulary."""
        return _ACTIONS[self]


_SYMBOLS = {
    Op.CREATE: "+",
    Op.UPDATE: "~",
    Op.REPLACE: "-/+",
    Op.REPLACE_CBD: "+/-",
    Op.DELETE: "-",
}
_ACTIONS: dict[Op, tuple[str, ...]] = {
    Op.CREATE: ("create",),
    Op.UPDATE: ("update",),
    Op.REPLACE: ("delete", "create"),
    Op.REPLACE_CBD: ("create", "delete"),
    Op.DELETE: ("delete",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldChange:
    """One changed attribute: its dotted manifest path, both values and whether it forces a replace.

    ``before``/``after`` hold the display form (durations as ``90s``, secrets masked); a value that is
    absent is ``None``.
    """

    path: str
    before: object
    after: object
    forces: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One action on one object.

    Attributes:
        id: stable and unique within a plan, e.g. ``"create queue/api"``.
        op: the action.
        key: the object.
        before: the live object (``None`` for a create).
        after: the desired object (``None`` for a delete).
        changes: changed attributes (empty for creates and deletes).
        replace_paths: the attributes that force a replacement.
        reason: why, for people (``restart_because_spec_changed``, ...); never for apply.
        requires: ids of the steps that must succeed first.
        wave: the apply wave (0 first); every step's requirements are in earlier waves.
    """

    id: str
    op: Op
    key: Key
    before: Resource | None
    after: Resource | None
    changes: tuple[FieldChange, ...] = ()
    replace_paths: tuple[str, ...] = ()
    reason: str = ""
    requires: frozenset[str] = frozenset()
    wave: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftItem:
    """Live state that differs from the last apply while the manifest did not change."""

    address: str
    key: Key
    reason: str
    detail: str = ""
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """An ordered set of steps that turns the live state into the desired one.

    Attributes:
        steps: in apply order (wave, then kind rank, then name).
        drift: what changed outside the controller since the last apply.
        unchanged: objects that need nothing.
        base_fingerprint: the fingerprint of the live state the plan was made from.
        manifest_sha256: the hash of the manifest it was made from.
        live_manifest_sha256: the hash of the manifest last applied ("" when none).
        generation: the live state's generation.
        backend: the backend that observed the live state.
    """

    steps: tuple[Step, ...]
    drift: tuple[DriftItem, ...] = ()
    unchanged: tuple[Key, ...] = ()
    base_fingerprint: str = ""
    manifest_sha256: str = ""
    live_manifest_sha256: str = ""
    generation: int = 0
    backend: str = ""

    @property
    def is_empty(self) -> bool:
        """No step to apply (drift alone that needs no action still counts as converged)."""
        return not self.steps

    @property
    def waves(self) -> tuple[tuple[Step, ...], ...]:
        """Steps grouped by wave, in order."""
        if not self.steps:
            return ()
        count = max(s.wave for s in self.steps) + 1
        return tuple(tuple(s for s in self.steps if s.wave == w) for w in range(count))

    def summary(self) -> dict[str, int]:
        """Counts by kind of action; replacements are counted apart from adds and destroys."""
        ops = [s.op for s in self.steps]
        return {
            "add": ops.count(Op.CREATE),
            "change": ops.count(Op.UPDATE),
            "replace": ops.count(Op.REPLACE) + ops.count(Op.REPLACE_CBD),
            "destroy": ops.count(Op.DELETE),
            "drift": len({d.address for d in self.drift}),
        }

    def step(self, step_id: str) -> Step:
        """The step with this id; raises ``KeyError`` when there is none."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)
