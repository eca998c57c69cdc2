"""The dashboard as the controller runs it: started, moved and stopped with the manifest.

Owns: ``DashboardService`` (what the daemon holds: the history it samples, the last plan, and the
server for the manifest's ``session.dashboard``) and ``PlanRecord``. ``configure`` is called at
start and after every reload or apply: a new address starts a server there before the old one
stops (a failure keeps the old one and says so: ``dashboard_unavailable``); the auth file is read
again each time, so a new token takes effect on ``orchestrator reload`` without a restart. Main
thread only, but for what the server's threads read (``url``, ``History.document``, the plan).
Must not import the daemon or ``cli``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from orchestrator.clock import Clock
from orchestrator.controller.dashboard.auth import DashboardAuthError, load_auth
from orchestrator.controller.dashboard.history import History
from orchestrator.controller.dashboard.server import DashboardServer, Sources
from orchestrator.model.desired import Dashboard
from orchestrator.plan.render import render_text
from orchestrator.reconcile.events import EventLog
from orchestrator.reconcile.reconciler import Result


class PlanRecord:
    """The last plan that had steps, as ``orchestrator plan`` prints it (no colour)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._doc: dict[str, object] = {"text": "", "generation": 0}

    def note(self, result: Result | None, generation: int) -> None:
        """Keep ``result``'s plan if it changed anything (a resync with nothing to do does not
        hide the last real change)."""
        if result is None or result.plan.is_empty:
            return
        text = render_text(result.plan, colour=False)
        with self._lock:
            self._doc = {"text": text, "generation": generation}

    def document(self) -> dict[str, object]:
        """``/api/plan``: ``{"text", "generation"}`` (empty text before any change)."""
        with self._lock:
            return dict(self._doc)


class DashboardService:
    """The controller's dashboard: configuration, history, last plan, server."""

    def __init__(
        self,
        clock: Clock,
        *,
        status: Callable[[], Mapping[str, object]],
        events: EventLog,
        emit: Callable[..., None],
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.emit = emit
        self.say = say
        self.history = History(clock)
        self.plans = PlanRecord()
        self.sources = Sources(
            status=status,
            events=events.since,
            history=self.history.document,
            plan=self.plans.document,
        )
        self.config: Dashboard | None = None
        self.server: DashboardServer | None = None

    @property
    def url(self) -> str | None:
        """Where the dashboard serves (``None``: off, or its address could not be bound)."""
        server = self.server
        return server.url if server is not None else None

    def configure(self, config: Dashboard | None) -> None:
        """Serve what ``session.dashboard`` asks for now (``None`` or no address: nothing)."""
        address = config.address if config is not None else None
        if address is None:
            if self.server is not None:
                self.stop()
                self.emit("dashboard_stopped")
            self.config = config
            return
        assert config is not None
        try:
            auth = load_auth(config.auth)
        except DashboardAuthError as exc:
            # A reload whose auth file broke: keep serving with the auth that worked, and say so.
            self.emit("dashboard_unavailable", address=address, error=exc.summary)
            return
        if self.server is not None and self.config is not None and self.config.address == address:
            self.server.auth = auth
            self.config = config
            return
        server = DashboardServer(address, self.sources, auth)
        try:
            url = server.start()
        except (OSError, ValueError, OverflowError) as exc:
            self.emit("dashboard_unavailable", address=address, error=str(exc))
            return
        old, self.server, self.config = self.server, server, config
        if old is not None:
            old.stop()
        self.emit("dashboard_serving", asked=address, url=url, auth=_auth_kind(config))
        if self.say is not None:
            self.say(f"dashboard: {url}\n")

    def tick(self, status: Mapping[str, object]) -> None:
        """Sample the history (at most every 2 s) while the dashboard serves."""
        if self.server is not None:
            self.history.sample(status)

    def stop(self) -> None:
        """Stop serving."""
        server, self.server = self.server, None
        if server is not None:
            server.stop()


def _auth_kind(config: Dashboard) -> str:
    if config.auth is None:
        return "none"
    return "token" if config.auth.token_file else "basic"
