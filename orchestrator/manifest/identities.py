"""What the checks ask of the host (users, groups, files, commands), behind a small protocol.

Owns: ``Identities`` (the protocol: the host facts a manifest depends on), ``UserInfo``,
``find_command`` (how a worker's ``command[0]`` is found, as the backends' exec does it) and
``HostIdentities`` (this host: ``pwd``/``grp`` and the file system). The manifest core never
touches the host itself, so its checks run against a fake host in tests.
Must not import the backends (the layers forbid it): the worker ``PATH`` rule below mirrors
``backends.linux.spawn.worker_environment``, and a unit test holds the two together.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: The system part of a linux worker's ``PATH`` (``backends.linux.spawn.SYSTEM_PATH``).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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

    def is_file(self, path: str) -> bool:
        """Whether ``path`` (absolute) is a file on this host."""
        ...

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` (absolute) is a directory on this host."""
        ...

    def worker_path(self, backend: str) -> str:
        """The ``PATH`` a worker of ``backend`` (auto, linux, httpsys) gets when its env sets none."""
        ...

    def find_command(self, command: str, path: str, cwd: str) -> str | bool | None:
        """Where ``command`` runs from, for a worker with ``PATH=path`` in directory ``cwd``.

        Returns:
            The program's path; ``False`` when it cannot be found; ``None`` when this host cannot
            tell (the checks then say nothing).
        """
        ...


def find_command(
    command: str, path: str, cwd: str, is_executable: Callable[[str], bool]
) -> str | None:
    """The program ``execvpe(command, ..., {"PATH": path})`` runs after ``chdir(cwd)``, or ``None``.

    Both backends start workers that way on POSIX (the linux shim: ``chdir`` then ``os.execvpe``;
    httpsys under Wine: ``subprocess.Popen(cwd=...)``): a command with a ``/`` is a path, relative
    to ``cwd``; a bare name is looked up in each ``PATH`` entry in order, where an empty or
    relative entry is relative to ``cwd`` too.
    """
    if "/" in command:
        candidate = os.path.normpath(os.path.join(cwd, command))
        return candidate if is_executable(candidate) else None
    for entry in path.split(os.pathsep):
        candidate = os.path.normpath(os.path.join(cwd, entry or ".", command))
        if is_executable(candidate):
            return candidate
    return None


class HostIdentities:
    """This host: its users and groups (``/etc/passwd``, ``/etc/group`` and NSS) and its files."""

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def worker_path(self, backend: str) -> str:
        if backend == "httpsys" or (backend == "auto" and sys.platform == "win32"):
            # The httpsys backend passes the controller's own environment on.
            return os.environ.get("PATH", os.defpath)
        # The controller's interpreter directory first, so the venv's ``orchestrator`` is found.
        return f"{os.path.dirname(sys.executable)}:{SYSTEM_PATH}"

    def find_command(self, command: str, path: str, cwd: str) -> str | bool | None:
        if sys.platform == "win32":
            # CreateProcess searches differently (PATHEXT, the application's directory): no
            # claim beats a wrong one that would stop ``run``.
            return None
        found = find_command(
            command, path, cwd, lambda p: os.path.isfile(p) and os.access(p, os.X_OK)
        )
        return found if found is not None else False

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
