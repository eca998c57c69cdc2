"""No silent downgrade: the guarantees a manifest asks for that this controller cannot give.

Owns: ``Guarantees`` (the controller's side of ``plan.guarantees``: the backend's host facts, the
``--allow-degraded`` choice, the dropped guarantees of each manifest, their diagnostics with the
manifest's file and line, the ``guarantee_dropped`` events and the status field) and ``HINT``.
A manifest whose required guarantees cannot be given is refused like an invalid one (at start, on
reload, by ``apply``) unless the controller runs with ``--allow-degraded``; then each dropped
guarantee is logged once and listed by ``status``. Must not import a backend implementation.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.errors import Diagnostic, Location, ManifestError, Severity
from orchestrator.manifest.identities import Identities
from orchestrator.manifest.load import LoadedManifest
from orchestrator.model.desired import PrincipalKind
from orchestrator.plan.guarantees import Dropped, HostGuarantees, dropped_guarantees

#: The last line of a refusal.
HINT = "run as root, or pass --allow-degraded to run without them"

Emit = Callable[..., None]


def location(loaded: LoadedManifest, dropped: Dropped) -> Location | None:
    """Where the manifest asks for ``dropped`` (file, line, column, JSON path), when known."""
    if loaded.where is None:
        return None
    name = None if dropped.section == "session" else dropped.key.name
    return loaded.where(dropped.section, name, *dropped.path)


def diagnostic(loaded: LoadedManifest, dropped: Dropped, detail: str = "") -> Diagnostic:
    """One line: where, the object, the guarantee, what was asked, and why it cannot be given."""
    return Diagnostic(
        f"{dropped.summary()}: {dropped.why}",
        detail,
        location(loaded, dropped),
        Severity.ERROR if dropped.required else Severity.WARNING,
    )


class Guarantees:
    """The dropped guarantees of the manifests this controller loads, judged against one host."""

    def __init__(
        self,
        host: HostGuarantees,
        *,
        allow_degraded: bool,
        emit: Emit,
        identities: Identities | None = None,
    ) -> None:
        self.host = host
        self.allow_degraded = allow_degraded
        self.emit = emit
        self.identities = identities
        self._dropped: dict[str, tuple[Dropped, ...]] = {}
        self._announced: set[tuple[str, Dropped]] = set()

    def _exists(self, kind: PrincipalKind, name: str) -> bool:
        ids = self.identities
        if ids is None:
            return True
        found = ids.user(name) if kind is PrincipalKind.USER else ids.group(name)
        return found is not None

    def dropped(self, loaded: LoadedManifest) -> tuple[Dropped, ...]:
        """The guarantees ``loaded`` asks for that this host cannot give (computed once)."""
        sha = loaded.desired.manifest_sha256
        if sha not in self._dropped:
            self._dropped[sha] = tuple(
                dropped_guarantees(loaded.desired, self.host, exists=self._exists)
            )
        return self._dropped[sha]

    def refused(self, loaded: LoadedManifest) -> list[Dropped]:
        """What stops ``loaded`` here: its required dropped guarantees, unless degraded mode is
        allowed (then nothing)."""
        if self.allow_degraded:
            return []
        return [d for d in self.dropped(loaded) if d.required]

    def check(self, loaded: LoadedManifest) -> None:
        """Refuse ``loaded`` as an invalid manifest when it asks for what cannot be given.

        Raises:
            ManifestError: one error per refused guarantee (file, line, object, why).
        """
        refused = self.refused(loaded)
        if refused:
            hint = f"This controller cannot give it: {HINT}."
            raise ManifestError([diagnostic(loaded, d, hint) for d in refused])

    def refusal(self, path: str, loaded: LoadedManifest) -> str:
        """What ``run`` prints when it refuses to start: one line per guarantee, then the hint."""
        refused = self.refused(loaded)
        lines = [diagnostic(loaded, d).render() for d in refused]
        count = f"{len(refused)} guarantee{'' if len(refused) == 1 else 's'}"
        lines.append(
            f"{path}: not started: the manifest asks for {count} this controller cannot give; "
            f"{HINT}"
        )
        return "\n".join(lines)

    def announce(self, loaded: LoadedManifest) -> None:
        """Log each dropped guarantee of ``loaded`` as a warning event, once per manifest."""
        sha = loaded.desired.manifest_sha256
        for d in self.dropped(loaded):
            if (sha, d) in self._announced:
                continue
            self._announced.add((sha, d))
            where = location(loaded, d)
            self.emit(
                "guarantee_dropped",
                level="warning",
                manifest=sha[:12],
                **d.to_json(),
                location=str(where) if where is not None else None,
            )

    def document(self, loaded: LoadedManifest | None) -> list[dict[str, object]]:
        """The ``degraded`` field of ``status``: every dropped guarantee of ``loaded``."""
        if loaded is None:
            return []
        out = []
        for d in self.dropped(loaded):
            where = location(loaded, d)
            out.append({**d.to_json(), "location": str(where) if where is not None else None})
        return out
