"""Identities: the kind of an object and its key (``kind/name``), the address used everywhere.

Owns: ``Kind``, ``Key``, ``KIND_RANK`` (the create order of kinds).
Pure: standard library only.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
NAME_MAX = 63


class Kind(enum.StrEnum):
    """The kinds of managed object, spelt as in addresses (``queue/api``)."""

    SESSION = "session"
    QUEUE = "queue"
    URLGROUP = "urlgroup"
    WORKER = "worker"


#: Creation order of kinds; deletes run the other way. Ties in a plan are broken by this rank.
KIND_RANK: dict[Kind, int] = {Kind.SESSION: 0, Kind.QUEUE: 1, Kind.URLGROUP: 2, Kind.WORKER: 3}

#: The manifest section each kind lives in.
SECTION: dict[Kind, str] = {
    Kind.SESSION: "session",
    Kind.QUEUE: "queues",
    Kind.URLGROUP: "urlGroups",
    Kind.WORKER: "workers",
}


class Key(NamedTuple):
    """The identity of one object: its kind and its name. ``str(key)`` is its address.

    A named tuple rather than a dataclass: keys are hashed and compared millions of times in a large
    plan, and tuple hashing runs in C.
    """

    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"

    def sort_key(self) -> tuple[int, str]:
        """Order by kind rank (session first), then name."""
        return (KIND_RANK[self.kind], self.name)

    @staticmethod
    def parse(address: str) -> Key:
        """Turn ``kind/name`` back into a key; raises ``ValueError`` when it is not one."""
        kind, sep, name = address.partition("/")
        if not sep or not name:
            raise ValueError(f"not an address: {address!r}")
        return Key(Kind(kind), name)


def valid_name(name: str) -> bool:
    """Whether ``name`` is a valid object name (lowercase DNS label, at most 63 characters)."""
    return len(name) <= NAME_MAX and NAME_RE.match(name) is not None
