"""The diff: desired state and live state in, an ordered ``Plan`` out.

Owns: ``make_plan`` (alias ``diff``), field-level changes, the replace rules (a field the backend
declares in its ``ChangeRules`` forces a replacement, in the kind's ``REPLACE_STYLE``; a pool's is a
restart), the propagation of a
replacement to the objects that hold the replaced one, drift, dependency edges and apply waves.
Edges come only from typed references (``refs()``); deletes run against the inverted edges.
Pure: standard library, ``orchestrator.model`` and ``orchestrator.errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.errors import PlanError
from orchestrator.model.desired import DesiredState, ReplaceStyle, Resource
from orchestrator.model.ids import KIND_RANK, Key, Kind
from orchestrator.model.live import Fault, LiveState, Repair
from orchestrator.model.serialize import flatten, to_data, to_display
from orchestrator.plan.rules import BASELINE, ChangeRules
from orchestrator.plan.steps import DriftItem, FieldChange, Op, Plan, Step

_MISSING = object()
_REPAIR_RANK = {Repair.NONE: 0, Repair.UPDATE: 1, Repair.REPLACE: 2}


def field_changes(
    before: Resource, after: Resource, rules: ChangeRules = BASELINE
) -> tuple[FieldChange, ...]:
    """Every attribute that differs, by dotted manifest path, in display form.

    An attribute forces a replacement (a restart, for a pool) when the backend's ``rules`` declare
    its top-level field.
    """
    bd, ad = flatten(to_data(before)), flatten(to_data(after))
    bv, av = flatten(to_display(before)), flatten(to_display(after))
    kind = after.key.kind
    out = []
    for path in sorted(set(bd) | set(ad)):
        if bd.get(path, _MISSING) == ad.get(path, _MISSING):
            continue
        out.append(
            FieldChange(
                path=path,
                before=bv.get(path),
                after=av.get(path),
                forces=rules.effect(kind, path.split(".", 1)[0]) is not None,
            )
        )
    return tuple(out)


@dataclass(slots=True)
class _Proto:
    op: Op
    before: Resource | None
    after: Resource | None
    changes: tuple[FieldChange, ...] = ()
    replace_paths: tuple[str, ...] = ()
    reason: str = ""


def _replace_op(resource: Resource) -> Op:
    return Op.REPLACE_CBD if resource.REPLACE_STYLE is ReplaceStyle.CREATE_FIRST else Op.REPLACE


def _faults_by_key(faults: tuple[Fault, ...]) -> dict[Key, Repair]:
    out: dict[Key, Repair] = {}
    for f in faults:
        current = out.get(f.key, Repair.NONE)
        if _REPAIR_RANK[f.repair] > _REPAIR_RANK[current]:
            out[f.key] = f.repair
        else:
            out.setdefault(f.key, current)
    return out


def _proto_for(
    key: Key,
    d: Resource | None,
    live: Resource | None,
    applied: bool,
    repair: Repair,
    rules: ChangeRules,
) -> _Proto | None:
    if d is not None and live is None:
        return _Proto(Op.CREATE, None, d, reason="create_because_missing" if applied else "")
    if live is not None and d is None:
        return _Proto(Op.DELETE, live, None, reason="delete_because_not_in_manifest")
    assert d is not None
    assert live is not None
    if d == live:
        # The common case at scale: skip the field-level walk entirely.
        changes: tuple[FieldChange, ...] = ()
    else:
        changes = field_changes(live, d, rules)
    forced = tuple(c.path for c in changes if c.forces)
    if forced:
        reason = (
            "restart_because_spec_changed"
            if key.kind is Kind.WORKER
            else "replace_because_cannot_update"
        )
        return _Proto(_replace_op(d), live, d, changes, forced, reason)
    if repair is Repair.REPLACE:
        return _Proto(_replace_op(d), live, d, changes, (), "replace_because_drifted")
    if changes:
        return _Proto(Op.UPDATE, live, d, changes, (), "update_because_spec_changed")
    if repair is Repair.UPDATE:
        return _Proto(Op.UPDATE, live, d, (), (), "update_because_drifted")
    return None


def _propagate_replacements(
    protos: dict[Key, _Proto], desired: Mapping[Key, Resource], live: Mapping[Key, Resource]
) -> None:
    """An object that holds a replaced (or re-created) one must follow it.

    Workers hold their queue's socket, so they are replaced too (create first); a URL group is
    re-bound in place; anything else is replaced in its kind's style.
    """
    held_keys = _held(live)
    changed = True
    while changed:
        changed = False
        moved = {
            k
            for k, p in protos.items()
            if p.op in (Op.REPLACE, Op.REPLACE_CBD) or (p.op is Op.CREATE and k in held_keys)
        }
        for key, held in live.items():
            want = desired.get(key)
            if want is None:
                continue
            gone = sorted(held.refs() & want.refs() & moved, key=Key.sort_key)
            if not gone:
                continue
            current = protos.get(key)
            cause = gone[0].kind
            if key.kind is Kind.URLGROUP:
                if current is None:
                    protos[key] = _Proto(
                        Op.UPDATE, held, want, reason=f"update_because_{cause}_replaced"
                    )
                    changed = True
                continue
            if current is None or current.op is Op.UPDATE:
                protos[key] = _Proto(
                    _replace_op(want),
                    held,
                    want,
                    current.changes if current else (),
                    (str(cause),),
                    f"replace_because_{cause}_replaced"
                    if key.kind is not Kind.WORKER
                    else f"restart_because_{cause}_replaced",
                )
                changed = True


def _held(live: Mapping[Key, Resource]) -> set[Key]:
    """Keys that some live object references."""
    out: set[Key] = set()
    for res in live.values():
        out |= res.refs()
    return out


def _requirements(
    protos: dict[Key, _Proto], desired: Mapping[Key, Resource], live: Mapping[Key, Resource]
) -> dict[Key, set[Key]]:
    req: dict[Key, set[Key]] = {k: set() for k in protos}
    for key, p in protos.items():
        if p.op is not Op.DELETE and p.after is not None:
            # Create/update/replace after what the new definition references.
            req[key] |= {r for r in p.after.refs() if r in protos and protos[r].op is not Op.DELETE}
        if p.op is Op.DELETE:
            # Inverted edges: whatever holds this object now lets go of it first. A destroy-first
            # replacement takes no inverted edges: its holders follow it (they are replaced or
            # re-bound after it), and waiting for them would be a cycle.
            for other, held in live.items():
                if other == key or key not in held.refs() or other not in protos:
                    continue
                want = desired.get(other)
                if protos[other].op is Op.DELETE or want is None or key not in want.refs():
                    req[key].add(other)
    return req


def _waves(req: dict[Key, set[Key]]) -> dict[Key, int]:
    wave: dict[Key, int] = {}
    state: dict[Key, int] = {}  # 1 visiting, 2 done

    def visit(key: Key, path: list[Key]) -> int:
        if state.get(key) == 2:
            return wave[key]
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            raise PlanError(
                "dependency cycle in the plan: " + " -> ".join(str(k) for k in cycle),
                "This is a bug in the plan's dependency rules; please report it.",
            )
        state[key] = 1
        deps = sorted(req[key], key=Key.sort_key)
        wave[key] = 1 + max((visit(d, [*path, key]) for d in deps), default=-1)
        state[key] = 2
        return wave[key]

    for key in sorted(req, key=Key.sort_key):
        visit(key, [])
    return wave


def _drift(desired: DesiredState, live: LiveState) -> tuple[DriftItem, ...]:
    items: list[DriftItem] = []
    for key, applied in live.applied.items():
        if desired.resources.get(key) != applied:
            continue  # the manifest changed this object: an ordinary change, not drift
        observed = live.resources.get(key)
        if observed is None:
            items.append(
                DriftItem(
                    address=str(key),
                    key=key,
                    reason="deleted_outside",
                    detail="no longer exists; will be created again",
                )
            )
        elif observed != applied:
            items.append(
                DriftItem(
                    address=str(key),
                    key=key,
                    reason="changed_outside",
                    detail="changed outside orchestrator; will be put back",
                    changes=field_changes(applied, observed),
                )
            )
    items.extend(
        DriftItem(address=f.address, key=f.key, reason=f.reason, detail=f.detail)
        for f in live.faults
    )
    return tuple(sorted(items, key=lambda i: (i.key.sort_key(), i.address)))


def make_plan(desired: DesiredState, live: LiveState, rules: ChangeRules = BASELINE) -> Plan:
    """Diff ``desired`` against ``live`` into an ordered plan.

    Args:
        desired: what the manifest asks for.
        live: what the backend observed, with what was last applied and any faults.
        rules: the backend's declaration of what it cannot change in place
            (``Capabilities.changes``); the baseline every backend shares when not given.

    Returns:
        The plan: steps in apply order with their waves, drift, and unchanged objects.

    Raises:
        PlanError: the dependency rules produced a cycle (a bug).
    """
    repairs = _faults_by_key(live.faults)
    protos: dict[Key, _Proto] = {}
    unchanged: list[Key] = []
    for key in sorted(set(desired.resources) | set(live.resources), key=Key.sort_key):
        proto = _proto_for(
            key,
            desired.resources.get(key),
            live.resources.get(key),
            key in live.applied,
            repairs.get(key, Repair.NONE),
            rules,
        )
        if proto is None:
            unchanged.append(key)
        else:
            protos[key] = proto
    _propagate_replacements(protos, desired.resources, live.resources)
    unchanged = [k for k in unchanged if k not in protos]
    req = _requirements(protos, desired.resources, live.resources)
    waves = _waves(req)

    ids = {key: f"{p.op.value} {key}" for key, p in protos.items()}
    steps = [
        Step(
            id=ids[key],
            op=p.op,
            key=key,
            before=p.before,
            after=p.after,
            changes=p.changes,
            replace_paths=p.replace_paths,
            reason=p.reason,
            requires=frozenset(ids[r] for r in req[key]),
            wave=waves[key],
        )
        for key, p in protos.items()
    ]
    steps.sort(key=lambda s: (s.wave, KIND_RANK[s.key.kind], s.key.name))
    return Plan(
        steps=tuple(steps),
        drift=_drift(desired, live),
        unchanged=tuple(unchanged),
        base_fingerprint=live.fingerprint(),
        manifest_sha256=desired.manifest_sha256,
        live_manifest_sha256=live.manifest_sha256,
        generation=live.generation,
        backend=live.backend,
    )


diff = make_plan
