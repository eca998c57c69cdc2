"""The CLI's side of the admin API.

Owns: ``Client`` (connect, send one request, stream progress events, return the result). A missing
socket or a refused connection is ``ControllerUnavailable``, which commands turn into a plain
sentence ("no controller is running at ...").
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from orchestrator.controller.paths import RunDir
from orchestrator.controller.protocol import MAX_LINE, ProtocolError, decode, encode
from orchestrator.errors import ControllerUnavailable, OrchestratorError


class ControllerError(OrchestratorError):
    """The controller answered with an error."""

    def __init__(self, summary: str, detail: str = "", kind: str = "") -> None:
        super().__init__(summary, detail)
        self.kind = kind


class Client:
    """Talks to the controller of one run directory."""

    def __init__(self, run_dir: str, timeout_s: float | None = 30.0) -> None:
        self.run_dir = RunDir(run_dir)
        self.timeout_s = timeout_s

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(self.run_dir.control)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise ControllerUnavailable(
                f"no controller is running at {self.run_dir.root}",
                "Start one with: orchestrator run PATH (or pass --run-dir to find another).",
            ) from exc
        except PermissionError as exc:
            sock.close()
            raise ControllerUnavailable(
                f"permission denied for the controller's socket {self.run_dir.control}",
                "Run as root, as the controller's user, or as a member of its adminGroup.",
            ) from exc
        return sock

    def available(self) -> bool:
        """Whether a controller answers here."""
        try:
            self._connect().close()
        except ControllerUnavailable:
            return False
        return True

    def request(
        self,
        op: str,
        args: dict[str, object] | None = None,
        on_event: Callable[[dict[str, object]], None] | None = None,
        timeout_s: float | None = -1.0,
    ) -> dict[str, object]:
        """Send one request and return its result, passing progress events to ``on_event``.

        Raises:
            ControllerUnavailable: nothing listens on the control socket.
            ControllerError: the controller refused or failed the request.
        """
        sock = self._connect()
        if timeout_s != -1.0:
            sock.settimeout(timeout_s)
        with sock, sock.makefile("rb") as stream:
            sock.sendall(encode({"op": op, "args": args or {}}))
            while True:
                try:
                    line = stream.readline(MAX_LINE)
                except TimeoutError as exc:
                    raise ControllerError(f"the controller did not answer {op!r} in time") from exc
                if not line:
                    raise ControllerError(
                        f"the controller closed the connection during {op!r}",
                        "It may have stopped; see its log.",
                    )
                try:
                    message = decode(line)
                except ProtocolError as exc:
                    raise ControllerError(f"bad answer from the controller: {exc}") from exc
                if "event" in message:
                    event = message["event"]
                    if on_event is not None and isinstance(event, dict):
                        on_event(event)
                    continue
                if message.get("ok"):
                    result = message.get("result") or {}
                    assert isinstance(result, dict)
                    return result
                error = message.get("error")
                err = error if isinstance(error, dict) else {}
                raise ControllerError(
                    str(err.get("summary", "the controller reported an error")),
                    str(err.get("detail", "")),
                    str(err.get("kind", "")),
                )
