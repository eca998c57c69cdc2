"""The plan as a pull-request comment: ``orchestrator plan --format markdown``.

Owns: ``render_markdown``. It reads the JSON form of a plan (``plan_document``, or the one a
controller returned, or the errored document of an invalid manifest), so a controller-backed plan, a
``--against`` plan and a ``--live`` plan render alike. Counts come first, then each change in a
collapsed ``<details>`` block whose summary line gives its action, address and reason, with its
changed attributes in a table. Every text that comes from a manifest (names, values, paths,
messages) is escaped for both HTML and GitHub-flavoured markdown, so a URL with ``|`` or a command
with ``<script>`` shows as written and cannot break the table or inject markup.
Pure: standard library and ``orchestrator.model`` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from orchestrator.model.serialize import flatten

#: Characters that markdown, HTML or a GFM table would interpret, written as numeric entities
#: (which GitHub renders as the character and never parses again). Escaped text never starts a
#: line, so the line-start markers (``#``, ``-``, ``1.``) need nothing.
_MARKDOWN_SPECIAL = "\\`*_[]|~<>&"
_SYMBOLS = {
    ("create",): "+",
    ("update",): "~",
    ("delete", "create"): "-/+",
    ("create", "delete"): "+/-",
    ("delete",): "-",
}
_WHAT = {
    ("create",): "will be created",
    ("update",): "will be updated in-place",
    ("delete", "create"): "must be replaced (destroy before create)",
    ("create", "delete"): "must be replaced (create before destroy)",
    ("delete",): "will be destroyed",
}


def escape(text: str) -> str:
    """``text`` safe inside HTML and markdown (also inside a table cell): every character markdown
    or HTML would interpret becomes a numeric entity, and a line break becomes ``<br>``."""
    out = []
    for ch in text:
        if ch in _MARKDOWN_SPECIAL:
            out.append(f"&#{ord(ch)};")
        elif ch == "\n":
            out.append("<br>")
        elif ch == "\r":
            continue
        else:
            out.append(ch)
    return "".join(out)


def _code(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"<code>{escape(text)}</code>"


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _counts(summary: Mapping[str, object]) -> str:
    names = ("add", "change", "replace", "destroy")
    text = ", ".join(f"**{_int(summary.get(n))}** to {n}" for n in names)
    drift = _int(summary.get("drift"))
    if drift:
        text += f", **{drift}** drifted"
    return text


def _path(parts: object) -> str:
    return ".".join(str(p) for p in _list(parts))


def _change_block(entry: Mapping[str, object], lines: list[str]) -> None:
    change = _dict(entry.get("change"))
    actions = tuple(str(a) for a in _list(change.get("actions")))
    symbol = _SYMBOLS.get(actions, "?")
    reason = entry.get("action_reason")
    address = str(entry.get("address", ""))
    summary = f"<code>{escape(symbol)}</code> <b>{escape(address)}</b> {_WHAT.get(actions, '')}"
    if isinstance(reason, str) and reason:
        summary += f" — {escape(reason)}"
    lines.append(f"<details><summary>{summary}</summary>")
    lines.append("")
    before = flatten(change.get("before")) if isinstance(change.get("before"), dict) else {}
    after = flatten(change.get("after")) if isinstance(change.get("after"), dict) else {}
    forced = {_path(p) for p in _list(change.get("replace_paths"))}
    paths = [_path(p) for p in _list(change.get("changed_paths"))]
    if actions == ("create",):
        paths = [p for p, v in after.items() if v not in (None, [], {})]
    elif actions == ("delete",):
        paths = [p for p, v in before.items() if v not in (None, [], {})]
    if paths:
        lines.append("| Attribute | Before | After | |")
        lines.append("|---|---|---|---|")
        for path in paths:
            old = _code(before[path]) if path in before and actions != ("create",) else ""
            new = _code(after[path]) if path in after and actions != ("delete",) else ""
            note = ""
            if path.split(".", 1)[0] in forced or path in forced:
                note = "forces restart" if entry.get("kind") == "worker" else "forces replacement"
            lines.append(f"| {_code(path)} | {old} | {new} | {note} |")
    else:
        cause = ", ".join(_path(p) for p in _list(change.get("replace_paths")))
        lines.append(
            f"No attribute of its own changes; it follows {escape(cause or 'its reason')}."
        )
    lines.append("")
    lines.append("</details>")


def _errored(doc: Mapping[str, object], lines: list[str]) -> None:
    diagnostics = [_dict(d) for d in _list(doc.get("diagnostics"))]
    errors = sum(1 for d in diagnostics if d.get("severity") == "error")
    lines.append(f"### orchestrator plan: the manifest is invalid ({errors} errors)")
    lines.append("")
    for d in diagnostics:
        where = ":".join(str(d[k]) for k in ("file", "line", "column") if d.get(k) is not None)
        text = f"- **{escape(str(d.get('severity', 'error')))}**"
        if where:
            text += f" {_code(where)}"
        if d.get("path"):
            text += f" ({_code(d.get('path'))})"
        text += f": {escape(str(d.get('message', '')))}"
        if d.get("hint"):
            text += f"<br>{escape(str(d.get('hint')))}"
        lines.append(text)
    lines.append("")


def render_markdown(doc: Mapping[str, object]) -> str:
    """A plan document (``plan_document`` or ``errored_document``) as a pull-request comment."""
    lines: list[str] = []
    if doc.get("errored"):
        _errored(doc, lines)
        return "\n".join(lines) + "\n"
    summary = _dict(doc.get("summary"))
    changes = [_dict(c) for c in _list(doc.get("resource_changes"))]
    manifest = _dict(doc.get("manifest"))
    live = _dict(doc.get("live"))
    if changes:
        lines.append(f"### orchestrator plan: {_counts(summary)}")
    else:
        lines.append("### orchestrator plan: no changes")
    lines.append("")
    sha = str(manifest.get("sha256", ""))[:12]
    live_sha = str(live.get("manifest_sha256", ""))[:12]
    lines.append(
        f"Backend {_code(doc.get('backend') or '-')} · desired manifest {_code(sha or '-')} · "
        f"live manifest {_code(live_sha or 'none')}"
    )
    lines.append("")
    if not changes:
        lines.append("Live state matches the manifest.")
    drift = [_dict(d) for d in _list(doc.get("resource_drift"))]
    if drift:
        lines.append("<details><summary>Drift: live state differs from the last apply</summary>")
        lines.append("")
        for d in drift:
            text = f"- {_code(d.get('address', ''))} {escape(str(d.get('reason', '')))}"
            if d.get("detail"):
                text += f": {escape(str(d.get('detail')))}"
            lines.append(text)
        lines.append("")
        lines.append("</details>")
        lines.append("")
    for entry in changes:
        _change_block(entry, lines)
        lines.append("")
    unchanged = len(_list(doc.get("unchanged")))
    if changes and unchanged:
        lines.append(f"{unchanged} unchanged object{'s' if unchanged != 1 else ''} not shown.")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
