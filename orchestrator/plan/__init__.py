"""Plans: the pure diff of desired and live state into ordered steps, and its renderings.

Owns: ``Op``, ``Step``, ``Plan``, ``diff``/``make_plan``, the mass-delete guard, and the text and JSON
forms of a plan. Pure: imports only the standard library, ``orchestrator.model`` and
``orchestrator.errors``; no I/O and no time.
"""

from orchestrator.plan.diff import diff, make_plan
from orchestrator.plan.guard import check_mass_delete
from orchestrator.plan.steps import DriftItem, FieldChange, Op, Plan, Step

__all__ = [
    "DriftItem",
    "FieldChange",
    "Op",
    "Plan",
    "Step",
    "check_mass_delete",
    "diff",
    "make_plan",
]
