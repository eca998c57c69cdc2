"""The dashboard's HTTP server: the page's files and its read-only JSON API, on a socket of its own.

Owns: ``DashboardServer`` (a threaded ``http.server`` on ``session.dashboard.address``), its routes
(``/``, ``/static/NAME``, ``/api/status``, ``/api/events``, ``/api/history``, ``/api/plan``;
docs/dashboard.md, "API"), and the rules every answer follows: GET and HEAD only (405 otherwise),
the security headers (a strict Content-Security-Policy, ``nosniff``, no referrer), authentication
before anything else (401 that says nothing about the session), and, without auth, a ``Host``
header that must name a loopback address or the bound one (a page on another site cannot read the
dashboard by pointing its own name at 127.0.0.1: DNS rebinding). The data comes from ``Sources``,
callables the controller hands in; the server never touches the backend. Must not import the
daemon or ``cli``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from importlib.resources.abc import Traversable
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

from orchestrator.controller.dashboard.auth import Authenticator

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ALLOW = "GET, HEAD"
#: What ``/static/NAME`` may name: one plain file name (no directories, no dot files, no ``..``).
STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)*$")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
#: The newest events ``/api/events`` returns at most (the ring holds more; ``events`` has them).
EVENTS_MAX = 500
#: A client that sends nothing for this long is dropped (each connection holds a thread).
SOCKET_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the answers come from (the controller's state, read on the server's threads)."""

    status: Callable[[], Mapping[str, object]]
    events: Callable[[int], list[dict[str, object]]]
    history: Callable[[], Mapping[str, object]]
    plan: Callable[[], Mapping[str, object]]


def static_root() -> Traversable:
    """The page's files, shipped in the package (``dashboard/static``)."""
    return resources.files("orchestrator.controller.dashboard").joinpath("static")


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` too) → host without brackets, port.

    Raises:
        ValueError: no port, or a port that is not a number.
    """
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ``::1``."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    """The dashboard's URL for a bound address."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], dashboard: DashboardServer) -> None:
        self.dashboard = dashboard
        super().__init__(address, _Handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


class DashboardServer:
    """Serves the dashboard on one address from a background thread.

    ``auth`` may be replaced while it serves (a reload with a new token): each request reads it
    once.
    """

    def __init__(
        self,
        address: str,
        sources: Sources,
        auth: Authenticator | None,
        static: Traversable | None = None,
    ) -> None:
        self.asked = address
        self.sources = sources
        self.auth = auth
        self.static = static or static_root()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = split_address(address)

    @property
    def url(self) -> str:
        """Where it serves (the bound port, once started)."""
        return url_for(self.host, self.port)

    def start(self) -> str:
        """Bind and serve; returns the URL (a port 0 in the address shows the bound port).

        Raises:
            OSError: the address cannot be bound (in use, not this host's).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_class = _Server6 if family == socket.AF_INET6 else _Server
        server = server_class((self.host or "127.0.0.1", self.port), self)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="dashboard",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket (requests in flight finish on their threads)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def host_allowed(self, header: str | None) -> bool:
        """Without auth, the ``Host`` must be a loopback name or the address served."""
        if self.auth is not None:
            return True
        if not header:
            return False
        host = header.strip()
        if host.startswith("["):
            host = host[1 : host.find("]")] if "]" in host else host
        else:
            host = host.rpartition(":")[0] if host.count(":") == 1 else host
        return is_loopback(host) or host.lower() == self.host.lower()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "orchestrator"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    ROUTES: ClassVar[dict[str, str]] = {
        "/api/status": "_api_status",
        "/api/events": "_api_events",
        "/api/history": "_api_history",
        "/api/plan": "_api_plan",
    }

    def version_string(self) -> str:
        # No Python version on the wire: it tells an unauthenticated client nothing useful.
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        # Requests are not logged: a page polling every second would flood the controller's log.
        return

    def end_headers(self) -> None:
        # Here, so that every answer has them: errors from the base class's parser too.
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.command not in ("GET", "HEAD"):
            self._send(405, b"405 method not allowed: the dashboard is read-only\n", allow=True)
            return False
        return True

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    # -- answers -------------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        allow: bool = False,
        cache: str = "no-store",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        if allow:
            self.send_header("Allow", ALLOW)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status >= 400 and status != 404:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, doc: object) -> None:
        body = json.dumps(doc, separators=(",", ":"), default=str).encode("utf-8")
        self._send(200, body, "application/json")

    def _route(self) -> None:
        dashboard = self.server.dashboard
        auth = dashboard.auth
        if auth is not None and not auth.allows(self.headers.get("Authorization")):
            # Says nothing but that credentials are needed: no session name, no version.
            self._send(401, b"401 unauthorized\n", extra={"WWW-Authenticate": auth.challenge})
            return
        hosts = self.headers.get_all("Host") or []
        if not dashboard.host_allowed(hosts[0] if len(hosts) == 1 else None):
            self._send(421, b"421 misdirected request: open the dashboard by its address\n")
            return
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/":
            self._static("index.html")
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :])
        elif path in self.ROUTES:
            getattr(self, self.ROUTES[path])(parse_qs(parts.query))
        else:
            self._send(404, b"404 not found\n")

    def _static(self, name: str) -> None:
        if not STATIC_NAME.match(name):
            self._send(404, b"404 not found\n")
            return
        item = self.server.dashboard.static.joinpath(name)
        try:
            body = item.read_bytes() if item.is_file() else None
        except OSError:
            body = None
        if body is None:
            self._send(404, b"404 not found\n")
            return
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        kind = CONTENT_TYPES.get(suffix.lower(), "application/octet-stream")
        self._send(200, body, kind, cache="no-cache")

    def _api_status(self, _query: Mapping[str, list[str]]) -> None:
        doc = dict(self.server.dashboard.sources.status())
        doc.pop("_at", None)  # the controller's own bookkeeping; `status --json` drops it too
        self._json(doc)

    def _api_events(self, query: Mapping[str, list[str]]) -> None:
        raw = (query.get("since") or ["0"])[-1]
        if not raw.isdigit():
            self._send(400, b"400 since must be a whole number (an event's seq)\n")
            return
        events = self.server.dashboard.sources.events(int(raw))
        self._json({"events": events[-EVENTS_MAX:]})

    def _api_history(self, _query: Mapping[str, list[str]]) -> None:
        self._json(self.server.dashboard.sources.history())

    def _api_plan(self, _query: Mapping[str, list[str]]) -> None:
        self._json(self.server.dashboard.sources.plan())
