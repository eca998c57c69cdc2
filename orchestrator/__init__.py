"""orchestrator: a declarative orchestrator for process-isolated HTTP services.

The package's public surface is :mod:`orchestrator.cli` and :mod:`orchestrator.model`.
"""

__version__ = "0.1.0"
