"""The two faces of a plan: terraform-style text for people and a versioned JSON shape for tools.

Owns: ``render_text``, ``render_json`` (``format_version`` 1.0, documented in docs/plan-format.md
and schemas/plan.schema.json) and ``read_saved_plan`` for ``apply PLANFILE``. Secrets in ``env``
are masked in both forms. Colour is used only when the caller says so (a TTY).
Pure: standard library, ``orchestrator.model``, ``orchestrator.errors``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from orchestrator.errors import PlanError
from orchestrator.model.desired import Resource, Session, WorkerPool
from orchestrator.model.ids import Kind
from orchestrator.model.serialize import flatten, to_data, to_display
from orchestrator.model.units import format_duration
from orchestrator.plan.guard import mass_delete
from orchestrator.plan.steps import DriftItem, Op, Plan, Step

FORMAT_VERSION = "1.0"

_COLOURS = {"+": "32", "~": "33", "-": "31", "-/+": "35", "+/-": "35", "!": "33", "#": "2"}
_HEADERS = {
    Op.CREATE: "will be created",
    Op.UPDATE: "will be updated in-place",
    Op.REPLACE: "must be replaced (destroy before create)",
    Op.REPLACE_CBD: "must be replaced (create before destroy)",
    Op.DELETE: "will be destroyed",
}


#: Plain words for steps that change no attribute of their own.
_WHY = {
    "restart_because_queue_replaced": "its queue is created again: processes restart on the new socket",
    "update_because_queue_replaced": "re-bound to its re-created queue",
    "replace_because_session_replaced": "follows the replacement of its session",
    "restart_because_session_replaced": "follows the replacement of its session",
    "update_because_session_replaced": "follows the replacement of its session",
    "update_because_drifted": "puts back what was changed outside orchestrator",
    "replace_because_drifted": "replaces what was broken outside orchestrator",
}


def _v(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class _Out:
    def __init__(self, colour: bool) -> None:
        self.lines: list[str] = []
        self.colour = colour

    def paint(self, symbol: str, text: str) -> str:
        code = _COLOURS.get(symbol)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def add(self, text: str = "") -> None:
        self.lines.append(text)


def _label(step: Step) -> str:
    return f'{step.key.kind} "{step.key.name}"'


def _leaves(resource: Resource) -> dict[str, object]:
    return {k: v for k, v in flatten(to_display(resource)).items() if v not in (None, [], {})}


def _step_block(out: _Out, step: Step) -> None:
    header = f"  # {step.key} {_HEADERS[step.op]}"
    if step.reason and step.op in (Op.REPLACE, Op.REPLACE_CBD, Op.DELETE):
        header += f" (reason: {step.reason})"
    out.add(out.paint("#", header))
    sym = step.op.symbol
    out.add(f"{out.paint(sym, f'{sym:>3}')} {_label(step)} {{")
    forces_word = "forces restart" if step.key.kind is Kind.WORKER else "forces replacement"
    if step.op is Op.CREATE and step.after is not None:
        for path, value in _leaves(step.after).items():
            out.add(f"      {out.paint('+', '+')} {path} = {_v(value)}")
    elif step.op is Op.DELETE and step.before is not None:
        for path, value in _leaves(step.before).items():
            out.add(f"      {out.paint('-', '-')} {path} = {_v(value)}")
    else:
        for change in step.changes:
            if change.before is None:
                line = f"      {out.paint('+', '+')} {change.path} = {_v(change.after)}"
            elif change.after is None:
                line = f"      {out.paint('-', '-')} {change.path} = {_v(change.before)}"
            else:
                line = (
                    f"      {out.paint('~', '~')} {change.path} = {_v(change.before)} -> "
                    f"{_v(change.after)}"
                )
            if change.forces:
                line += f"  {out.paint('#', '# ' + forces_word)}"
            out.add(line)
        if not step.changes and step.reason:
            out.add(out.paint("#", f"        # {_WHY.get(step.reason, step.reason)}"))
        if step.after is not None:
            total = len(_leaves(step.after))
            hidden = max(total - len(step.changes), 0)
            if hidden:
                out.add(out.paint("#", f"        # ({hidden} unchanged attributes hidden)"))
    out.add("    }")
    out.add()


def _order_note(step: Step) -> str:
    res = step.after or step.before
    if not isinstance(res, WorkerPool):
        return ""
    up = format_duration(res.startup_time_limit_s)
    if step.op is Op.REPLACE_CBD:
        down = (
            format_duration(step.before.shutdown_time_limit_s)
            if isinstance(step.before, WorkerPool)
            else up
        )
        return f" (start new, wait healthy <={up}, then stop old <={down})"
    if step.op is Op.CREATE:
        return f" (wait healthy <={up})"
    if step.op is Op.DELETE:
        return f" (drain <={format_duration(res.shutdown_time_limit_s)})"
    return ""


def _drift_line(item: DriftItem) -> str:
    text = f"  ! {item.address}   {item.reason}"
    if item.detail:
        text += f": {item.detail}"
    for change in item.changes:
        text += f"\n      {change.path} = {_v(change.before)} -> {_v(change.after)}"
    return text


def summary_line(plan: Plan) -> str:
    """``Plan: 2 to add, 1 to change, 1 to replace, 0 to destroy.`` (or the no-changes sentence)."""
    s = plan.summary()
    if plan.is_empty:
        text = "No changes. Live state matches the manifest."
    else:
        text = (
            f"Plan: {s['add']} to add, {s['change']} to change, {s['replace']} to replace, "
            f"{s['destroy']} to destroy."
        )
    if s["drift"]:
        text += f"  ({s['drift']} drifted object{'s' if s['drift'] != 1 else ''})"
    return text


def render_text(plan: Plan, *, colour: bool = False) -> str:
    """The human form of a plan (terraform style)."""
    out = _Out(colour)
    live = (
        f"generation {plan.generation} (manifest {plan.live_manifest_sha256[:12]})"
        if plan.live_manifest_sha256
        else f"generation {plan.generation} (nothing applied)"
    )
    desired = f"manifest {plan.manifest_sha256[:12]}" if plan.manifest_sha256 else "empty"
    out.add(f"Backend: {plan.backend or '-'}   Live: {live}   Desired: {desired}")
    out.add()
    if plan.drift:
        out.add("Note: live state differs from the last apply (drift):")
        for item in plan.drift:
            out.add(out.paint("!", _drift_line(item)))
        out.add()
    if not plan.is_empty:
        out.add("orchestrator will perform the following actions:")
        out.add()
        for step in plan.steps:
            _step_block(out, step)
        if plan.unchanged:
            n = len(plan.unchanged)
            out.add(out.paint("#", f"  # ({n} unchanged object{'s' if n != 1 else ''} hidden)"))
            out.add()
        out.add("Apply order:")
        for index, wave in enumerate(plan.waves):
            names = ", ".join(f"{s.key}{_order_note(s)}" for s in wave)
            out.add(f"  wave {index}: {names}")
        out.add()
    out.add(summary_line(plan))
    too_much = mass_delete(plan)
    if too_much:
        out.add()
        out.add(
            out.paint(
                "-",
                f"Warning: this plan deletes {too_much}; apply refuses it unless given "
                "--allow-mass-delete.",
            )
        )
    return "\n".join(out.lines) + "\n"


def _paths(paths: tuple[str, ...]) -> list[list[str]]:
    return [p.split(".") for p in paths]


def _body(resource: Resource | None) -> dict[str, object] | None:
    return None if resource is None else to_data(resource, mask_secrets=True)


def plan_document(
    plan: Plan, *, manifest_path: str = "", diagnostics: list[dict[str, object]] | None = None
) -> dict[str, object]:
    """The JSON form of a plan as plain data (format_version 1.0)."""
    changes = []
    for step in plan.steps:
        entry: dict[str, object] = {
            "address": str(step.key),
            "kind": str(step.key.kind),
            "name": step.key.name,
            "wave": step.wave,
            "change": {
                "actions": list(step.op.actions),
                "before": _body(step.before),
                "after": _body(step.after),
                "replace_paths": _paths(step.replace_paths),
                "changed_paths": [c.path.split(".") for c in step.changes],
            },
            "requires": sorted(step.requires),
        }
        if step.reason:
            entry["action_reason"] = step.reason
        changes.append(entry)
    return {
        "format_version": FORMAT_VERSION,
        "backend": plan.backend,
        "manifest": {"path": manifest_path, "sha256": plan.manifest_sha256},
        "live": {
            "generation": plan.generation,
            "manifest_sha256": plan.live_manifest_sha256,
            "fingerprint": plan.base_fingerprint,
        },
        "resource_drift": [
            {
                "address": d.address,
                "kind": str(d.key.kind),
                "name": d.key.name,
                "reason": d.reason,
                "detail": d.detail,
                "changed_paths": [c.path.split(".") for c in d.changes],
            }
            for d in plan.drift
        ],
        "resource_changes": changes,
        "apply_order": [
            {"wave": i, "addresses": [str(s.key) for s in wave]}
            for i, wave in enumerate(plan.waves)
        ],
        "unchanged": [str(k) for k in plan.unchanged],
        "summary": plan.summary(),
        "applyable": not plan.is_empty,
        "errored": False,
        "diagnostics": diagnostics or [],
    }


def errored_document(
    diagnostics: list[dict[str, object]], *, manifest_path: str = ""
) -> dict[str, object]:
    """The JSON form of ``plan`` on a manifest that cannot be planned: the same shape as a plan
    (so a reader needs one schema), nothing to apply, ``errored`` true and every diagnostic
    (``Diagnostic.to_json()``: file, line, column, path, severity, message, hint)."""
    return {
        "format_version": FORMAT_VERSION,
        "backend": "",
        "manifest": {"path": manifest_path, "sha256": ""},
        "live": {"generation": 0, "manifest_sha256": "", "fingerprint": ""},
        "resource_drift": [],
        "resource_changes": [],
        "apply_order": [],
        "unchanged": [],
        "summary": {"add": 0, "change": 0, "replace": 0, "destroy": 0, "drift": 0},
        "applyable": False,
        "errored": True,
        "diagnostics": diagnostics,
    }


def render_json(plan: Plan, *, manifest_path: str = "") -> str:
    """The JSON form of a plan as text."""
    return json.dumps(plan_document(plan, manifest_path=manifest_path), indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """What ``apply PLANFILE`` needs from a saved plan to refuse a stale one."""

    manifest_path: str
    manifest_sha256: str
    live_fingerprint: str
    summary: dict[str, int]
    backend: str


def read_saved_plan(text: str, source: str) -> SavedPlan:
    """Parse a plan saved with ``plan --out``.

    Raises:
        PlanError: the file is not a plan, or its major format version is not ours.
    """
    try:
        doc = json.loads(text)
        version = str(doc["format_version"])
        manifest = doc["manifest"]
        live = doc["live"]
        summary = {str(k): int(v) for k, v in dict(doc["summary"]).items()}
        saved = SavedPlan(
            str(manifest["path"]),
            str(manifest["sha256"]),
            str(live["fingerprint"]),
            summary,
            str(doc.get("backend", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PlanError(
            f"{source}: not a saved plan",
            "Save one with: orchestrator plan PATH --out FILE",
        ) from exc
    if doc.get("errored"):
        raise PlanError(
            f"{source}: an errored plan (its manifest was invalid): there is nothing to apply",
            "Fix the manifest, then: orchestrator plan PATH --out FILE",
        )
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise PlanError(
            f"{source}: plan format {version} is not supported (this version reads "
            f"{FORMAT_VERSION.split('.')[0]}.x)"
        )
    if not saved.manifest_path:
        raise PlanError(f"{source}: the plan does not say which manifest it was made from")
    return saved


def session_of(plan: Plan) -> Session | None:
    """The desired session in a plan, if it touches one."""
    for step in plan.steps:
        if isinstance(step.after, Session):
            return step.after
    return None
