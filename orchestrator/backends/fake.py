"""An in-memory backend for unit tests of the pure reconciler, with fault injection.

Owns: ``FakeBackend``. It keeps a ``dict[Key, Resource]``, records the steps it applied, refuses a
step whose references do not exist (as a real backend would), and can be told to fail steps or to
drift (an object changed or removed "by hand", a fault). The same contract suite that it passes must
pass against the real backends.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from orchestrator.backends.base import Capabilities, Progress
from orchestrator.errors import BackendError, TemporaryBackendError
from orchestrator.model.desired import Resource
from orchestrator.model.ids import Key
from orchestrator.model.live import Fault, LiveState
from orchestrator.plan.steps import Op, Step

Failure = BackendError | Callable[[Step], BackendError | None]


class FakeBackend:
    """A dictionary that pretends to be a host."""

    def __init__(self, fail_on: dict[str, Failure] | None = None) -> None:
        self.store: dict[Key, Resource] = {}
        self.faults: list[Fault] = []
        self.applied_steps: list[str] = []
        self.fail_on: dict[str, Failure] = dict(fail_on or {})
        self.closed = False

    @property
    def name(self) -> str:
        return "fake"

    def capabilities(self) -> Capabilities:
        return Capabilities("fake", frozenset({"queue_state", "verbosity503", "acl"}))

    def observe(self) -> LiveState:
        return LiveState(
            resources=MappingProxyType(dict(self.store)),
            faults=tuple(self.faults),
            backend=self.name,
        )

    def apply(self, step: Step, progress: Progress | None = None) -> None:
        failure = self.fail_on.get(step.id)
        if failure is not None:
            error = failure(step) if callable(failure) else failure
            if error is not None:
                raise error
        if step.op is not Op.DELETE:
            assert step.after is not None
            missing = [r for r in step.after.refs() if r not in self.store]
            if missing:
                raise TemporaryBackendError(
                    f"{step.key}: {missing[0]} does not exist yet", key=str(step.key)
                )
            self.store[step.key] = step.after
        else:
            self.store.pop(step.key, None)
        self.faults = [f for f in self.faults if f.key != step.key]
        if progress is not None:
            progress("fake_applied", {"op": step.op.value})
        self.applied_steps.append(step.id)

    def close(self) -> None:
        self.store.clear()
        self.closed = True

    # -- test hooks: changes made "by hand" ---------------------------------------------------
    def mutate(self, resource: Resource) -> None:
        """Change an object behind the controller's back."""
        self.store[resource.key] = resource

    def remove(self, key: Key) -> None:
        """Delete an object behind the controller's back."""
        self.store.pop(key, None)

    def inject_fault(self, fault: Fault) -> None:
        """Report a fault at the next observation."""
        self.faults.append(fault)
