"""Change rules: which attribute changes a backend cannot make in place.

Owns: ``Effect``, ``Forced``, ``ChangeRules`` and ``BASELINE``. Each backend declares its own
``ChangeRules`` (reported in ``Capabilities.changes``, and readable by name without constructing the
backend through ``backends.registry.change_rules``); ``make_plan`` turns a change of a declared
attribute into a replacement (``-/+``) or, for a worker pool, a restart (``+/-``), and records the
attribute in ``replace_paths``. A contract test applies a change of every declared attribute on each
backend and checks that the object was re-created or its processes restarted, so a declaration
cannot drift from what ``apply`` does.
Pure: standard library and ``orchestrator.model`` only.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from orchestrator.model.desired import RESOURCE_TYPES
from orchestrator.model.ids import Kind


class Effect(enum.StrEnum):
    """What a change of the attribute does to the live object."""

    REPLACE = "replace"  # the object is destroyed and made again: it gets a new identity
    RESTART = "restart"  # a pool's processes are replaced (new pids); the pool keeps its name


@dataclass(frozen=True, slots=True, kw_only=True)
class Forced:
    """One declared attribute: a kind, a top-level field in manifest spelling, and its effect.

    ``why`` says in a few words what the backend does (shown in docs and in plans' markdown).
    """

    kind: Kind
    field: str
    effect: Effect
    why: str = ""


def manifest_fields(kind: Kind) -> frozenset[str]:
    """The top-level fields of a kind, in manifest spelling (``allowRoot``, ``maxLength``)."""
    names = set()
    for f in dataclasses.fields(RESOURCE_TYPES[kind]):
        if f.name != "key":
            names.add(str(f.metadata.get("manifest") or f.name))
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class ChangeRules:
    """A backend's declaration of the attribute changes it cannot apply in place.

    Raises:
        ValueError: on construction, for a field the kind does not have, a restart declared for
            anything but a worker pool, or a field declared twice.
    """

    backend: str
    forced: tuple[Forced, ...]

    def __post_init__(self) -> None:
        seen: set[tuple[Kind, str]] = set()
        for f in self.forced:
            if f.field not in manifest_fields(f.kind):
                raise ValueError(f"{self.backend}: {f.kind} has no field {f.field!r}")
            if f.effect is Effect.RESTART and f.kind is not Kind.WORKER:
                raise ValueError(f"{self.backend}: only worker pools restart ({f.kind}.{f.field})")
            if (f.kind, f.field) in seen:
                raise ValueError(f"{self.backend}: {f.kind}.{f.field} is declared twice")
            seen.add((f.kind, f.field))

    def effect(self, kind: Kind, field: str) -> Effect | None:
        """What changing top-level ``field`` (manifest spelling) of a ``kind`` does; ``None``: the
        backend changes it in place."""
        for f in self.forced:
            if f.kind is kind and f.field == field:
                return f.effect
        return None

    def fields(self, kind: Kind) -> frozenset[str]:
        """The declared fields of one kind."""
        return frozenset(f.field for f in self.forced if f.kind is kind)

    def extended(self, backend: str, *extra: Forced) -> ChangeRules:
        """These rules plus ``extra``, under another backend's name."""
        return ChangeRules(backend, (*self.forced, *extra))


def _baseline() -> ChangeRules:
    # Built from the model's ``REPLACE_FIELDS``: what no backend can change in place (a session's
    # backend and run directory are fixed for a controller's lifetime; an object that moves to
    # another session or queue is another object; a pool's processes carry their command, env,
    # cwd, identity and limits from their exec on).
    forced = []
    for kind, cls in RESOURCE_TYPES.items():
        spelling = {
            f.name: str(f.metadata.get("manifest") or f.name) for f in dataclasses.fields(cls)
        }
        for name in sorted(cls.REPLACE_FIELDS):
            forced.append(
                Forced(
                    kind=kind,
                    field=spelling[name],
                    effect=Effect.RESTART if kind is Kind.WORKER else Effect.REPLACE,
                )
            )
    return ChangeRules("baseline", tuple(forced))


#: The attributes every backend forces (the model's ``REPLACE_FIELDS``); the rules of a plan made
#: without a backend's declaration (unit tests). A backend's declaration extends it.
BASELINE = _baseline()
