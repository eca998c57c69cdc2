"""The listener's hot-path cores this machine has: the pure-Python twin, and the compiled one when
it was built (for tests parametrised over both)."""

from __future__ import annotations

import importlib
from types import ModuleType

from orchestrator.backends.linux.listener import fast


def available_cores() -> list[ModuleType]:
    """``fast``, then ``_fast`` if it imports."""
    cores = [fast]
    try:
        cores.append(importlib.import_module("orchestrator.backends.linux.listener._fast"))
    except ImportError:
        pass
    return cores
