"""Which manifest is in force: the running one, the last rejected one, and the last-known-good copy.

Owns: ``ManifestTracker``. A manifest set that is empty, unreadable or invalid changes nothing that
runs: it is recorded as rejected (with its diagnostics) and not tried again until its hash changes (or
an operator forces it). A manifest that loads becomes the desired state; once applied it is persisted
as last-known-good (its files and hash) so that a restarted controller can come up on it (``--resume``)
when the files on disk are broken.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from dataclasses import dataclass

from orchestrator.errors import Diagnostic, Severity
from orchestrator.manifest.load import LoadedManifest, ManifestFile, ManifestSet, ownership_of


@dataclass(frozen=True, slots=True)
class Rejected:
    """A manifest hash that failed, when, and why."""

    sha256: str
    at: float
    diagnostics: tuple[Diagnostic, ...]
    stage: str  # "load" (invalid) or "apply" (refused or failed)

    def summary(self) -> str:
        """The first error (a warning only when there is no error), rendered on one line."""
        first = next(iter(self.ordered()), None)
        return first.render().split("\n", 1)[0] if first is not None else self.stage

    def ordered(self) -> tuple[Diagnostic, ...]:
        """The diagnostics, errors first (a warning is not why a manifest was rejected)."""
        return tuple(sorted(self.diagnostics, key=lambda d: d.severity is not Severity.ERROR))

    @property
    def warnings(self) -> int:
        """How many of the diagnostics are warnings."""
        return sum(1 for d in self.diagnostics if d.severity is not Severity.ERROR)


class ManifestTracker:
    """Bookkeeping of manifests for the controller (no I/O but the LKG file)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.desired: LoadedManifest | None = None
        self.running: LoadedManifest | None = None  # the last manifest that converged
        self.running_sha256 = ""
        self.running_since = 0.0
        self.rejected: Rejected | None = None
        self.failed: dict[str, Rejected] = {}

    def should_try(self, sha256: str, *, force: bool = False) -> bool:
        """Whether a manifest with this hash is worth loading and applying now."""
        if force:
            return True
        if self.desired is not None and self.desired.desired.manifest_sha256 == sha256:
            return False
        return sha256 not in self.failed

    def on_disk(self, sha256: str) -> None:
        """The manifest files now hash to ``sha256``. When that is the desired manifest (an edit
        that was rejected has been reverted), the rejection describes files that no longer exist,
        so it stops being reported; its hash stays in ``failed``, so it is still not retried."""
        rejected = self.rejected
        if (
            rejected is not None
            and self.desired is not None
            and self.desired.desired.manifest_sha256 == sha256
            and not rejected.sha256.startswith(sha256)
        ):
            self.rejected = None

    def accept(self, loaded: LoadedManifest) -> None:
        """A manifest loaded and validated: it is the desired state from now on."""
        self.desired = loaded
        self.failed.pop(loaded.desired.manifest_sha256, None)
        # A newer manifest is in force: a rejection of older content no longer describes anything
        # the operator must act on.
        self.rejected = None

    def reject(
        self, sha256: str, at: float, diagnostics: tuple[Diagnostic, ...], stage: str
    ) -> None:
        """A manifest failed to load or to apply; remember it so it is not retried blindly."""
        rejected = Rejected(sha256, at, diagnostics, stage)
        self.rejected = rejected
        self.failed[sha256] = rejected

    def forget_untrusted(self, sha256: str) -> None:
        """The files of ``sha256``, refused for their owner or mode (rejected as ``sha256@...``),
        are safe now: that rejection no longer stands."""
        prefix = f"{sha256}@"
        if self.rejected and self.rejected.sha256.startswith(prefix):
            self.rejected = None
        for key in [k for k in self.failed if k.startswith(prefix)]:
            del self.failed[key]

    def applied(self, at: float) -> None:
        """The desired manifest is now running: record it and persist it as last-known-good."""
        assert self.desired is not None
        sha = self.desired.desired.manifest_sha256
        self.running = self.desired
        if sha != self.running_sha256:
            self.running_sha256 = sha
            self.running_since = at
            self._persist(self.desired.source)
        if self.rejected and self.rejected.sha256 == sha:
            self.rejected = None

    @property
    def lkg_path(self) -> str:
        """Where the last-known-good manifest is kept."""
        return os.path.join(self.state_dir, "last-known-good.json")

    def _persist(self, source: ManifestSet) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        doc = {
            "root": source.root,
            "sha256": source.sha256,
            "files": [
                {"name": f.name, "content_b64": base64.b64encode(f.content).decode()}
                for f in source.files
            ],
        }
        tmp = self.lkg_path + ".tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a leftover keeps its old mode: write a new file
        # 0600 whatever the umask: ``--resume`` as root refuses a copy others could change.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, self.lkg_path)

    def last_known_good(self) -> ManifestSet | None:
        """The persisted last-known-good manifest set, if any, with the owner and mode of the
        file read and of its directories (``ownership``: what ``untrusted`` checks)."""
        try:
            with open(self.lkg_path, encoding="utf-8") as fh:
                st = os.fstat(fh.fileno())
                doc = json.load(fh)
            files = tuple(
                ManifestFile(str(f["name"]), base64.b64decode(str(f["content_b64"])))
                for f in doc["files"]
            )
            owners = ownership_of(self.lkg_path, st)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return ManifestSet(str(doc.get("root", "")), files, owners)
