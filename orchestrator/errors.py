"""Error classes and diagnostics shared by every layer.

Owns: the exception hierarchy (whose classes encode the retry policy) and the
``Diagnostic`` value that every user-facing problem is reported as.
Must not import anything from ``orchestrator`` (it is the bottom layer).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class Severity(enum.StrEnum):
    """How bad a diagnostic is: errors stop a command, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file, a 1-based line and column, and a JSON path into it."""

    file: str
    line: int = 0
    column: int = 0
    path: str = ""

    def __str__(self) -> str:
        text = self.file
        if self.line:
            text += f":{self.line}:{self.column or 1}"
        return text


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem, rendered as ``FILE:LINE:COL: JSON.PATH: summary`` plus an optional detail line."""

    summary: str
    detail: str = ""
    location: Location | None = None
    severity: Severity = Severity.ERROR

    def render(self) -> str:
        """Return the one-line form (plus an indented detail line when there is one)."""
        parts: list[str] = []
        if self.location is not None:
            parts.append(str(self.location))
            if self.location.path:
                parts.append(self.location.path)
        prefix = ": ".join(parts)
        kind = "" if self.severity is Severity.ERROR else "warning: "
        line = f"{prefix}: {kind}{self.summary}" if prefix else f"{kind}{self.summary}"
        if self.detail:
            line += "\n  " + self.detail.replace("\n", "\n  ")
        return line

    def to_json(self) -> dict[str, object]:
        """Return the diagnostic as plain data (for ``--json`` output).

        ``message`` and ``hint`` are the names CI tools read (``hint`` is ``null`` when there is
        none); ``summary`` and ``detail`` are the same texts under the names of format 1.0.
        """
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "path": loc.path if loc else None,
            "severity": str(self.severity),
            "message": self.summary,
            "hint": self.detail or None,
            "summary": self.summary,
            "detail": self.detail,
        }


class OrchestratorError(Exception):
    """Base of every error the product raises on purpose (never a bug)."""

    def __init__(self, summary: str, detail: str = "", location: Location | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail
        self.location = location

    @property
    def diagnostics(self) -> Sequence[Diagnostic]:
        """The problems this error stands for (one, unless a subclass carries several)."""
        return (Diagnostic(self.summary, self.detail, self.location),)

    def render(self) -> str:
        """Human text: one line per problem."""
        return "\n".join(d.render() for d in self.diagnostics)


class ManifestError(OrchestratorError):
    """A manifest could not be loaded or is invalid; carries every problem at once. Never retried."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        diags = tuple(diagnostics)
        first = diags[0] if diags else Diagnostic("invalid manifest")
        super().__init__(first.summary, first.detail, first.location)
        self._diagnostics = diags

    @property
    def diagnostics(self) -> Sequence[Diagnostic]:
        return self._diagnostics


class PlanError(OrchestratorError):
    """The plan cannot be built (a dependency cycle) or is refused (mass delete)."""


class StalePlanError(PlanError):
    """A saved plan no longer matches the manifest or the live state."""


class BackendError(OrchestratorError):
    """A backend could not carry out a step."""

    def __init__(
        self, summary: str, detail: str = "", *, key: str | None = None, delay_s: float = 0.0
    ) -> None:
        super().__init__(summary, detail)
        self.key = key
        self.delay_s = delay_s


class TemporaryBackendError(BackendError):
    """Retry later with backoff (``delay_s`` is the backend's hint, 0 for none)."""


class PermanentBackendError(BackendError):
    """Retrying the same desired state cannot help; wait for a manifest change."""


class ControllerUnavailable(OrchestratorError):
    """No controller answers on the run directory's control socket."""


@dataclass(frozen=True, slots=True)
class ErrorList:
    """A growable list of diagnostics, used while checking so that all problems come out at once."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diag: Diagnostic) -> None:
        """Record one problem."""
        self.items.append(diag)

    @property
    def errors(self) -> list[Diagnostic]:
        """Only the problems of error severity."""
        return [d for d in self.items if d.severity is Severity.ERROR]
