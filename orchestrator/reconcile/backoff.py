"""Capped exponential backoff with jitter, per object.

Owns: ``Backoff`` (the policy) and ``ObjectBackoff`` (one object's failure record).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.model.desired import Resource


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial_s * factor**(n-1)``, capped at ``cap_s``, spread by ±``jitter`` (a fraction)."""

    initial_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 60.0
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        """The wait after the ``failures``-th failure in a row (``failures`` ≥ 1)."""
        base = min(self.cap_s, self.initial_s * self.factor ** max(failures - 1, 0))
        spread = base * self.jitter
        return max(0.0, min(self.cap_s, base + rng.uniform(-spread, spread)))


@dataclass(slots=True)
class ObjectBackoff:
    """Why and until when one object is not retried.

    A permanent failure waits for a different definition (``definition`` is the one that failed),
    not for time; a temporary one waits for ``next_attempt`` unless the definition changes first.
    """

    failures: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    permanent: bool = False
    definition: Resource | None = None
