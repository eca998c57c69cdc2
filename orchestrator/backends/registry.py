"""Choosing a backend by name, importing it only when chosen.

Owns: ``create_backend``, ``resolve_backend_name`` and ``listener_core``. This is the only module
that imports a backend implementation, and it does so lazily, so that e.g. the Windows backend's
``ctypes`` code is never imported on Linux and ``sh`` is never imported on Windows.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from orchestrator.backends.base import Backend
from orchestrator.errors import PermanentBackendError

_MODULES = {
    "fake": ("orchestrator.backends.fake", "FakeBackend"),
    "linux": ("orchestrator.backends.linux.backend", "LinuxBackend"),
    "httpsys": ("orchestrator.backends.httpsys.backend", "HttpSysBackend"),
}


def resolve_backend_name(name: str) -> str:
    """``auto`` → ``httpsys`` on Windows, ``linux`` elsewhere."""
    if name == "auto":
        return "httpsys" if sys.platform == "win32" else "linux"
    return name


def create_backend(name: str, **options: Any) -> Backend:
    """Import and construct the backend called ``name`` (after resolving ``auto``).

    Raises:
        PermanentBackendError: no such backend, or it cannot run on this platform.
    """
    resolved = resolve_backend_name(name)
    if resolved not in _MODULES:
        raise PermanentBackendError(
            f'unknown backend "{name}"', f"Known backends: {', '.join(sorted(_MODULES))}, auto."
        )
    module_name, class_name = _MODULES[resolved]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PermanentBackendError(
            f'backend "{resolved}" is not available on this host', str(exc)
        ) from exc
    backend: Backend = getattr(module, class_name)(**options)
    return backend


def listener_core() -> str:
    """Which implementation of the Linux listener's hot path would run here, and why when it is
    not the compiled one: ``compiled``, ``python (REASON)``, or none off Linux."""
    if sys.platform != "linux":
        return "none (the listener runs on Linux only)"
    core = importlib.import_module("orchestrator.backends.linux.listener.core")
    reason = str(core.REASON)
    return str(core.IMPLEMENTATION) + (f" ({reason})" if reason else "")
