"""Who processes run as: resolving users and groups, and the dedicated users of ``user: auto``.

Owns: ``Identity`` and ``IdentityManager``. As root, ``user: auto`` gives each pool a system user
``orch-POOL`` (the IIS ApplicationPoolIdentity idea) created with ``useradd --system`` through ``sh``;
the manager records the users it created and deletes only those. Without root, every process runs as
the controller's own user and nothing is created.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import threading
from dataclasses import dataclass

from orchestrator.backends.linux.host import HostFacts
from orchestrator.errors import PermanentBackendError, TemporaryBackendError

AUTO_PREFIX = "orch-"
LISTENER_USER = "orch-listener"


@dataclass(frozen=True, slots=True)
class Identity:
    """A resolved identity: names and numbers, supplementary groups exactly."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str = "/"

    @property
    def group_names(self) -> tuple[str, ...]:
        """The supplementary groups by name (for status)."""
        out = []
        for gid in self.groups:
            try:
                out.append(grp.getgrgid(gid).gr_name)
            except KeyError:
                out.append(str(gid))
        return tuple(out)


class IdentityManager:
    """Resolves identities and owns the dedicated users it creates."""

    def __init__(self, host: HostFacts, state_dir: str) -> None:
        self.host = host
        self.record = os.path.join(state_dir, "users.json")
        self._lock = threading.Lock()
        #: ``run --allow-degraded``: without root, a named user runs as the invoking user too (the
        #: controller listed that dropped guarantee) rather than being refused.
        self.allow_degraded = False

    # -- ownership record ---------------------------------------------------------------------
    def owned(self) -> set[str]:
        """Users this controller created (and may delete)."""
        try:
            with open(self.record, encoding="utf-8") as fh:
                return set(json.load(fh))
        except (OSError, ValueError):
            return set()

    def _save(self, users: set[str]) -> None:
        os.makedirs(os.path.dirname(self.record), mode=0o700, exist_ok=True)
        tmp = self.record + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(sorted(users), fh)
        os.replace(tmp, self.record)

    # -- resolution ---------------------------------------------------------------------------
    def own(self) -> Identity:
        """The controller's own identity (what everything runs as without root)."""
        entry = pwd.getpwuid(self.host.uid)
        return Identity(
            entry.pw_name, self.host.uid, self.host.gid, tuple(os.getgroups()), entry.pw_dir
        )

    def ensure_user(self, name: str, *, create: bool) -> None:
        """Make sure ``name`` exists, creating it as a system user when ``create`` is set.

        Raises:
            PermanentBackendError: it does not exist and may not be created.
            TemporaryBackendError: useradd failed.
        """
        try:
            pwd.getpwnam(name)
            return
        except KeyError:
            if not create:
                raise PermanentBackendError(
                    f'user "{name}" does not exist on this host',
                    "Create it, or use user: auto for a dedicated user.",
                ) from None
        import sh

        with self._lock:
            try:
                sh.useradd(
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--comment",
                    "orchestrator dedicated identity",
                    name,
                )
            except sh.ErrorReturnCode as exc:
                try:
                    pwd.getpwnam(name)  # created meanwhile by another controller: fine
                    return
                except KeyError:
                    pass
                raise TemporaryBackendError(
                    f'could not create user "{name}"', exc.stderr.decode(errors="replace").strip()
                ) from exc
            self._save(self.owned() | {name})

    def resolve(
        self, user: str, group: str | None, groups: tuple[str, ...], *, auto_name: str
    ) -> Identity:
        """Resolve a manifest identity (``user``/``group``/``groups``) for a process.

        Args:
            user: a user name, or ``auto``.
            group: the primary group, or ``None`` for the user's own.
            groups: supplementary groups, exactly.
            auto_name: the dedicated user ``auto`` stands for.

        Raises:
            PermanentBackendError: an unknown user or group, or a name other than the invoking user
                without root.
        """
        if not self.host.root:
            me = self.own()
            if user not in ("auto", me.user) and not self.allow_degraded:
                raise PermanentBackendError(
                    f'cannot run as "{user}" without root',
                    f'The controller runs as "{me.user}"; run it as root, or use user: auto '
                    "(which means the invoking user here).",
                )
            return me
        name = auto_name if user == "auto" else user
        self.ensure_user(name, create=user == "auto")
        entry = pwd.getpwnam(name)
        gid = entry.pw_gid
        if group is not None:
            gid = self._gid(group)
        return Identity(name, entry.pw_uid, gid, tuple(sorted({self._gid(g) for g in groups})))

    def _gid(self, name: str) -> int:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            raise PermanentBackendError(
                f'group "{name}" does not exist on this host', "Create it with groupadd."
            ) from None

    def release(self, name: str, still_used: set[str]) -> bool:
        """Delete a dedicated user when this controller created it and nothing uses it any more.

        Returns:
            Whether the user was deleted.
        """
        if not self.host.root or name in still_used or name not in self.owned():
            return False
        import sh

        with self._lock:
            try:
                sh.userdel(name)
            except sh.ErrorReturnCode:
                return False
            self._save(self.owned() - {name})
        return True
