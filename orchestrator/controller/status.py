"""Rendering ``orchestrator status`` for people.

Owns: ``render_status`` (the controller's state snapshot → tables). The JSON form is the snapshot
itself (``status --json``, documented in docs/status.md).
"""

from __future__ import annotations

import time


def _ago(seconds: object) -> str:
    try:
        s = float(str(seconds))
    except ValueError:
        return "-"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def _clock(ts: object) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(ts))))
    except (ValueError, OverflowError):
        return "-"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _list(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def render_status(state: dict[str, object]) -> str:
    """The human form of a controller's state."""
    out: list[str] = []
    manifest = state.get("manifest") if isinstance(state.get("manifest"), dict) else {}
    assert isinstance(manifest, dict)
    out.append(
        f"Controller pid {state.get('pid')}, backend {state.get('backend')}, "
        f"state {state.get('state')}, generation {state.get('generation')}"
    )
    running = str(manifest.get("sha256") or "")
    if running:
        out.append(
            f"running manifest {running[:12]} since {_clock(manifest.get('since'))}"
            f" ({manifest.get('path')})"
        )
    else:
        out.append(f"no manifest applied yet ({manifest.get('path')})")
    rejected = state.get("rejected")
    if isinstance(rejected, dict):
        sha = str(rejected.get("sha256") or "")[:12] or "(unreadable)"
        out.append(
            f"rejected manifest {sha} at {_clock(rejected.get('at'))}: {rejected.get('error')}"
        )
    reconcile = state.get("reconcile") if isinstance(state.get("reconcile"), dict) else {}
    assert isinstance(reconcile, dict)
    for failure in _list(reconcile.get("failed")):
        out.append(f"failing: {failure.get('step')}: {failure.get('error')}")
    out.append("")
    queues = _list(state.get("queues"))
    if queues:
        out += _table(
            ["QUEUE", "STATE", "BACKLOG", "PATH"],
            [
                [
                    str(q.get("name")),
                    str(q.get("state")),
                    str(q.get("backlog") or "-"),
                    str(q.get("path")),
                ]
                for q in queues
            ],
        )
        out.append("")
    groups = _list(state.get("urlGroups"))
    if groups:
        out += _table(
            ["URL GROUP", "QUEUE", "STATE", "URLS"],
            [
                [
                    str(g.get("name")),
                    str(g.get("queue")),
                    str(g.get("state", "")),
                    " ".join(str(u) for u in _items(g.get("urls"))),
                ]
                for g in groups
            ],
        )
        out.append("")
    pools = state.get("pools") if isinstance(state.get("pools"), dict) else {}
    assert isinstance(pools, dict)
    rows = []
    for w in _list(state.get("workers")):
        rows.append(
            [
                str(w.get("pool")),
                str(w.get("pid")),
                str(w.get("user")),
                str(w.get("state")),
                _ago(w.get("uptime_s")),
                str(w.get("restarts")),
                str(w.get("health") or "-"),
                str(w.get("last_exit") or "-"),
            ]
        )
    for name, info in sorted(pools.items()):
        if isinstance(info, dict) and info.get("halted"):
            rows.append(
                [
                    name,
                    "-",
                    "-",
                    "STOPPED",
                    "-",
                    str(info.get("restarts")),
                    "-",
                    f"since {_clock(info.get('halted_since'))}: {info.get('halted')}",
                ]
            )
    if rows:
        out += _table(
            ["POOL", "PID", "USER", "STATE", "UPTIME", "RESTARTS", "HEALTH", "LAST EXIT"], rows
        )
        out.append("")
    listener = state.get("listener")
    if isinstance(listener, dict):
        pids = ", ".join(str(p) for p in _items(listener.get("pids")))
        addresses = ", ".join(str(a) for a in _items(listener.get("addresses")))
        out.append(
            f"listener: pids {pids or '-'}, user {listener.get('user')}, "
            f"addresses {addresses or '-'}, restarts {listener.get('restarts', 0)}, "
            f"core {listener.get('core') or '-'}"
        )
    drift = _list(state.get("drift"))
    if drift:
        out.append("")
        out.append("drift:")
        out += [f"  ! {d.get('address')}  {d.get('reason')}: {d.get('detail')}" for d in drift]
    return "\n".join(out) + "\n"
