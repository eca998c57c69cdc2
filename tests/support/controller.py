"""Running a real controller in tests: a manifest in a world-readable directory, ``orchestrator run``
as a subprocess, its admin API, HTTP requests to its listener, and a teardown that leaves nothing.

Manifests ask for port 0 (``ANY_PORT``): the controller binds a free port and reports it (``status``
``listener.addresses``, the ``listener_bound`` event), and ``Controller.port`` reads it from there,
so no test races another process for a port it picked beforehand.

Everything is bounded: every wait has a deadline and teardown kills the controller's process group
(and, as root, any process of the pools' users), then removes its cgroup tree and the users it made.
"""

from __future__ import annotations

import contextlib
import http.client as httpclient
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from orchestrator.controller.client import Client
from orchestrator.errors import OrchestratorError
from tests.support.leftovers import register_run_dir, register_user, remove_cgroups

_SEQ = itertools.count(1)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]

#: The port to write in a test manifest: the controller binds a free one and reports it.
ANY_PORT = 0


def wait_until(
    predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # keep polling; the last error is reported at the end
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(
        f"timed out after {timeout_s}s waiting for {what} (last error: {last_error!r})"
    )


@dataclass
class HttpResult:
    """One HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> dict[str, object]:
        """The body as JSON."""
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


def http(
    port: int,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    host: str = "127.0.0.1",
) -> HttpResult:
    """One request on a fresh connection."""
    conn = httpclient.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return HttpResult(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


@dataclass
class Controller:
    """A running ``orchestrator run``."""

    site: str  # the manifest directory
    run_dir: str
    proc: subprocess.Popen[bytes]
    log_path: str
    extra_uids: list[int] = field(default_factory=list)
    _port: int | None = None
    state_dir: str = ""  # --state-dir: never the host's default, which concurrent tests would share

    @property
    def port(self) -> int:
        """The port the listener serves (the manifest says 0: read from status once it is bound;
        a reload that keeps port 0 keeps the port)."""
        if self._port is None:
            self._port = self.bound_port()
        return self._port

    def bound_port(self, asked: str | None = None, timeout_s: float = 30.0) -> int:
        """The port bound for the listening address ``asked`` (``host:port`` as in the manifest;
        the only one when None), from ``status``, waiting until the listener has bound it."""

        def lookup() -> int | None:
            listener = self.state().get("listener")
            endpoints = listener.get("endpoints") if isinstance(listener, dict) else None
            found = [
                int(str(e["port"]))
                for e in endpoints or []
                if isinstance(e, dict) and (asked is None or e.get("address") == asked)
            ]
            if asked is None and len(found) > 1:
                raise AssertionError(f"several listening addresses: {endpoints}")
            return found[0] if found else None

        return int(str(wait_until(lookup, timeout_s, f"the listener to bind {asked or 'a port'}")))

    @property
    def client(self) -> Client:
        """An admin API client for this controller."""
        return Client(self.run_dir, timeout_s=30)

    def state(self) -> dict[str, object]:
        """``status --json``."""
        return self.client.request("state")

    def dashboard_url(self, timeout_s: float = 30.0) -> str:
        """The dashboard's URL as bound (``status`` ``dashboard.url``: the manifest says port 0),
        waiting until it serves."""

        def lookup() -> str | None:
            dashboard = self.state().get("dashboard")
            url = dashboard.get("url") if isinstance(dashboard, dict) else None
            return str(url) if url else None

        return str(wait_until(lookup, timeout_s, "the dashboard to serve (status dashboard.url)"))

    def listener_stats(self) -> list[dict[str, object]]:
        """Each listener process's last reported counters (``status`` ``listener.stats``)."""
        listener = self.state()["listener"]
        assert isinstance(listener, dict)
        return list(listener["stats"])

    def accepted(self) -> int:
        """Connections the listener processes have accepted."""
        return sum(int(str(s.get("accepted", 0))) for s in self.listener_stats())

    def listener_errors(self, reason: str) -> int:
        """The listener processes' count of one error reason (http.sys's name)."""
        counts = [s.get("errors") for s in self.listener_stats()]
        return sum(int(c.get(reason, 0)) for c in counts if isinstance(c, dict))

    def log(self) -> str:
        """The controller's stderr so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def events(self, name: str | None = None) -> list[dict[str, object]]:
        """Structured events from the log (json format)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if name is None or record.get("event") == name:
                        out.append(record)
        return out

    def workers(self, pool: str | None = None) -> list[dict[str, object]]:
        """Running worker processes (from status)."""
        found = self.state().get("workers", [])
        assert isinstance(found, list)
        return [w for w in found if pool is None or w.get("pool") == pool]

    def pids(self, pool: str) -> set[int]:
        """Pids of a pool's ready processes."""
        return {int(str(w["pid"])) for w in self.workers(pool) if w.get("state") == "ready"}

    def converged(self) -> bool:
        """The last pass converged with no failures."""
        state = self.state()
        rec = state.get("reconcile")
        return isinstance(rec, dict) and bool(rec.get("converged")) and not rec.get("failed")

    def wait_converged(self, timeout_s: float = 60.0) -> None:
        """Wait until the controller has applied everything and every pool is ready."""
        wait_until(self.converged, timeout_s, f"the controller to converge\n{self.log()[-4000:]}")

    def write(self, name: str, text: str) -> None:
        """Replace a manifest file the way editors do (write a temporary file, rename it)."""
        path = os.path.join(self.site, name)
        tmp = path + ".tmp~"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)

    def get(self, path: str, **kw: object) -> HttpResult:
        """GET through the listener."""
        return http(self.port, path, **kw)  # type: ignore[arg-type]

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return None if self.proc.returncode is None else self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group, then stragglers of the pools' users."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@dataclass(frozen=True)
class Names:
    """Names unique to one test, so that concurrent test runs never share a pool's dedicated user
    (``orch-POOL``) or the listener's user."""

    hello: str
    notes: str
    listener_user: str | None  # a throwaway user as root; None (the invoking user) otherwise


def unique_names() -> Names:
    """Fresh pool names (and, as root, a fresh user for the listener)."""
    tag = f"{os.getpid() % 10000}{next(_SEQ)}"
    listener = None
    if os.geteuid() == 0:
        from tests.support.users import create_user

        listener = create_user("ol").name
    return Names(f"hello{tag}", f"notes{tag}", listener)


def quickstart_manifest(
    port: int = ANY_PORT,
    names: Names | None = None,
    *,
    user: str | None = None,
    extra: str = "",
    hello_command: str | None = None,
    health: bool = True,
    dashboard: str | None = None,
) -> str:
    """The quickstart's shape on ``port`` (by default any free port), with the test's own pool
    names; ``dashboard`` is the value of ``session.dashboard`` as flow YAML (for example
    ``{address: "127.0.0.1:0"}``: any free port, read back with ``Controller.dashboard_url``)."""
    names = names or Names("hello", "notes", None)
    hello, notes = names.hello, names.notes
    user_line = f"    user: {user}\n" if user else ""
    listener = f"  listener: {{user: {names.listener_user}}}\n" if names.listener_user else ""

    def probe(app: str) -> str:
        return (
            f"    health: {{path: /{app}/healthz, interval: 2s, timeout: 2s}}\n" if health else ""
        )

    command = hello_command or '[orchestrator, worker, "hello:app"]'
    return f"""apiVersion: orchestrator/v1
session:
  name: test
  timeouts: {{headerWait: 10s, idleConnection: 30s}}
{listener}{f"  dashboard: {dashboard}{chr(10)}" if dashboard else ""}queues:
  {hello}: {{}}
  {notes}: {{}}
urlGroups:
  {hello}:
    queue: {hello}
    urls: ["http://127.0.0.1:{port}/hello/"]
  {notes}:
    queue: {notes}
    urls: ["http://127.0.0.1:{port}/notes/"]
workers:
  {hello}:
    queue: {hello}
    command: {command}
    cwd: apps
{user_line}    startupTimeLimit: 30s
    shutdownTimeLimit: 5s
    rapidFailProtection: {{maxCrashes: 3, interval: 1m}}
{probe("hello")}  {notes}:
    queue: {notes}
    command: [orchestrator, worker, "notes:app"]
    cwd: apps
{user_line}    startupTimeLimit: 30s
    shutdownTimeLimit: 5s
{probe("notes")}{extra}"""


def quickstart_example(names: Names) -> str:
    """``examples/quickstart/site.yaml`` itself, made fit for a test: its listening port (8080) and
    its dashboard's (9180) become 0, so that tests running at once never race for them (read the
    ports back with ``Controller.port`` and ``Controller.dashboard_url``), and its queues, URL
    groups and pools take the test's names (as root, each pool's dedicated user is named after
    it). Comments are not kept."""
    import yaml

    with open(os.path.join(REPO, "examples", "quickstart", "site.yaml"), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    rename = {"hello": names.hello, "notes": names.notes}
    session = data["session"]
    address = session.get("dashboard", {}).get("address")
    if address:
        session["dashboard"]["address"] = f"{address.rpartition(':')[0]}:{ANY_PORT}"
    if names.listener_user:
        session.setdefault("listener", {})["user"] = names.listener_user
    for section in ("queues", "urlGroups", "workers"):
        data[section] = {rename.get(k, k): v for k, v in data[section].items()}
    for group in data["urlGroups"].values():
        group["queue"] = rename.get(group["queue"], group["queue"])
        group["urls"] = [u.replace(":8080/", f":{ANY_PORT}/") for u in group["urls"]]
    for pool in data["workers"].values():
        pool["queue"] = rename.get(pool["queue"], pool["queue"])
    text = yaml.safe_dump(data, sort_keys=False)
    for fixed in (":8080", ":9180"):
        assert fixed not in text, f"the example has a port this misses ({fixed})"
    return text


@contextlib.contextmanager
def running_controller(
    world_dir: str,
    manifest: str,
    *,
    args: tuple[str, ...] = (),
    converge: bool = True,
    apps_from: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> Iterator[Controller]:
    """Start ``orchestrator run`` on ``manifest`` (written to ``world_dir/site/site.yaml``), with
    its run directory in ``world_dir/run`` and its state in ``world_dir/state`` (tests run as root
    with the same session names on several workers: the default ``/var/lib/orchestrator/SESSION``
    would hand one test another's last-known-good manifest and users); stop it afterwards and
    remove what it made (processes, cgroups, users)."""
    site = os.path.join(world_dir, "site")
    os.makedirs(site, exist_ok=True)
    shutil.copytree(
        apps_from or os.path.join(REPO, "examples", "quickstart", "apps"),
        os.path.join(site, "apps"),
        dirs_exist_ok=True,
    )
    for root, dirs, files in os.walk(world_dir):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    with open(os.path.join(site, "site.yaml"), "w", encoding="utf-8") as fh:
        fh.write(manifest)
    run_dir = os.path.join(world_dir, "run")
    state_dir = os.path.join(world_dir, "state")
    register_run_dir(run_dir)
    log_path = os.path.join(world_dir, "controller.log")
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
    env.update(env_extra or {})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                *ORCHESTRATOR,
                "run",
                site,
                "--run-dir",
                run_dir,
                "--state-dir",
                state_dir,
                "--log-format",
                "json",
                "--debounce",
                "100ms",
                "--poll",
                "1s",
                *args,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
            cwd=REPO,
        )
    ctl = Controller(site, run_dir, proc, log_path, state_dir=state_dir)
    try:
        wait_until(
            lambda: proc.poll() is not None or ctl.client.available(), 30, "the control socket"
        )
        if proc.poll() is not None:
            raise AssertionError(f"the controller exited with {proc.returncode}:\n{ctl.log()}")
        if converge:
            ctl.wait_converged()
        yield ctl
    finally:
        try:
            ctl.stop(timeout_s=20)
        finally:
            ctl.kill()
            remove_cgroups(run_dir)
            remove_created_users(state_dir)


def remove_created_users(state_dir: str) -> None:
    """Delete the dedicated users a test controller created (it keeps them across restarts), as
    recorded in its state directory's ``users.json``."""
    record = os.path.join(state_dir, "users.json")
    try:
        with open(record, encoding="utf-8") as fh:
            names = json.load(fh)
    except (OSError, ValueError):
        return
    from tests.support.users import delete_user_named

    for name in names:
        register_user(name)
        delete_user_named(name)


def controller_state(run_dir: str) -> dict[str, object] | None:
    """The state of the controller at ``run_dir``, or None when none answers."""
    try:
        return Client(run_dir, timeout_s=5).request("state")
    except OrchestratorError:
        return None
