"""Backend harnesses for the contract suite: one per backend, each able to build a desired state
that is valid for it and to break a live object behind the controller's back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from orchestrator.backends.base import Backend
from orchestrator.backends.fake import FakeBackend
from orchestrator.model import DesiredState, Key, Kind
from tests.support.states import desired, group, pool, queue, session


class Harness(Protocol):
    """What the contract suite needs from a backend under test."""

    backend: Backend

    def site(self, version: str = "v1", apps: tuple[str, ...] = ("api", "web")) -> DesiredState:
        """A desired state with one queue, URL group and pool per app; ``version`` changes the
        pools' command."""
        ...

    def break_queue(self, name: str) -> None:
        """Make queue ``name`` disappear without telling the controller."""
        ...

    def settle(self, check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Wait (bounded) until ``check()`` holds; real backends need time, the fake none."""
        ...


@dataclass
class FakeHarness:
    """The in-memory backend."""

    backend: FakeBackend

    def site(self, version: str = "v1", apps: tuple[str, ...] = ("api", "web")) -> DesiredState:
        resources = [session()]
        for i, app in enumerate(apps):
            resources += [
                queue(app),
                group(app, app, f"http://127.0.0.1:8080/{app}/" if i else "http://127.0.0.1:8080/"),
                pool(app, app, "serve", app, version),
            ]
        return desired(*resources)

    def break_queue(self, name: str) -> None:
        self.backend.remove(Key(Kind.QUEUE, name))

    def settle(self, check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        return check()


def fake_harness() -> Iterator[Harness]:
    """A fresh fake backend."""
    yield FakeHarness(FakeBackend())
