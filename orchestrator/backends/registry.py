"""Choosing a backend by name, importing it only when chosen.

Owns: ``create_backend``, ``resolve_backend_name``, ``change_rules``, ``queue_opener``,
``listener_core`` and ``explain_sandbox``. This is
the only module that imports a backend implementation, and it does so lazily, so that e.g. the
Windows backend's ``ctypes`` code is never imported on Linux and ``sh`` is never imported on
Windows. Everything else sees a backend through ``orchestrator.backends.base`` (``.importlinter``
enforces it).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from orchestrator.backends.base import Backend, QueueOpener
from orchestrator.errors import PermanentBackendError
from orchestrator.model import DesiredState
from orchestrator.plan.rules import ChangeRules

_MODULES = {
    "fake": ("orchestrator.backends.fake", "FakeBackend"),
    "linux": ("orchestrator.backends.linux.backend", "LinuxBackend"),
    "httpsys": ("orchestrator.backends.httpsys.backend", "HttpSysBackend"),
}

# Where each backend's ``QueueOpener`` lives. http.sys has no counterpart: its workers attach to a
# request queue by name themselves (``orchestrator.httpapi.queue_open``); there is no socket to pass.
_QUEUE_OPENERS = {
    "linux": ("orchestrator.backends.linux.broker", "open_queue"),
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


# Where each backend declares what it cannot change in place: light modules, importable on any
# host (the http.sys one loads no ctypes code), so a plan made in CI on Linux follows http.sys.
_CHANGE_RULES = {
    "fake": "orchestrator.backends.fake",
    "linux": "orchestrator.backends.linux.rules",
    "httpsys": "orchestrator.backends.httpsys.rules",
}


def change_rules(name: str) -> ChangeRules:
    """The ``ChangeRules`` backend ``name`` declares (after resolving ``auto``), without
    constructing it: the same value as its ``capabilities().changes``.

    Raises:
        PermanentBackendError: no such backend.
    """
    resolved = resolve_backend_name(name)
    if resolved not in _CHANGE_RULES:
        raise PermanentBackendError(
            f'unknown backend "{name}"', f"Known backends: {', '.join(sorted(_MODULES))}, auto."
        )
    rules: ChangeRules = importlib.import_module(_CHANGE_RULES[resolved]).CHANGE_RULES
    return rules


def queue_opener(name: str) -> QueueOpener:
    """The client that opens a queue by name through the controller of backend ``name`` (after
    resolving ``auto``), for ``orchestrator open``.

    Raises:
        PermanentBackendError: that backend hands out no queue sockets, or is unknown.
    """
    resolved = resolve_backend_name(name)
    if resolved not in _MODULES:
        raise PermanentBackendError(
            f'unknown backend "{name}"', f"Known backends: {', '.join(sorted(_MODULES))}, auto."
        )
    if resolved not in _QUEUE_OPENERS:
        raise PermanentBackendError(
            f'backend "{resolved}" cannot open a queue by name',
            "orchestrator open passes a queue's listening socket to a program; backends that "
            f"have one to pass: {', '.join(sorted(_QUEUE_OPENERS))}.",
        )
    module_name, function_name = _QUEUE_OPENERS[resolved]
    opener: QueueOpener = getattr(importlib.import_module(module_name), function_name)
    return opener


def listener_core() -> str:
    """Which implementation of the Linux listener's hot path would run here, and why when it is
    not the compiled one: ``compiled``, ``python (REASON)``, or none off Linux."""
    if sys.platform != "linux":
        return "none (the listener runs on Linux only)"
    core = importlib.import_module("orchestrator.backends.linux.listener.core")
    reason = str(core.REASON)
    return str(core.IMPLEMENTATION) + (f" ({reason})" if reason else "")


def explain_sandbox(desired: DesiredState, run_dir: str) -> dict[str, object]:
    """The effective sandboxes of a manifest on this host (``validate --explain``): the Linux
    backend's, which is the only one with a sandbox."""
    module = importlib.import_module("orchestrator.backends.linux.sandbox")
    result: dict[str, object] = module.explain(desired, run_dir)
    return result
