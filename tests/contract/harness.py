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

    def site(
        self,
        version: str = "v1",
        apps: tuple[str, ...] = ("api", "web"),
        *,
        halting: tuple[str, ...] = (),
    ) -> DesiredState:
        """A desired state with one queue, URL group and pool per app; ``version`` changes the
        pools' command; the workers of the ``halting`` apps become ready, then exit with the
        boot-failure code (3), so the backend halts their pool."""
        ...

    def break_queue(self, name: str) -> None:
        """Make queue ``name`` disappear without telling the controller."""
        ...

    def settle(self, check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Poll the backend (it supervises) until ``check()`` holds, bounded; real backends need
        time, the fake one poll."""
        ...


@dataclass
class FakeHarness:
    """The in-memory backend."""

    backend: FakeBackend

    def site(
        self,
        version: str = "v1",
        apps: tuple[str, ...] = ("api", "web"),
        *,
        halting: tuple[str, ...] = (),
    ) -> DesiredState:
        # The fake runs no command: it is told which pools cannot boot.
        self.backend.cannot_boot = set(halting)
        resources = [session()]
        for i, app in enumerate(apps):
            command = ("exit", "3") if app in halting else ("serve", app, version)
            resources += [
                queue(app),
                group(app, app, f"http://127.0.0.1:8080/{app}/" if i else "http://127.0.0.1:8080/"),
                pool(app, app, *command),
            ]
        return desired(*resources)

    def break_queue(self, name: str) -> None:
        self.backend.remove(Key(Kind.QUEUE, name))

    def settle(self, check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        self.backend.poll(0.0)
        return check()


def fake_harness() -> Iterator[Harness]:
    """A fresh fake backend."""
    yield FakeHarness(FakeBackend())
