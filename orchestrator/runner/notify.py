"""Readiness notification: the sd_notify(3) datagram protocol.

Owns: sending ``READY=1`` / ``STOPPING=1`` to ``$NOTIFY_SOCKET`` — an ``AF_UNIX`` ``SOCK_DGRAM`` socket at a
path, or at an abstract name when the variable starts with ``@``. Best effort: a supervisor that is not
listening must never stop the worker from serving. Must not import anything from ``orchestrator``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("orchestrator.runner")


def notify_address(env: Mapping[str, str]) -> str | None:
    """The datagram address ``$NOTIFY_SOCKET`` names, or ``None`` when unset or unsupported."""
    path = env.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    return None  # unset, or a form we do not speak (e.g. systemd's vsock:)


def sd_notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager.

    Args:
        state: newline-separated ``KEY=VALUE`` assignments.
        env: where to read ``NOTIFY_SOCKET``; ``os.environ`` by default.

    Returns:
        Whether a datagram was sent.
    """
    address = notify_address(os.environ if env is None else env)
    family = getattr(socket, "AF_UNIX", None)
    if address is None or family is None:
        return False
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        log.warning("cannot notify %s: %s", address.replace("\0", "@"), exc)
        return False
    return True
