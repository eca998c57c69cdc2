"""What the http.sys backend cannot change in place: its ``ChangeRules`` declaration.

Owns: ``CHANGE_RULES``. A module of its own, importing no ``ctypes`` code, so that a plan made on
any host (``plan --against`` in CI on Linux) reads it through ``backends.registry.change_rules``.
Must not import the rest of the backend.
"""

from __future__ import annotations

from orchestrator.model.ids import Kind
from orchestrator.plan.rules import BASELINE, ChangeRules, Effect, Forced

#: http.sys sets a request queue's DACL only when it creates the queue
#: (``HttpCreateRequestQueue``'s security attributes): a new ACL re-creates the queue, which
#: restarts the pools serving it (``resources.HttpSysResources._recreate_queue``).
CHANGE_RULES: ChangeRules = BASELINE.extended(
    "httpsys",
    Forced(
        kind=Kind.QUEUE,
        field="acl",
        effect=Effect.REPLACE,
        why="http.sys sets a queue's DACL only at creation: the queue is re-created",
    ),
)
