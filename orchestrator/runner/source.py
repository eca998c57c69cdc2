"""The ``Source`` protocol: where requests come from, as the process lifecycle sees it.

Owns: the four calls ``lifecycle`` makes on a request source. The socket source (``socket_source``)
accepts connections from inherited listening sockets; on Windows an http.sys request queue will implement
the same protocol and reuse ``wsgi.WsgiBridge`` unchanged. Must not import anything but ``typing``.
"""

from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    """A request source serving on its own threads until told to stop."""

    def start(self) -> None:
        """Begin taking requests on background threads; returns at once."""
        ...

    def stop_accepting(self) -> None:
        """Take no new work, close idle connections, let in-flight requests finish; returns at once.

        Shared kernel objects (a listening socket, a request queue) are closed, never shut down: sibling
        processes keep serving from them.
        """
        ...

    def wait_idle(self, timeout_s: float) -> bool:
        """After ``stop_accepting``: wait up to ``timeout_s`` for the last request; true once none is left."""
        ...

    def close(self) -> None:
        """Release threads and handles; call after ``wait_idle`` returned true (or the grace ran out)."""
        ...
