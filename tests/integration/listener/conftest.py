"""A running controller whose listener the section-A and section-B tests attack.

URL groups: /echo/ and /admin/ served by the echo app (each remembers the paths it saw), /bad/
served by a worker that answers with broken framing, /tiny/ on a queue of length 1, and three
disabled queues under /shut/ (one per 503 verbosity). Small timers make the timeout tests quick.
"""

from __future__ import annotations

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
    REPO,
    Controller,
    free_port,
    http,
    running_controller,
    unique_names,
)
from tests.support.users import User, delete_user


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


def catch_all_manifest(port: int, listener_user: str | None) -> str:
    """Every host and path on the port goes to one echo pool (for replaying a request corpus)."""
    listener = f"  listener: {{user: {listener_user}}}\n" if listener_user else ""
    return f"""apiVersion: orchestrator/v1
session:
  name: corpus
  timeouts: {{headerWait: 2s, idleConnection: 3s, entityBody: 2s}}
{listener}queues:
  echo: {{}}
urlGroups:
  all: {{queue: echo, urls: ["http://+:{port}/"]}}
{ECHO_POOL}"""


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


def _site(make: Callable[[int, str | None], str]) -> Iterator[Site]:
    world = tempfile.mkdtemp(prefix="orch-listener-", dir="/tmp")
    os.chmod(world, 0o755)
    names = unique_names()
    port = free_port()
    try:
        with running_controller(
            world,
            make(port, names.listener_user),
            port=port,
            apps_from=os.path.join(REPO, "tests", "support", "apps"),
        ) as ctl:
            yield Site(ctl, port)
    finally:
        if names.listener_user:
            import pwd

            entry = pwd.getpwnam(names.listener_user)
            delete_user(User(names.listener_user, entry.pw_uid, entry.pw_gid))
        shutil.rmtree(world, ignore_errors=True)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """One controller for the whole module (the attacks do not change it)."""
    yield from _site(manifest)


@pytest.fixture(scope="module")
def capacity_site() -> Iterator[Site]:
    """A controller with 8 s header-wait and idle timers (see ``capacity_manifest``)."""
    yield from _site(capacity_manifest)


@pytest.fixture(scope="module")
def scarce_site() -> Iterator[Site]:
    """As ``capacity_site``, with ``session.listener.openFiles: 256``."""
    yield from _site(lambda port, user: capacity_manifest(port, user, open_files=256))


@pytest.fixture(scope="module")
def corpus_site() -> Iterator[Site]:
    """A controller whose only URL group catches every host and path."""
    yield from _site(catch_all_manifest)


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
