"""The host-wide registry of listening addresses: one owner per ``host:port``, as in http.sys's URL
namespace, where a URL registered by another session is refused with ``ERROR_ALREADY_EXISTS``.

Owns: ``AddressRegistry``, ``Owner``, ``AddressTaken``, ``RegistryError`` and ``registry_directory``.
Each address a controller serves has a lock file in the registry directory, opened and held with
``flock(LOCK_EX | LOCK_NB)`` for as long as the address is served, and holding the owner (session,
run directory, controller pid) as JSON. The kernel drops a lock when its holder dies, even by
SIGKILL: a file nobody holds is stale and never blocks anyone. Taking an address is atomic against
a concurrent taker: a registry-wide lock file (``.lock``) is held while the others are checked and
the new file is taken. ``0.0.0.0:P`` and ``[::]:P`` overlap every host on port P.

Why the registry and not the kernel: the listener binds with ``SO_REUSEPORT`` so that its own
processes share a port, and the kernel allows that between sockets of one effective uid. Two
controllers of one uid (two run directories) could otherwise both bind ``127.0.0.1:8080`` and split
its connections without a word; sockets of different uids are already refused by the kernel.

The directory is ``/run/orchestrator-addresses`` (0755, root) for root, and
``/tmp/orchestrator-UID-addresses`` (0700, checked to be that uid's) otherwise: never inside a run
directory, which systemd empties at a stop while other controllers still hold their addresses.

Must not import anything from orchestrator: it is a leaf that ``listener_ctl`` uses.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

ROOT_DIRECTORY = "/run/orchestrator-addresses"
WILDCARDS = frozenset({"0.0.0.0", "::"})
_LOCK = ".lock"


class RegistryError(OSError):
    """The registry directory cannot be used (wrong owner or mode, not a directory)."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who serves an address."""

    session: str
    run_dir: str
    pid: int

    def to_json(self, address: str) -> bytes:
        """The lock file's content."""
        record = {"address": address, "session": self.session, "run_dir": self.run_dir}
        return json.dumps({**record, "pid": self.pid}, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Owner:
        """Read a lock file's content; unreadable fields read as unknown."""
        try:
            record = json.loads(data)
        except ValueError:
            record = {}
        if not isinstance(record, dict):
            record = {}
        pid = record.get("pid")
        return cls(
            str(record.get("session", "?")),
            str(record.get("run_dir", "?")),
            pid if isinstance(pid, int) else 0,
        )


class AddressTaken(Exception):
    """An address (or one it overlaps) is served by another controller."""

    def __init__(self, address: str, held: str, owner: Owner) -> None:
        self.address = address
        self.held = held
        self.owner = owner
        by = (
            f"session '{owner.session}' (run dir {owner.run_dir}, pid {owner.pid}); "
            "stop it or choose another address"
        )
        if held == address:
            super().__init__(f"{address} is already served by {by}")
        else:
            super().__init__(f"{address} overlaps {held}, already served by {by}")


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def overlaps(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two ``(host, port)`` listening addresses take the same connections: the same port,
    and the same host or a wildcard on either side."""
    if a[1] != b[1]:
        return False
    return a[0] == b[0] or a[0] in WILDCARDS or b[0] in WILDCARDS


def registry_directory(uid: int | None = None) -> str:
    """Where this uid's controllers register their addresses (see the module docstring)."""
    uid = os.geteuid() if uid is None else uid
    return ROOT_DIRECTORY if uid == 0 else f"/tmp/orchestrator-{uid}-addresses"


def _parse_name(name: str) -> tuple[str, int] | None:
    """``(host, port)`` from a lock file's name (``HOST:PORT`` or ``[V6]:PORT``)."""
    host, sep, port = name.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class AddressRegistry:
    """This controller's held addresses, each a locked file in the registry directory."""

    def __init__(self, owner: Owner, directory: str | None = None) -> None:
        self.owner = owner
        self.directory = directory or registry_directory()
        self.held: dict[tuple[str, int], int] = {}  # (host, port) -> the locked file's fd

    # -- the directory ----------------------------------------------------------------------
    def _prepare(self) -> None:
        """Create the directory (0755 for root, 0700 otherwise) and check its owner and mode: a
        directory another user could write to would let them fake or remove entries."""
        uid = os.geteuid()
        mode = 0o755 if uid == 0 else 0o700
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.directory, mode)
        st = os.lstat(self.directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or stat.S_IMODE(st.st_mode) & 0o022:
            raise RegistryError(
                errno.EPERM,
                f"the address registry {self.directory} must be a directory owned by uid {uid} "
                "that no other user can write to",
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The registry-wide lock, held while addresses are checked and taken or released."""
        self._prepare()
        fd = os.open(
            os.path.join(self.directory, _LOCK),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
            0o644,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _path(self, key: tuple[str, int]) -> str:
        return os.path.join(self.directory, format_address(*key))

    # -- taking and releasing ---------------------------------------------------------------
    def acquire(self, host: str, port: int) -> None:
        """Take ``host:port`` for this controller (a no-op when it is already ours).

        Raises:
            AddressTaken: another live controller holds it or an address it overlaps.
            OSError: the registry cannot be used.
        """
        key = (host.strip("[]"), port)
        if key in self.held:
            return
        with self._locked():
            for other, path in self._entries():
                if other in self.held:
                    continue
                # Every entry is checked, not only the overlapping ones: the stale files of
                # controllers killed without releasing go now, so the directory does not grow.
                owner = self._live_owner(path)
                if owner is not None and overlaps(key, other):
                    raise AddressTaken(format_address(*key), format_address(*other), owner)
            self.held[key] = self._take(key)

    def _entries(self) -> list[tuple[tuple[str, int], str]]:
        found = []
        for name in os.listdir(self.directory):
            key = _parse_name(name)
            if key is not None:
                found.append((key, os.path.join(self.directory, name)))
        return found

    @staticmethod
    def _live_owner(path: str) -> Owner | None:
        """The owner recorded at ``path`` while a live controller holds it; a stale file (its
        holder died) is removed, and ``None`` returned."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return Owner.from_json(os.pread(fd, 4096, 0))
            # Nobody holds it: its controller died without releasing it (kill -9).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return None
        finally:
            os.close(fd)

    def _take(self, key: tuple[str, int]) -> int:
        path = self._path(key)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.pwrite(fd, self.owner.to_json(format_address(*key)), 0)
        except OSError:
            os.close(fd)
            raise
        return fd

    def release(self, host: str, port: int) -> None:
        """Give ``host:port`` up: remove its file (only ours: the same inode) and unlock it."""
        key = (host.strip("[]"), port)
        fd = self.held.pop(key, None)
        if fd is None:
            return
        try:
            # OSError: the registry is gone; closing the fd still drops the lock.
            with contextlib.suppress(OSError), self._locked():
                if os.stat(self._path(key)).st_ino == os.fstat(fd).st_ino:
                    os.unlink(self._path(key))
        finally:
            os.close(fd)

    def rename(self, session: str) -> None:
        """Record a new session name in every held file (the session was renamed)."""
        if session == self.owner.session:
            return
        self.owner = Owner(session, self.owner.run_dir, self.owner.pid)
        if not self.held:
            return
        with self._locked():  # a taker reads the files under this lock: never a half-written one
            for key, fd in self.held.items():
                os.ftruncate(fd, 0)
                os.pwrite(fd, self.owner.to_json(format_address(*key)), 0)

    def release_all(self) -> None:
        """Give every held address up (the controller stops)."""
        for host, port in list(self.held):
            self.release(host, port)
