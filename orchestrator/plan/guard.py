"""The mass-delete guard: a plan that would empty the host, or delete most of it, needs consent.

Owns: ``check_mass_delete``. A truncated manifest read mid-save looks exactly like "delete
everything"; this guard is what keeps such a read from stopping every service.
Pure: standard library, ``orchestrator.model``, ``orchestrator.errors``.
"""

from __future__ import annotations

from orchestrator.errors import PlanError
from orchestrator.plan.steps import Op, Plan


def mass_delete(plan: Plan) -> str | None:
    """What the plan deletes when that is too much (``"every object"``, ``"4 of 7 objects"``)."""
    total = len(plan.unchanged) + sum(1 for s in plan.steps if s.before is not None)
    deletes = sum(1 for s in plan.steps if s.op is Op.DELETE)
    if total == 0 or deletes == 0:
        return None
    if deletes == total or deletes * 2 > total:
        return "every object" if deletes == total else f"{deletes} of {total} objects"
    return None


def check_mass_delete(plan: Plan, *, allow: bool) -> None:
    """Refuse a plan that deletes every live object, or more than half of them.

    Args:
        plan: the plan (it knows every live object: those it changes and those it leaves).
        allow: the operator's consent (``--allow-mass-delete``).

    Raises:
        PlanError: the plan deletes too much and ``allow`` is false.
    """
    what = mass_delete(plan)
    if what is not None and not allow:
        raise PlanError(
            f"refusing to delete {what} (mass-delete guard)",
            "A manifest that lost most of its objects is more often a truncated or half-saved "
            "file than an intent. Check the manifest; if the deletion is intended, pass "
            "--allow-mass-delete.",
        )
