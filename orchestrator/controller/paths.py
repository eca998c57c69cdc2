"""Where a controller keeps its sockets and its state: the run directory, the state directory, and
how a command finds either.

Owns: ``default_run_dir`` and ``RunDir`` (``control.sock``, ``broker.sock``, ``notify.sock``,
``queues/NAME.sock``, the lock and pid files: what may vanish with ``/run`` at every stop);
``default_state_dir`` and ``StateDir`` (the last-known-good manifest and the users the controller
created: what must survive a stop, a reboot and a package upgrade); ``move_state``, which moves
state an older version kept in ``<run dir>/state/``; ``session_paths``, the session's name,
``runDir`` and ``stateDir`` read from manifest files without validating them (for ``--resume`` on
an invalid manifest and for ``-f MANIFEST``). Must not import a backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass

from orchestrator.errors import ManifestError, OrchestratorError

#: The files of a state directory, and what an older version kept in ``<run dir>/state/``.
LKG_FILE = "last-known-good.json"
USERS_FILE = "users.json"
STATE_FILES = (LKG_FILE, USERS_FILE)
#: The session name the schema gives a manifest that names none.
DEFAULT_SESSION = "main"
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def default_run_dir() -> str:
    """``/run/orchestrator`` as root; ``$XDG_RUNTIME_DIR/orchestrator`` or ``/tmp/orchestrator-UID``."""
    if os.geteuid() == 0:
        return "/run/orchestrator"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "orchestrator")
    return f"/tmp/orchestrator-{os.geteuid()}"


def default_state_dir(session: str) -> str:
    """``/var/lib/orchestrator/SESSION`` as root; ``$XDG_STATE_HOME/orchestrator/SESSION`` otherwise.

    ``XDG_STATE_HOME`` counts only when it is set to an absolute path (the XDG Base Directory
    specification says relative ones are invalid and must be ignored); the default is
    ``~/.local/state``. One directory per session, so that two controllers of one host (two
    sessions) never share a last-known-good manifest.
    """
    if os.geteuid() == 0:
        return os.path.join("/var/lib/orchestrator", session)
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "orchestrator", session)


@dataclass(frozen=True, slots=True)
class RunDir:
    """The files of one controller's run directory: sockets, the lock and the pid file only."""

    root: str

    @property
    def control(self) -> str:
        """The admin API socket (mode 0600)."""
        return os.path.join(self.root, "control.sock")

    @property
    def broker(self) -> str:
        """The open-by-name broker socket."""
        return os.path.join(self.root, "broker.sock")

    @property
    def notify(self) -> str:
        """The datagram socket workers report readiness on (sd_notify protocol)."""
        return os.path.join(self.root, "notify.sock")

    @property
    def queues(self) -> str:
        """The directory of queue sockets."""
        return os.path.join(self.root, "queues")

    def queue(self, name: str) -> str:
        """The socket path of queue ``name``."""
        return os.path.join(self.queues, f"{name}.sock")

    @property
    def old_state(self) -> str:
        """Where versions before ``--state-dir`` kept state (moved out on start: ``move_state``)."""
        return os.path.join(self.root, "state")

    @property
    def lock(self) -> str:
        """The lock file that allows one controller per run directory."""
        return os.path.join(self.root, "controller.lock")

    @property
    def pidfile(self) -> str:
        """The controller's pid file."""
        return os.path.join(self.root, "controller.pid")


@dataclass(frozen=True, slots=True)
class StateDir:
    """The files of one controller's state directory (mode 0700)."""

    root: str

    @property
    def last_known_good(self) -> str:
        """The manifest that last converged, with its hash (``--resume`` starts on it)."""
        return os.path.join(self.root, LKG_FILE)

    @property
    def users(self) -> str:
        """The users this controller created (``user: auto``), the only ones it deletes."""
        return os.path.join(self.root, USERS_FILE)

    def create(self) -> None:
        """Make the directory (and its parents), mode 0700: it names the users it may delete.

        Raises:
            OSError: it cannot be made (the caller reports the path).
        """
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)


def move_state(old: str, new: StateDir) -> list[str]:
    """Move the state files an older version kept in ``old`` (``<run dir>/state``) into ``new``.

    A file ``new`` already has wins, except the users record, which is merged: a user either
    record names was created by this controller and is its to delete, so dropping one would leave
    it behind forever. ``old`` is removed once empty.

    Returns:
        The names of the files moved or merged (empty when there was nothing to move).

    Raises:
        OSError: a file could not be moved.
    """
    moved: list[str] = []
    if os.path.realpath(old) == os.path.realpath(new.root) or not os.path.isdir(old):
        return moved
    for name in STATE_FILES:
        source = os.path.join(old, name)
        if not os.path.isfile(source):
            continue
        target = os.path.join(new.root, name)
        if name == USERS_FILE and os.path.exists(target):
            users = set(_read_names(source)) | set(_read_names(target))
            tmp = target + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(sorted(users), fh)
            os.replace(tmp, target)
            os.unlink(source)
            moved.append(name)
        elif os.path.exists(target):
            continue  # the state directory's own copy is the one in force
        else:
            # /run is a tmpfs and /var/lib a disk: a rename across them fails, a move copies.
            shutil.move(source, target)
            moved.append(name)
    with contextlib.suppress(OSError):
        os.rmdir(old)  # only when empty: leftovers of a newer or older format stay visible
    return moved


def _read_names(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    return [str(n) for n in data] if isinstance(data, list) else []


@dataclass(frozen=True, slots=True)
class SessionPaths:
    """What a manifest's ``session`` says about where the controller keeps things."""

    name: str
    run_dir: str | None
    state_dir: str | None


def session_paths(path: str) -> SessionPaths:
    """The session's ``name``, ``runDir`` and ``stateDir`` in the manifest at ``path``, read from
    the YAML alone: the rest of the manifest may be invalid (``--resume`` starts on the
    last-known-good manifest because it is; ``status -f`` must work while a file is being fixed).

    Raises:
        OrchestratorError: the files cannot be read, are not YAML, or give one of these fields a
            value that is not a string; the message names the file.
    """
    from orchestrator.manifest.load import read_manifest_set
    from orchestrator.manifest.locate import parse_yaml

    try:
        mset = read_manifest_set(path)
    except ManifestError as exc:
        first = exc.diagnostics[0].render().split("\n", 1)[0] if exc.diagnostics else path
        raise OrchestratorError(first) from exc
    found: dict[str, object] = {}
    for f in mset.files:
        docs, problems = parse_yaml(f.name, f.content.decode("utf-8", errors="replace"))
        if problems and not docs:
            raise OrchestratorError(problems[0].render().split("\n", 1)[0])
        for doc in docs:
            session = doc.data.get("session") if isinstance(doc.data, dict) else None
            if isinstance(session, dict):
                found = {"file": f.name, **session}
                break
        if found:
            break
    values: dict[str, str | None] = {}
    for key in ("name", "runDir", "stateDir"):
        value = found.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise OrchestratorError(
                f"{found['file']}: session.{key} must be a non-empty string, not {value!r}"
            )
        values[key] = value if isinstance(value, str) else None
    name = values["name"]
    if name is not None and not _NAME.fullmatch(name):
        # It becomes a directory name (the default state directory): no "..", no "/".
        raise OrchestratorError(f"{found['file']}: session.name {name!r} is not a valid name")
    return SessionPaths(values["name"] or DEFAULT_SESSION, values["runDir"], values["stateDir"])
