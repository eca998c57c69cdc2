"""The status document: built once from the controller's parts, and rendered for people.

Owns: ``status_document`` (the controller's parts → the document that ``orchestrator status
--json`` prints, the admin API's ``state`` serves and the metrics read; documented in
docs/status.md) and ``render_status`` (that document → tables). Builds and renders; reads nothing
itself (the controller passes the backend's status and the live state in). Must not import ``cli``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from orchestrator.model.desired import UrlGroup
from orchestrator.model.live import LiveState
from orchestrator.reconcile.manifests import ManifestTracker
from orchestrator.reconcile.reconciler import Result

#: How many of a rejected manifest's errors the text form lists (``--json`` has them all).
MAX_ERRORS_SHOWN = 10


def status_document(
    *,
    now: float,
    stopping: bool,
    pid: int,
    backend: str,
    backend_status: Mapping[str, object],
    manifest_path: str,
    tracker: ManifestTracker,
    generation: int,
    passes: int,
    last_result: Result | None,
    live: LiveState | None,
    previous: Mapping[str, object],
    metrics_address: str | None = None,
    dashboard_url: str | None = None,
    degraded: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    """The controller's state as one JSON-ready document.

    Args:
        now: the monotonic time of the snapshot (``_at``: when it was built, for throttling).
        stopping: the controller is shutting down.
        pid: the controller's process id.
        backend: the backend's name.
        backend_status: ``Backend.status()``; its keys (``workers``, ``pools``, ``queues``,
            ``listener``, ...) go to the top level, ``queues`` over the empty default.
        manifest_path: the manifest the controller was started on.
        tracker: which manifest runs, which is desired and which was rejected.
        generation: the reconciler's generation.
        passes: how many reconcile passes ran.
        last_result: the last pass's result (``None`` before the first).
        live: a fresh observation, for ``drift``; ``None`` keeps ``previous``'s ``drift``.
        previous: the document this one replaces.
        metrics_address: where ``/metrics`` is served, as bound (``None``: not served).
        dashboard_url: where the dashboard is served, as bound (``None``: not served).
        degraded: the guarantees the manifest in force asks for that this controller does not
            give (``controller.degraded``), each ``guarantee``, ``object``, ``field``, ``asked``,
            ``why``, ``required``, ``location``.

    Returns:
        The document: ``state``, ``pid``, ``backend``, ``manifest``, ``rejected``,
        ``generation``, ``reconcile``, ``metrics``, ``dashboard``, ``queues``, ``urlGroups``, the
        backend's keys and ``drift``.
    """
    rejected = tracker.rejected
    desired = tracker.desired.desired if tracker.desired else None
    doc: dict[str, object] = {
        "_at": now,
        "state": "stopping" if stopping else "running",
        "pid": pid,
        "backend": backend,
        "manifest": {
            "path": manifest_path,
            "sha256": tracker.running_sha256,
            "since": tracker.running_since or None,
            "desired_sha256": desired.manifest_sha256 if desired else "",
        },
        "rejected": {
            "sha256": rejected.sha256,
            "at": rejected.at,
            "stage": rejected.stage,
            "error": rejected.summary(),
            "errors": [d.render() for d in rejected.ordered()],
            "warnings": rejected.warnings,
        }
        if rejected
        else None,
        "generation": generation,
        "reconcile": {
            "passes": passes,
            "converged": last_result.converged if last_result else False,
            "failed": [
                {"step": o.step_id, "error": o.error}
                for o in (last_result.failed if last_result else ())
            ],
        },
        "metrics": {"address": metrics_address},
        "dashboard": {"url": dashboard_url} if dashboard_url else None,
        "degraded": list(degraded or []),
        "queues": [],
        "urlGroups": [],
        **backend_status,
    }
    if desired is not None:
        # A group whose step failed in the last pass (its port is taken, say) does not serve,
        # whatever the manifest asks: it shows as failing, with the backend's reason.
        failures = {o.key: o.error for o in (last_result.failed if last_result else ())}
        doc["urlGroups"] = [
            {
                "name": res.key.name,
                "queue": res.queue.name if res.queue else None,
                "urls": list(res.urls),
                "state": "failing" if res.key in failures else str(res.state),
                "reason": failures.get(res.key),
            }
            for res in desired.resources.values()
            if isinstance(res, UrlGroup)
        ]
    if live is not None:
        doc["drift"] = [
            {"address": f.address, "reason": f.reason, "detail": f.detail} for f in live.faults
        ]
    elif "drift" in previous:
        doc["drift"] = previous["drift"]
    return doc


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


def _address(bound: object, listener: dict[str, object]) -> str:
    """A bound address, with the one the manifest asked for when that said port 0."""
    for endpoint in _list(listener.get("endpoints")):
        asked = str(endpoint.get("address", ""))
        if endpoint.get("bound") == bound and asked.endswith(":0"):
            return f"{bound} (asked {asked})"
    return str(bound)


def _rejected(rejected: dict[str, object]) -> list[str]:
    """The rejected manifest: its errors first (a warning is never why it was rejected), then how
    many warnings it had (``status --json`` lists them)."""
    sha = str(rejected.get("sha256") or "").split("@", 1)[0][:12] or "(unreadable)"
    listed = [str(e) for e in _items(rejected.get("errors"))]
    warnings = int(str(rejected.get("warnings") or 0))
    errors = [e for e in listed if not _is_warning(e)] or [str(rejected.get("error"))]
    counts = plural(len(errors), "error") + (f", {plural(warnings, 'warning')}" if warnings else "")
    lines = [f"rejected manifest {sha} at {_clock(rejected.get('at'))} ({counts}):"]
    shown = errors[:MAX_ERRORS_SHOWN]
    lines += ["  " + e.split("\n", 1)[0] for e in shown]
    if len(errors) > len(shown):
        lines.append(f"  ... and {len(errors) - len(shown)} more (orchestrator status --json)")
    return lines


def _degraded(dropped: list[dict[str, object]]) -> list[str]:
    """The guarantees dropped (``--allow-degraded``) and the sandbox parts not applied."""
    if not dropped:
        return []
    required = sum(1 for d in dropped if d.get("required"))
    lines = [
        f"degraded: {plural(required, 'guarantee')} dropped (--allow-degraded)"
        if required
        else "degraded: sandbox parts this kernel cannot apply"
    ]
    for d in dropped:
        kind = "" if d.get("required") else "warning: "
        lines.append(
            f"  {kind}{d.get('object')}: {d.get('guarantee')} ({d.get('asked')}): {d.get('why')}"
        )
    return lines


def _sandbox(sandbox: object) -> str:
    """A worker's sandbox in a few characters: ``seccomp+landlock7``, ``seccomp``, ``none`` (``-``
    when the backend does not say, as http.sys's does not)."""
    if not isinstance(sandbox, dict):
        return "-"
    parts = []
    if sandbox.get("seccomp") == "filter":
        parts.append("seccomp")
    landlock = sandbox.get("landlock")
    if isinstance(landlock, dict) and landlock.get("applied"):
        parts.append(f"landlock{landlock.get('abi')}")
    return "+".join(parts) or "none"


def _is_warning(rendered: str) -> bool:
    first = rendered.split("\n", 1)[0]
    return first.startswith("warning: ") or ": warning: " in first


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def failing(state: Mapping[str, object]) -> list[str]:
    """What is failing in a status document, one line each: a rejected manifest, a step that
    failed in the last pass (a URL group that cannot be created, ...), a pool stopped by
    rapid-fail protection. Empty when everything runs as declared (``status`` exits 0)."""
    found: list[str] = []
    rejected = state.get("rejected")
    if isinstance(rejected, dict):
        found.append(f"manifest rejected: {rejected.get('error')}")
    reconcile = state.get("reconcile")
    if isinstance(reconcile, dict):
        found += [f"{f.get('step')}: {f.get('error')}" for f in _list(reconcile.get("failed"))]
    pools = state.get("pools")
    for name, info in sorted(pools.items()) if isinstance(pools, dict) else []:
        if isinstance(info, dict) and info.get("halted"):
            found.append(f"worker/{name} stopped: {info.get('halted')}")
    return found


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
        out += _rejected(rejected)
    out += _degraded(_list(state.get("degraded")))
    reconcile = state.get("reconcile") if isinstance(state.get("reconcile"), dict) else {}
    assert isinstance(reconcile, dict)
    for failure in _list(reconcile.get("failed")):
        out.append(f"failing: {failure.get('step')}: {failure.get('error')}")
    out.append("")
    queues = _list(state.get("queues"))
    if queues:
        out += _table(
            ["QUEUE", "STATE", "WAITING", "BACKLOG", "PATH"],
            [
                [
                    str(q.get("name")),
                    str(q.get("state")),
                    "-" if q.get("waiting") is None else str(q.get("waiting")),
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
                    " ".join(str(u) for u in _items(g.get("urls")))
                    + (f"  ({g.get('reason')})" if g.get("reason") else ""),
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
                _sandbox(w.get("sandbox")),
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
                    "-",
                    f"since {_clock(info.get('halted_since'))}: {info.get('halted')}",
                ]
            )
    if rows:
        out += _table(
            [
                "POOL",
                "PID",
                "USER",
                "STATE",
                "UPTIME",
                "RESTARTS",
                "HEALTH",
                "SANDBOX",
                "LAST EXIT",
            ],
            rows,
        )
        out.append("")
    listener = state.get("listener")
    if isinstance(listener, dict):
        pids = ", ".join(str(p) for p in _items(listener.get("pids")))
        addresses = ", ".join(_address(a, listener) for a in _items(listener.get("addresses")))
        out.append(
            f"listener: pids {pids or '-'}, user {listener.get('user')}, "
            f"addresses {addresses or '-'}, restarts {listener.get('restarts', 0)}, "
            f"core {listener.get('core') or '-'}, sandbox {_sandbox(listener.get('sandbox'))}"
        )
    drift = _list(state.get("drift"))
    if drift:
        out.append("")
        out.append("drift:")
        out += [f"  ! {d.get('address')}  {d.get('reason')}: {d.get('detail')}" for d in drift]
    return "\n".join(out) + "\n"
