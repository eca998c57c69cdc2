"""The ``orchestrator`` command line (entry point ``orchestrator.cli:main``).

Owns: the command-line surface, one module per family of commands (``manifest_commands``,
``plan_commands``, ``controller_commands``), what they share (``common``) and the parser and entry
point (``main``). No logic lives here; see ``main``'s docstring.
"""

from orchestrator.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
