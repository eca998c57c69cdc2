"""What a backend hands the controller of its processes' output, backend-neutral.

Owns: ``OutputSink`` (the controller's side: takes the read end of a process's stdout or stderr
pipe, and says how logs are written) and ``CapturesOutput`` (a backend that can be given one, and
that reopens its log files on request). The controller implements the sink
(``controller.output.OutputHub``); a backend that captures output creates the pipes, gives each
process only its own write ends, and passes the read ends here. A backend that does not capture
leaves its processes on the controller's stderr.

Must not import a backend implementation, ``reconcile``, ``controller`` or ``cli``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class OutputSink(Protocol):
    """Where captured output goes: line splitting, tagging, ring buffers, the controller's log."""

    @property
    def log_format(self) -> str:
        """``text`` or ``json``: how the controller writes its log (the access log follows)."""
        ...

    @property
    def journal(self) -> bool:
        """Whether the controller's stderr is the systemd journal (lines get ``<N>`` prefixes)."""
        ...

    def attach(self, pool: str | None, pid: int, stream: str, fd: int) -> None:
        """Take ownership of ``fd``, the read end of process ``pid``'s ``stream`` (``stdout`` or
        ``stderr``) pipe; ``pool`` is its pool's name, ``None`` for the listener. The sink reads
        it until end of file and closes it; it never blocks the caller."""
        ...


@runtime_checkable
class CapturesOutput(Protocol):
    """A backend whose processes' output the controller captures."""

    def capture_output(self, sink: OutputSink) -> None:
        """Send the output of every process started from now on to ``sink``."""
        ...

    def reopen_logs(self) -> None:
        """Reopen the log files this backend writes (logrotate moved them: SIGUSR1)."""
        ...
