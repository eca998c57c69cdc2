"""A saved plan (``plan --out``) as text, from its JSON document alone.

Owns: ``render_saved`` (the document → the terraform-style text ``orchestrator show PLANFILE``
prints). It needs no manifest, no backend and no controller: everything comes from the document
(format 1.x, docs/plan-format.md), so a plan saved in CI can be read anywhere. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.plan.steps import Op

#: Terraform's ``change.actions`` → the symbol ``plan`` prints for that step (from ``Op`` itself,
#: so the two forms cannot disagree).
_SYMBOLS: dict[tuple[str, ...], str] = {op.actions: op.symbol for op in Op}


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _paths(value: object) -> str:
    return ", ".join(".".join(str(p) for p in _list(path)) for path in _list(value))


def render_saved(doc: Mapping[str, object], source: str = "") -> str:
    """The text form of a saved plan document.

    Args:
        doc: the plan document (``plan_document``), as read from the file.
        source: the file's name, for the heading.

    Returns:
        A heading (file, backend, the live state it was made against, the manifest), one block per
        change (symbol, address, why; the fields that force a replacement or changed), drift, and
        the summary line.
    """
    manifest = _dict(doc.get("manifest"))
    live = _dict(doc.get("live"))
    out: list[str] = []
    if source:
        out.append(f"Saved plan: {source}")
    applied = str(live.get("manifest_sha256") or "")
    against = (
        f"generation {live.get('generation')} (manifest {applied[:12]})"
        if applied
        else f"generation {live.get('generation', 0)} (nothing applied)"
    )
    out.append(
        f"Backend: {doc.get('backend') or '-'}   Live: {against}   "
        f"Desired: manifest {str(manifest.get('sha256') or '')[:12] or '-'}"
        f" ({manifest.get('path') or '-'})"
    )
    out.append("")
    drift = [_dict(d) for d in _list(doc.get("resource_drift"))]
    if drift:
        out.append("Note: live state differs from the last apply (drift):")
        for item in drift:
            line = f"  ! {item.get('address')}   {item.get('reason')}"
            out.append(f"{line}: {item.get('detail')}" if item.get("detail") else line)
        out.append("")
    changes = [_dict(c) for c in _list(doc.get("resource_changes"))]
    for entry in changes:
        change = _dict(entry.get("change"))
        actions = tuple(str(a) for a in _list(change.get("actions")))
        symbol = _SYMBOLS.get(actions, "?")
        line = f"  {symbol} {entry.get('address')}"
        if entry.get("action_reason"):
            line += f"   # {entry.get('action_reason')}"
        out.append(line)
        forced = _paths(change.get("replace_paths"))
        changed = _paths(change.get("changed_paths"))
        if forced:
            out.append(f"      forces replacement: {forced}")
        elif changed:
            out.append(f"      changed: {changed}")
    if changes:
        out.append("")
    summary = _dict(doc.get("summary"))
    counts = {k: int(str(summary.get(k, 0))) for k in ("add", "change", "replace", "destroy")}
    if not doc.get("applyable") and not changes:
        out.append("No changes. Live state matches the manifest.")
    else:
        out.append(
            f"Plan: {counts['add']} to add, {counts['change']} to change, "
            f"{counts['replace']} to replace, {counts['destroy']} to destroy."
        )
    return "\n".join(out) + "\n"
