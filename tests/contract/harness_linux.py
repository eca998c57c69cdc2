"""The contract-suite harness for the Linux backend: the real ``LinuxBackend`` on this host.

Real queue sockets, a real listener process, real workers (the project's runner serving the
quickstart's hello app) and, as root, real dedicated users: throwaway ones made for the test (the
listener's and each pool's), removed afterwards, so concurrent test runs never share an identity.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from orchestrator.backends.linux.backend import LinuxBackend
from orchestrator.model import DesiredState
from tests.support.controller import ANY_PORT, REPO
from tests.support.leftovers import register_run_dir
from tests.support.states import desired, group, pool, queue, session
from tests.support.users import User, create_user, delete_user

THREADS = {"v1": "4", "v2": "5"}


@dataclass
class LinuxHarness:
    """``LinuxBackend`` in a world-readable temporary run directory."""

    backend: LinuxBackend
    apps: str
    port: int  # as written in the URL prefixes (0: the backend binds a free port)
    users: dict[str, User] = field(default_factory=dict)

    def _user(self, key: str) -> str:
        if os.geteuid() != 0:
            return "auto"  # the invoking user
        if key not in self.users:
            self.users[key] = create_user("oc")
        return self.users[key].name

    def site(
        self,
        version: str = "v1",
        apps: tuple[str, ...] = ("api", "web"),
        *,
        halting: tuple[str, ...] = (),
    ) -> DesiredState:
        from orchestrator.model import ListenerSettings

        resources = [session(listener=ListenerSettings(user=self._user("listener")))]
        for i, app in enumerate(apps):
            path = f"/{app}/" if i else "/"
            serve = ("orchestrator", "worker", "--threads", THREADS[version], "hello:app")
            resources += [
                queue(app),
                group(app, app, f"http://127.0.0.1:{self.port}{path}"),
                pool(
                    app,
                    app,
                    # Ready after 1 s up, then "cannot boot" (exit code 3): halted at once.
                    *(("sh", "-c", "sleep 2; exit 3") if app in halting else serve),
                    cwd=self.apps,
                    user=self._user(app),
                    startup_time_limit_s=30.0,
                    shutdown_time_limit_s=5.0,
                ),
            ]
        return desired(*resources)

    def break_queue(self, name: str) -> None:
        os.unlink(self.backend.queues.path(name))

    def settle(self, check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return True
            self.backend.poll(0.1)
        return check()


def linux_harness() -> Iterator[LinuxHarness]:
    """A fresh Linux backend per test; everything it started is stopped afterwards."""
    root = tempfile.mkdtemp(prefix="orch-contract-", dir="/tmp")
    os.chmod(root, 0o755)
    apps = os.path.join(root, "apps")
    shutil.copytree(os.path.join(REPO, "examples", "quickstart", "apps"), apps)
    for dirpath, _, files in os.walk(apps):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    register_run_dir(os.path.join(root, "run"))
    backend = LinuxBackend(os.path.join(root, "run"))
    harness = LinuxHarness(backend, apps, ANY_PORT)
    try:
        yield harness
    finally:
        with contextlib.suppress(Exception):
            backend.shutdown()
        for user in harness.users.values():
            delete_user(user)
        shutil.rmtree(root, ignore_errors=True)
