"""``python -m orchestrator.runner``: the same entry point as ``orchestrator worker``."""

import sys

from orchestrator.runner.main import main

raise SystemExit(main(sys.argv[1:]))
