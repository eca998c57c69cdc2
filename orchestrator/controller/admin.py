"""The admin API's server side: ``<runDir>/control.sock``.

Owns: ``AdminServer`` and ``Job``. The socket is a path socket created 0600 (0660 and the admin
group's when one is configured); every connection's peer is also checked with ``SO_PEERCRED``: root,
the controller's own uid, or a member of the admin group. ``state`` and ``events`` are answered from
this server's threads (a snapshot and the event ring; ``state`` with ``{"spec": true}`` adds the
controller's live state as ``plan --live`` reads it); ``plan``, ``apply``, ``reset``, ``reload``,
``restart`` and ``down`` become jobs for the controller's main thread, whose progress events and
result are streamed back on the connection. ``logs`` is answered from this server's threads too,
from the captured output's rings (``controller.logs.serve_logs``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.controller.logs import serve_logs
from orchestrator.controller.output import OutputHub
from orchestrator.controller.protocol import MAX_LINE, OPS, ProtocolError, decode, encode
from orchestrator.reconcile.events import EventLog

SO_PEERGROUPS = 59


@dataclass
class Job:
    """A request for the main thread, and the channel its answers go back on."""

    op: str
    args: dict[str, object]
    uid: int
    replies: queue.SimpleQueue[tuple[str, dict[str, object]]] = field(
        default_factory=queue.SimpleQueue
    )

    def event(self, record: dict[str, object]) -> None:
        """Stream a progress event to the client."""
        self.replies.put(("event", record))

    def done(self, result: dict[str, object]) -> None:
        """Finish with a result."""
        self.replies.put(("result", result))

    def fail(self, summary: str, detail: str = "", kind: str = "error") -> None:
        """Finish with an error."""
        self.replies.put(("error", {"summary": summary, "detail": detail, "kind": kind}))


class AdminServer:
    """Accepts admin connections and answers them."""

    def __init__(
        self,
        path: str,
        *,
        admin_gid: int | None,
        snapshot: Callable[[], dict[str, object]],
        events: EventLog,
        submit: Callable[[Job], None],
        emit: Callable[..., None],
        spec: Callable[[], dict[str, object] | None] | None = None,
        output: OutputHub | None = None,
    ) -> None:
        self.path = path
        self.output = output
        self.spec = spec
        self.admin_gid = admin_gid
        self.snapshot = snapshot
        self.events = events
        self.submit = submit
        self.emit = emit
        self._sock: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Bind the socket (never more permissive than 0600 for an instant) and serve."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        if self.admin_gid is not None:
            os.chown(self.path, -1, self.admin_gid)
            os.chmod(self.path, 0o660)
        sock.listen(32)
        sock.settimeout(0.5)
        self._sock = sock
        threading.Thread(target=self._accept, name="admin", daemon=True).start()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _allowed(self, conn: socket.socket) -> tuple[bool, int]:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        if uid in (0, os.geteuid()):
            return True, uid
        if self.admin_gid is not None:
            groups = {gid}
            with contextlib.suppress(OSError):
                data = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4096)
                groups |= set(struct.unpack(f"{len(data) // 4}I", data[: len(data) // 4 * 4]))
            if self.admin_gid in groups:
                return True, uid
        self.emit("admin_denied", uid=uid, pid=pid)
        return False, uid

    def _send(self, conn: socket.socket, message: dict[str, object]) -> bool:
        try:
            conn.sendall(encode(message))
        except OSError:
            return False
        return True

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            allowed, uid = self._allowed(conn)
            if not allowed:
                self._send(
                    conn,
                    {
                        "ok": False,
                        "error": {
                            "summary": "permission denied",
                            "detail": "Only root, the controller's user or its admin group may use the "
                            "admin API.",
                            "kind": "denied",
                        },
                    },
                )
                return
            try:
                line = stream.readline(MAX_LINE)
                request = decode(line)
            except (ProtocolError, OSError) as exc:
                self._send(conn, {"ok": False, "error": {"summary": str(exc), "kind": "protocol"}})
                return
            op = str(request.get("op", ""))
            args = request.get("args") or {}
            if op not in OPS or not isinstance(args, dict):
                self._send(
                    conn,
                    {
                        "ok": False,
                        "error": {"summary": f"unknown operation {op!r}", "kind": "protocol"},
                    },
                )
                return
            if op == "state":
                result = self.snapshot()
                if args.get("spec") and self.spec is not None:
                    result = {**result, "spec": self.spec()}
                self._send(conn, {"ok": True, "result": result})
            elif op == "events":
                self._stream_events(conn, args)
            elif op == "logs" and self.output is not None:
                pools = self.snapshot().get("pools")
                known = [*(pools if isinstance(pools, dict) else {}), *self.output.pools()]
                send = functools.partial(self._send, conn)
                serve_logs(send, self.output, [p for p in known if p], args, self._stop)
            else:
                self._run_job(conn, Job(op, args, uid))

    def _stream_events(self, conn: socket.socket, args: dict[str, object]) -> None:
        since = int(str(args.get("since", 0)))
        for record in self.events.since(since):
            if not self._send(conn, {"event": record}):
                return
        if not args.get("follow"):
            self._send(conn, {"ok": True, "result": {}})
            return
        pending: queue.SimpleQueue[dict[str, object]] = queue.SimpleQueue()
        cancel = self.events.subscribe(pending.put)
        try:
            while not self._stop.is_set():
                try:
                    record = pending.get(timeout=1.0)
                except queue.Empty:
                    continue
                if not self._send(conn, {"event": record}):
                    return
        finally:
            cancel()

    def _run_job(self, conn: socket.socket, job: Job) -> None:
        self.submit(job)
        while True:
            kind, payload = job.replies.get()
            if kind == "event":
                self._send(conn, {"event": payload})
                continue
            if kind == "result":
                self._send(conn, {"ok": True, "result": payload})
            else:
                self._send(conn, {"ok": False, "error": payload})
            return

    def stop(self) -> None:
        """Stop accepting and remove the socket."""
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
