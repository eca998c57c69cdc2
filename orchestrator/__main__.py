"""``python -m orchestrator``: the same entry point as the installed ``orchestrator`` script."""

from orchestrator.cli import main

raise SystemExit(main())
