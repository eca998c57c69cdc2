"""Where a controller keeps its sockets and state: the run directory and what lives in it.

Owns: ``default_run_dir`` and ``RunDir`` (the paths of ``control.sock``, ``broker.sock``,
``queues/NAME.sock``, the last-known-good manifest, the controller's pid file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def default_run_dir() -> str:
    """``/run/orchestrator`` as root; ``$XDG_RUNTIME_DIR/orchestrator`` or ``/tmp/orchestrator-UID``."""
    if os.geteuid() == 0:
        return "/run/orchestrator"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "orchestrator")
    return f"/tmp/orchestrator-{os.geteuid()}"


@dataclass(frozen=True, slots=True)
class RunDir:
    """The files of one controller's run directory."""

    root: str

    @property
    def control(self) -> str:
        """The admin API socket (mode 0600)."""
        return os.path.join(self.root, "control.sock")

    @property
    def broker(self) -> str:
        """The open-by-name broker socket."""
        return os.path.join(self.root, "broker.sock")

    @property
    def notify(self) -> str:
        """The datagram socket workers report readiness on (sd_notify protocol)."""
        return os.path.join(self.root, "notify.sock")

    @property
    def queues(self) -> str:
        """The directory of queue sockets."""
        return os.path.join(self.root, "queues")

    def queue(self, name: str) -> str:
        """The socket path of queue ``name``."""
        return os.path.join(self.queues, f"{name}.sock")

    @property
    def state(self) -> str:
        """The directory of persisted state (last-known-good manifest, owned users)."""
        return os.path.join(self.root, "state")

    @property
    def pidfile(self) -> str:
        """The controller's pid file."""
        return os.path.join(self.root, "controller.pid")
