"""Watching the manifest: file-system events as hints, plus a periodic hash poll.

Owns: ``ManifestWatcher``. It watches the manifest's *directory* (editors save by renaming a temporary
file over the target, and a watch on the file itself would stay on the old inode), treats every event
as a hint (the event type is never trusted), ignores editor leftovers, debounces globally (a trailing
edge, with a maximum wait so that continuous writes still converge) and then calls the controller's
hook, which re-reads and hashes the whole set. A periodic hash poll catches what inotify misses (the
``..data`` symlink swap of Kubernetes ConfigMaps, network mounts). If inotify cannot start (watch
limits), it falls back to polling and says so. No parsing and no diffing here.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import threading
import time
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

#: Editor and tool leftovers that never trigger work (a noise filter: correctness never depends on it).
IGNORED = ("4913", "*~", ".*.sw?", ".#*", "*.tmp", ".goutputstream-*", "*.swp", "*.swx")
MAX_WAIT_FACTOR = 6


def ignored(path: str) -> bool:
    """Whether a changed path is editor noise."""
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED)


def _owner(path: str) -> bytes:
    st = os.stat(path)
    return f"{st.st_uid}:{st.st_mode:o}".encode()


def fingerprint(path: str) -> str:
    """A cheap content hash of the manifest file or of every ``*.yaml``/``*.yml`` in the directory
    (symlinks followed, hidden names skipped, as the loader reads them), with owners and modes: a
    root controller refuses files others could change, so a chmod can make a manifest acceptable."""
    digest = hashlib.sha256()
    try:
        if os.path.isdir(path):
            digest.update(_owner(path))
            names = sorted(
                n
                for n in os.listdir(path)
                if n.endswith((".yaml", ".yml")) and not n.startswith(".")
            )
            paths = [os.path.join(path, n) for n in names]
        else:
            paths = [path]
        for p in paths:
            digest.update(p.encode() + b"\0")
            with contextlib.suppress(OSError):
                real = os.path.realpath(p)
                digest.update(_owner(real) + _owner(os.path.dirname(real)))
                with open(real, "rb") as fh:
                    digest.update(fh.read())
    except OSError:
        return "unreadable"
    return digest.hexdigest()


class _Handler(FileSystemEventHandler):
    def __init__(self, hint: Callable[[str], None]) -> None:
        self.hint = hint

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw) if raw else ""
            if path and not ignored(path):
                self.hint(path)


class ManifestWatcher:
    """Calls ``on_change()`` (from its own thread) when the manifest set may have changed."""

    def __init__(
        self,
        path: str,
        on_change: Callable[[], None],
        *,
        debounce_s: float = 0.3,
        poll_s: float = 5.0,
        emit: Callable[..., None] | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self.directory = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        self.on_change = on_change
        self.debounce_s = debounce_s
        self.max_wait_s = max(debounce_s * MAX_WAIT_FACTOR, 2.0)
        self.poll_s = poll_s
        self.emit = emit or (lambda event, **fields: None)
        self._lock = threading.Lock()
        self._first_hint: float | None = None
        self._last_hint = 0.0
        self._stop = threading.Event()
        self._observer: object | None = None
        self._seen = fingerprint(self.path)
        self.mode = "inotify"

    def start(self) -> None:
        """Start the observer (or the polling fallback) and the debounce/poll thread."""
        handler = _Handler(self._hint)
        observer = Observer()
        try:
            observer.schedule(handler, self.directory, recursive=False)
            observer.start()
        except OSError as exc:
            self.mode = "polling"
            self.emit(
                "watch_fallback",
                error=str(exc),
                detail="inotify is unavailable (watch limits?); polling instead",
            )
            observer = PollingObserver(timeout=1.0)
            observer.schedule(handler, self.directory, recursive=False)
            observer.start()
        self._observer = observer
        threading.Thread(target=self._run, name="manifest-watch", daemon=True).start()
        self.emit(
            "watch_start",
            path=self.path,
            directory=self.directory,
            mode=self.mode,
            debounce_s=self.debounce_s,
            poll_s=self.poll_s,
        )

    def _hint(self, _path: str) -> None:
        now = time.monotonic()
        with self._lock:
            if self._first_hint is None:
                self._first_hint = now
            self._last_hint = now

    def _run(self) -> None:
        next_poll = time.monotonic() + self.poll_s
        while not self._stop.wait(0.05):
            now = time.monotonic()
            fire = False
            with self._lock:
                if self._first_hint is not None and (
                    now - self._last_hint >= self.debounce_s
                    or now - self._first_hint >= self.max_wait_s
                ):
                    self._first_hint = None
                    fire = True
            if now >= next_poll:
                next_poll = now + self.poll_s
                if fingerprint(self.path) != self._seen:
                    # Another hint, not a reload: the debounce still waits for the writer to finish.
                    self._hint(self.path)
            if fire:
                self._seen = fingerprint(self.path)
                self.on_change()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        observer = self._observer
        if observer is not None:
            with contextlib.suppress(Exception):
                observer.stop()  # type: ignore[attr-defined]
                observer.join(timeout=2)  # type: ignore[attr-defined]
