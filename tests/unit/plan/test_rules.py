"""Change rules: a backend's declaration decides what a plan replaces or restarts (issue 13 item 7)."""

from __future__ import annotations

import pytest

from orchestrator.backends.fake import FakeBackend
from orchestrator.backends.registry import change_rules
from orchestrator.model import Kind, Principal
from orchestrator.model.desired import PrincipalKind
from orchestrator.plan import Op, make_plan
from orchestrator.plan.rules import BASELINE, ChangeRules, Effect, Forced
from tests.support.states import desired, group, live, pool, queue, session

ALICE = (Principal(kind=PrincipalKind.USER, name="alice"),)


def _site(**api_queue: object) -> object:
    return desired(
        session(),
        queue("api", **api_queue),
        group("api", "api", "http://+:8080/api/"),
        pool("api", "api", "app"),
    )


def _acl_plan(backend: str) -> dict[str, tuple[Op, str]]:
    before, after = _site(), _site(acl=ALICE)
    plan = make_plan(
        after, live(*before.resources.values(), backend=backend), change_rules(backend)
    )  # type: ignore[attr-defined]
    return {str(s.key): (s.op, s.reason) for s in plan.steps}


def test_an_acl_change_on_httpsys_replaces_the_queue_and_restarts_its_pool() -> None:
    """The issue's case: http.sys re-creates the queue, so the plan says so (not ``~``)."""
    assert {
        "queue/api": (Op.REPLACE, "replace_because_cannot_update"),
        "urlgroup/api": (Op.UPDATE, "update_because_queue_replaced"),
        "worker/api": (Op.REPLACE_CBD, "restart_because_queue_replaced"),
    } == _acl_plan("httpsys")


def test_an_acl_change_on_linux_is_an_update_in_place() -> None:
    """On Linux the broker's grants change; the socket and the processes stay."""
    assert {"queue/api": (Op.UPDATE, "update_because_spec_changed")} == _acl_plan("linux")


def test_the_forced_attribute_is_recorded_as_a_replace_path() -> None:
    """replace_paths names the declared attribute, and its change is marked as forcing."""
    before, after = _site(), _site(acl=ALICE)
    plan = make_plan(after, live(*before.resources.values()), change_rules("httpsys"))  # type: ignore[attr-defined]
    step = plan.step("replace queue/api")
    assert ("acl",) == step.replace_paths
    assert [("acl", True)] == [(c.path, c.forces) for c in step.changes]


@pytest.mark.parametrize("name", ["fake", "linux", "httpsys"])
def test_every_backend_declares_at_least_the_baseline(name: str) -> None:
    """What no backend can change in place is in every declaration, under the backend's name."""
    rules = change_rules(name)
    assert name == rules.backend
    assert set(BASELINE.forced) <= set(rules.forced)


def test_the_registry_hands_out_what_the_backend_reports() -> None:
    """change_rules(name) is the backend's own capabilities().changes (read without building it)."""
    assert FakeBackend().capabilities().changes == change_rules("fake")


def test_auto_resolves_to_the_hosts_backend() -> None:
    """auto means linux off Windows, as for the controller."""
    assert change_rules("linux") == change_rules("auto")


def test_a_pool_restarts_and_other_kinds_are_replaced() -> None:
    """The baseline marks worker attributes as restarts and the others as replacements."""
    assert Effect.RESTART == BASELINE.effect(Kind.WORKER, "command")
    assert Effect.REPLACE == BASELINE.effect(Kind.SESSION, "runDir")
    assert BASELINE.effect(Kind.QUEUE, "maxLength") is None


@pytest.mark.parametrize(
    ("forced", "message"),
    [
        (Forced(kind=Kind.QUEUE, field="nope", effect=Effect.REPLACE), "has no field 'nope'"),
        (Forced(kind=Kind.QUEUE, field="acl", effect=Effect.RESTART), "only worker pools restart"),
        (Forced(kind=Kind.WORKER, field="command", effect=Effect.RESTART), "declared twice"),
    ],
)
def test_a_declaration_is_checked_when_it_is_made(forced: Forced, message: str) -> None:
    """A misspelt field, a restart of a queue or a duplicate cannot be declared."""
    with pytest.raises(ValueError, match=message):
        ChangeRules("x", (*BASELINE.forced, forced))


def test_an_unknown_backend_has_no_rules() -> None:
    """The error names the known backends."""
    from orchestrator.errors import PermanentBackendError

    with pytest.raises(PermanentBackendError, match="unknown backend"):
        change_rules("iis")


def test_rules_use_the_manifest_spelling() -> None:
    """Fields are declared as a manifest spells them (allowRoot, not allow_root)."""
    assert Effect.RESTART == BASELINE.effect(Kind.WORKER, "allowRoot")
    assert BASELINE.effect(Kind.WORKER, "allow_root") is None
