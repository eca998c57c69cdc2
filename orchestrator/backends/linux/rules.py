"""What the Linux backend cannot change in place: its ``ChangeRules`` declaration.

Owns: ``CHANGE_RULES``. A module of its own, importing no OS code, so that a plan made without a
controller (``plan --against``, ``plan --live``) reads it through ``backends.registry.change_rules``
without constructing the backend. Must not import the rest of the backend.
"""

from __future__ import annotations

from orchestrator.plan.rules import BASELINE, ChangeRules

#: On Linux a queue is a Unix socket the listener connects to: its length, state, 503 verbosity
#: and ACL (the broker's grants) change in place; a URL group is a routing-table entry pushed to
#: the listener. So the baseline is the whole declaration: only what a process carries from its
#: exec (command, env, cwd, identity, limits, queue) restarts a pool.
CHANGE_RULES: ChangeRules = BASELINE.extended("linux")
