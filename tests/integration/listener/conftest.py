"""A running controller whose listener the section-A and section-B tests attack.

URL groups: /echo/ and /admin/ served by the echo app (each remembers the paths it saw), /bad/
served by a worker that answers with broken framing, /tiny/ on a queue of length 1, and three
disabled queues under /shut/ (one per 503 verbosity). Small timers make the timeout tests quick.

Every site runs once per listener core (``core_env``): the compiled ``_fast`` module and its
pure-Python twin ``fast``, so each test in this directory checks both.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support.controller import (
    ANY_PORT,
    REPO,
    Controller,
    http,
    running_controller,
    unique_names,
)
from tests.support.users import delete_user_named


@dataclass
class Site:
    """The running controller and the helpers the tests use."""

    ctl: Controller
    port: int

    def seen(self, group: str = "echo") -> list[str]:
        """Paths the echo app of ``group`` has seen."""
        return list(json.loads(http(self.port, f"/{group}/__seen").body))


def manifest(port: int, listener_user: str | None) -> str:
    listener = f"  listener: {{user: {listener_user}}}\n" if listener_user else ""
    pool = """    command: [orchestrator, worker, --threads, "2", "echo:app"]
    cwd: apps
    startupTimeLimit: 30s
    shutdownTimeLimit: 5s
"""
    return f"""apiVersion: orchestrator/v1
session:
  name: attack
  timeouts: {{headerWait: 2s, idleConnection: 3s, entityBody: 2s}}
  limits: {{maxRequestHeaderBytes: 16KiB, maxUrlBytes: 8KiB, maxBodyBytes: 1MiB, maxHeaderFields: 100}}
{listener}queues:
  echo: {{}}
  admin: {{}}
  bad: {{}}
  tiny: {{maxLength: 1}}
  shutbasic: {{state: disabled, verbosity503: basic}}
  shutlimited: {{state: disabled, verbosity503: limited}}
  shutfull: {{state: disabled, verbosity503: full}}
urlGroups:
  echo: {{queue: echo, urls: ["http://127.0.0.1:{port}/echo/"]}}
  admin: {{queue: admin, urls: ["http://127.0.0.1:{port}/admin/"]}}
  bad: {{queue: bad, urls: ["http://127.0.0.1:{port}/bad/"]}}
  tiny: {{queue: tiny, urls: ["http://127.0.0.1:{port}/tiny/"]}}
  shutbasic: {{queue: shutbasic, urls: ["http://127.0.0.1:{port}/shut/basic/"]}}
  shutlimited: {{queue: shutlimited, urls: ["http://127.0.0.1:{port}/shut/limited/"]}}
  shutfull: {{queue: shutfull, urls: ["http://127.0.0.1:{port}/shut/full/"]}}
workers:
  echo:
    queue: echo
{pool}  admin:
    queue: admin
{pool}  bad:
    queue: bad
    command: [python, badworker.py]
    cwd: apps
    startupTimeLimit: 30s
    shutdownTimeLimit: 2s
  tiny:
    queue: tiny
    command: [orchestrator, worker, --threads, "1", "echo:app"]
    cwd: apps
    startupTimeLimit: 30s
    shutdownTimeLimit: 2s
"""


# One echo pool of four threads on the queue named echo (the corpus and capacity sites).
ECHO_POOL = """workers:
  echo:
    queue: echo
    command: [orchestrator, worker, --threads, "4", "echo:app"]
    cwd: apps
    startupTimeLimit: 30s
    shutdownTimeLimit: 5s
"""


# The raw echo worker (tests/support/apps/rawecho.py) on the queue named echo: it answers with the
# bytes it received, in a response shape the query's r= chooses.
RAWECHO_POOL = """workers:
  echo:
    queue: echo
    command: [python, rawecho.py]
    cwd: apps
    startupTimeLimit: 30s
    shutdownTimeLimit: 5s
"""


def catch_all_manifest(port: int, listener_user: str | None, workers: str = ECHO_POOL) -> str:
    """Every host and path on the port goes to one pool serving the queue named echo (for replaying
    a request corpus); ``workers`` is the manifest's workers block (the echo pool by default)."""
    listener = f"  listener: {{user: {listener_user}}}\n" if listener_user else ""
    return f"""apiVersion: orchestrator/v1
session:
  name: corpus
  timeouts: {{headerWait: 2s, idleConnection: 3s, entityBody: 2s}}
{listener}queues:
  echo: {{}}
urlGroups:
  all: {{queue: echo, urls: ["http://+:{port}/"]}}
{workers}"""


def capacity_manifest(port: int, listener_user: str | None, open_files: int | None = None) -> str:
    """One echo pool with timers long enough to hold thousands of idle connections open (and the
    listener's descriptor limit, when ``open_files`` is given)."""
    settings = [f"user: {listener_user}"] if listener_user else []
    if open_files is not None:
        settings.append(f"openFiles: {open_files}")
    listener = f"  listener: {{{', '.join(settings)}}}\n" if settings else ""
    return f"""apiVersion: orchestrator/v1
session:
  name: capacity
  timeouts: {{headerWait: 8s, idleConnection: 8s}}
{listener}queues:
  echo: {{maxLength: 4096}}
urlGroups:
  echo: {{queue: echo, urls: ["http://127.0.0.1:{port}/echo/"]}}
{ECHO_POOL}"""


#: The listener's hot-path cores, by test id, and the controller environment that selects each
#: (``core.ENV_DISABLE``; the controller passes it on to its listener processes).
CORES: dict[str, dict[str, str]] = {
    "compiled": {},
    "python": {"ORCHESTRATOR_NO_EXTENSIONS": "1"},
}


def compiled_core_missing() -> str | None:
    """Why the compiled listener core cannot run here, or None when it can."""
    try:
        importlib.import_module("orchestrator.backends.linux.listener._fast")
    except ImportError as exc:
        return f"the compiled listener core is not built (pip install -e . builds it): {exc}"
    return None


@pytest.fixture(scope="module", params=list(CORES))
def core_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The controller environment selecting one listener core; every site fixture depends on it,
    so each module runs once per core (one controller per module and core)."""
    core = str(request.param)
    if core == "compiled" and (why := compiled_core_missing()):
        pytest.skip(why)
    return dict(CORES[core])


def _site(
    make: Callable[[int, str | None], str], env_extra: dict[str, str] | None = None
) -> Iterator[Site]:
    world = tempfile.mkdtemp(prefix="orch-listener-", dir="/tmp")
    os.chmod(world, 0o755)
    names = unique_names()
    try:
        with running_controller(
            world,
            make(ANY_PORT, names.listener_user),
            apps_from=os.path.join(REPO, "tests", "support", "apps"),
            env_extra=env_extra,
        ) as ctl:
            yield Site(ctl, ctl.port)
    finally:
        if names.listener_user:
            delete_user_named(names.listener_user)
        shutil.rmtree(world, ignore_errors=True)


@pytest.fixture(scope="module")
def site(core_env: dict[str, str]) -> Iterator[Site]:
    """One controller for the whole module (the attacks do not change it)."""
    yield from _site(manifest, core_env)


@pytest.fixture(scope="module")
def capacity_site(core_env: dict[str, str]) -> Iterator[Site]:
    """A controller with 8 s header-wait and idle timers (see ``capacity_manifest``)."""
    yield from _site(capacity_manifest, core_env)


@pytest.fixture(scope="module")
def scarce_site(core_env: dict[str, str]) -> Iterator[Site]:
    """As ``capacity_site``, with ``session.listener.openFiles: 256``."""
    yield from _site(lambda port, user: capacity_manifest(port, user, open_files=256), core_env)


@pytest.fixture(scope="module")
def corpus_site(core_env: dict[str, str]) -> Iterator[Site]:
    """A controller whose only URL group catches every host and path."""
    yield from _site(catch_all_manifest, core_env)


def exchange(
    port: int,
    data: bytes | list[bytes],
    *,
    half_close: bool = False,
    timeout: float = 3.0,
    pause: float = 0.0,
) -> tuple[bytes, bool]:
    """Send raw bytes on a fresh connection; return everything received and whether the listener
    closed the connection (False: still open when the timeout ran out)."""
    parts = [data] if isinstance(data, bytes) else data
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:
                break
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


def statuses(raw: bytes) -> list[int]:
    """Status codes of every response in ``raw`` (a response may follow a body without a newline)."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


@pytest.fixture(scope="module")
def raw_site(core_env: dict[str, str]) -> Iterator[Site]:
    """Every host and path routed to the raw echo worker (see ``RAWECHO_POOL``)."""
    yield from _site(lambda port, user: catch_all_manifest(port, user, RAWECHO_POOL), core_env)
