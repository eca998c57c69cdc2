"""Looking up users and groups on this host, behind a small protocol so checks can be tested.

Owns: ``Identities`` (the protocol), ``UserInfo`` and ``HostIdentities`` (``pwd``/``grp``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the host knows it: uid, primary gid and the names of the groups it belongs to."""

    name: str
    uid: int
    gid: int
    groups: frozenset[str]


class Identities(Protocol):
    """Answers "does this user or group exist, and what is it" for semantic checks."""

    def user(self, name: str) -> UserInfo | None:
        """The user called ``name``, or ``None``."""
        ...

    def group(self, name: str) -> int | None:
        """The gid of the group called ``name``, or ``None``."""
        ...


class HostIdentities:
    """The users and groups of this host (``/etc/passwd``, ``/etc/group`` and NSS)."""

    def user(self, name: str) -> UserInfo | None:
        if sys.platform == "win32":
            return None
        import grp
        import pwd

        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        groups = {g.gr_name for g in grp.getgrall() if name in g.gr_mem}
        try:
            groups.add(grp.getgrgid(entry.pw_gid).gr_name)
        except KeyError:
            pass
        return UserInfo(name, entry.pw_uid, entry.pw_gid, frozenset(groups))

    def group(self, name: str) -> int | None:
        if sys.platform == "win32":
            return None
        import grp

        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None
