"""Wine scenario: the lifecycle probe (``lifecycle_program``) against the real httpapi.dll.

Emits the capabilities, one ``step`` event per call with its Win32 result, then ``done`` after
``HttpTerminate``. No HTTP traffic.
argv: PORT
"""

from __future__ import annotations

import sys

from orchestrator.httpapi.binding import RealBinding
from orchestrator.httpapi.capabilities import detect_capabilities
from tests.wine.scenarios._common import emit, run
from tests.wine.scenarios.lifecycle_program import run_program


def main() -> None:
    caps = detect_capabilities()
    emit("capabilities", wine=caps.wine_version, urls_per_group=caps.urls_per_group)
    run_program(
        RealBinding(), int(sys.argv[1]), lambda name, code: emit("step", name=name, code=code)
    )
    emit("done")


run(main)
