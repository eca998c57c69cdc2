"""Exceptions shared by the runner's modules.

Owns: the split between "the client got it wrong" (``HttpError``, answered with a 4xx/5xx and a close),
"the client went away" (``ClientDisconnected``, never answered) and "this process cannot boot"
(``BootError``, exit code 3). Must not import anything from ``orchestrator``.
"""

from __future__ import annotations


class HttpError(Exception):
    """A request the server refuses; ``status`` is the response to send if nothing was sent yet."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ClientDisconnected(HttpError):
    """The peer closed or stalled mid-request; there is nobody left to answer."""

    def __init__(self, message: str = "client disconnected") -> None:
        super().__init__(400, message)


class BootError(Exception):
    """The worker cannot start serving and retrying will not help (exit code 3).

    ``show_traceback`` is set when the cause is a bug in the app (an exception while importing it), so
    the operator sees where; a missing module or attribute is a one-line message.
    """

    def __init__(self, message: str, *, show_traceback: bool = False) -> None:
        super().__init__(message)
        self.show_traceback = show_traceback
