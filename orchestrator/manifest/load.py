"""Reading a manifest set (a file or a directory of ``*.yaml``/``*.yml``) into a ``DesiredState``.

Owns: ``read_manifest_set`` (bytes, their hash, and who may change them), ``ownership_of`` (the
same for one file read elsewhere), ``untrusted`` (the ownership check a root controller applies),
``load_manifest`` (parse, validate, merge, build, check) and ``LoadedManifest``. Every problem
comes out at once as a ``ManifestError`` whose diagnostics name file, line, column and JSON path;
nothing here ever changes anything that runs.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import Diagnostic, Location, ManifestError, Severity
from orchestrator.manifest.build import build_kubernetes, build_resources
from orchestrator.manifest.checks import Gaps, check
from orchestrator.manifest.identities import Identities
from orchestrator.manifest.locate import Document, PathT, parse_yaml
from orchestrator.manifest.schema import apply_defaults, schema_errors, schema_problems
from orchestrator.model.desired import DesiredState
from orchestrator.model.ids import SECTION, Key

SUFFIXES = (".yaml", ".yml")
API_VERSION = "orchestrator/v1"
MAP_SECTIONS = ("queues", "urlGroups", "workers")


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One manifest file: the name shown in messages and its bytes."""

    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Ownership:
    """Who owns a file or directory the manifest was read from, and its mode (``st_mode``)."""

    path: str  # resolved (symlinks followed)
    uid: int
    mode: int
    #: The directory whose entries are the manifest files: anyone who may add a file there adds to
    #: the manifest, so a sticky bit does not make a group- or world-writable one safe.
    listed: bool = False
    #: On a read-only mount (a Kubernetes ConfigMap volume is mode 0777 but read-only): its mode
    #: bits do not let anyone write.
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ManifestSet:
    """The files that make up one manifest, in name order."""

    root: str
    files: tuple[ManifestFile, ...]
    #: The files and directories read, as found on disk (empty for a set that did not come from
    #: disk, one posted to the admin API; for the persisted last good manifest, its copy's).
    ownership: tuple[Ownership, ...] = ()

    @property
    def trust_key(self) -> str:
        """A short hash of the owners and modes of everything read: a chmod or chown changes it."""
        text = ",".join(f"{o.path}:{o.uid}:{o.mode:o}" for o in self.ownership)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def sha256(self) -> str:
        """A hash of every file's name (relative to the root) and content."""
        digest = hashlib.sha256()
        for f in self.files:
            rel = os.path.basename(f.name).encode()
            digest.update(len(rel).to_bytes(4, "big") + rel)
            digest.update(len(f.content).to_bytes(8, "big") + f.content)
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class LoadedManifest:
    """A valid manifest: its desired state, warnings, source files and where each object is written."""

    desired: DesiredState
    source: ManifestSet
    warnings: tuple[Diagnostic, ...] = ()
    locations: Mapping[Key, Location] = field(default_factory=dict)
    #: ``where(section, name, *path)`` → where that manifest path is written (field precision; a
    #: path not written falls back to the nearest enclosing one). ``name`` is ``None`` for the
    #: session. Renderers use it to put their warnings on the field they are about.
    where: Callable[..., Location] | None = None


def _is_manifest_name(name: str) -> bool:
    return name.endswith(SUFFIXES) and not name.startswith(".")


def read_manifest_set(path: str) -> ManifestSet:
    """Read a manifest file, or every ``*.yaml``/``*.yml`` file directly in a directory.

    Hidden names (``.x.yaml``, Kubernetes' ``..data``) are skipped; symlinks are followed, so a
    ConfigMap mount reads the current ``..data`` target each time.

    Raises:
        ManifestError: the path is missing or unreadable, or the directory holds no manifest.
    """
    where = Location(path)
    try:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if _is_manifest_name(n))
            paths = [os.path.join(path, n) for n in names]
            paths = [p for p in paths if os.path.isfile(p)]
            if not paths:
                raise ManifestError(
                    [
                        Diagnostic(
                            "no manifest files (*.yaml, *.yml) in this directory",
                            location=where,
                        )
                    ]
                )
        elif os.path.exists(path):
            paths = [path]
        else:
            raise ManifestError([Diagnostic("no such file or directory", location=where)])
        files = []
        owners: dict[str, Ownership] = {}

        def note(target: str, st: os.stat_result | None = None, listed: bool = False) -> None:
            if target in owners:
                return
            st = st or os.stat(target)
            try:
                read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
            except OSError:
                read_only = False
            owners[target] = Ownership(target, st.st_uid, st.st_mode, listed, read_only)

        def up_from(directory: str) -> None:
            # Every directory up to /: whoever can rename one of them can swap what lies below.
            while True:
                note(directory)
                parent = os.path.dirname(directory)
                if parent == directory:
                    return
                directory = parent

        if os.path.isdir(path):
            note(os.path.realpath(path), listed=True)
            up_from(os.path.realpath(path))
        up_from(os.path.dirname(os.path.abspath(path)))  # where a symlinked path itself lives
        for p in paths:
            real = os.path.realpath(p)
            with open(real, "rb") as fh:
                # Owner and mode of the file actually read, not of whatever the path names later.
                note(real, os.fstat(fh.fileno()))
                files.append(ManifestFile(p, fh.read()))
            up_from(os.path.dirname(real))
    except OSError as exc:
        raise ManifestError(
            [
                Diagnostic(
                    f"cannot read: {exc.strerror or exc}", location=Location(exc.filename or path)
                )
            ]
        ) from exc
    return ManifestSet(path, tuple(files), tuple(owners.values()))


def ownership_of(path: str, st: os.stat_result) -> tuple[Ownership, ...]:
    """The owner and mode of one file read (``st``: its ``fstat``) and of every directory above it
    up to ``/``, for ``untrusted``: what a root controller checks of a file it obeys that is not in
    a manifest directory (the last-known-good copy ``--resume`` starts on).

    Raises:
        OSError: a directory above it cannot be examined.
    """
    real = os.path.realpath(path)
    owners = [Ownership(real, st.st_uid, st.st_mode)]
    directory = os.path.dirname(real)
    while True:
        dst = os.stat(directory)
        try:
            read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        owners.append(Ownership(directory, dst.st_uid, dst.st_mode, read_only=read_only))
        parent = os.path.dirname(directory)
        if parent == directory:
            return tuple(owners)
        directory = parent


def untrusted(mset: ManifestSet, trusted_uid: int) -> list[Diagnostic]:
    """What makes a manifest set unsafe for a controller running as ``trusted_uid`` (root) to obey.

    Whoever can change a manifest chooses what runs and as whom, so a root controller reads only
    files owned by root (or ``trusted_uid``) that no group or other user can write, in directories
    (every one up to ``/``) that are root's and that no one else can write, as sshd's StrictModes
    does for keys. A sticky directory (``/tmp``) is fine above the manifest, not as the manifest
    directory itself (anyone could add a file to it); a read-only mount is fine whatever its mode.
    """
    problems = []
    for o in mset.ownership:
        kind = "directory" if stat.S_ISDIR(o.mode) else "file"
        where = Location(o.path)
        if o.uid not in (0, trusted_uid):
            problems.append(
                Diagnostic(
                    f"manifest {kind} is owned by uid {o.uid}, not root",
                    "A controller running as root obeys only manifests no other user can change "
                    f"(whoever writes one chooses what runs, as whom). Run: chown root {o.path}",
                    where,
                )
            )
        sticky = bool(o.mode & stat.S_ISVTX) and not o.listed
        if o.mode & 0o022 and not o.read_only and not (stat.S_ISDIR(o.mode) and sticky):
            problems.append(
                Diagnostic(
                    f"manifest {kind} is writable by its group or by others "
                    f"(mode {stat.S_IMODE(o.mode):04o})",
                    "A controller running as root obeys only manifests no other user can change "
                    f"(whoever writes one chooses what runs, as whom). Run: chmod go-w {o.path}",
                    where,
                )
            )
    return problems


@dataclass(slots=True)
class _Merge:
    data: dict[str, object] = field(default_factory=dict)
    origins: dict[tuple[str, str | None], Document] = field(default_factory=dict)
    #: Each pool's ``cwd`` as written, before ``_resolve_paths`` made it absolute on this host.
    cwd_as_written: dict[str, str] = field(default_factory=dict)

    def where(self, section: str, name: str | None, *rest: str | int) -> Location:
        doc = self.origins.get((section, name))
        if doc is None:
            return Location("<manifest>")
        path: PathT = (section, *rest) if name is None else (section, name, *rest)
        return doc.location(path)


def _merge(
    docs: list[Document], dropped: set[tuple[str, str | None]], problems: list[Diagnostic]
) -> _Merge:
    """Merge the documents by name, leaving out the objects in ``dropped`` (``(section, name)``;
    name ``None`` for the session): those failed the schema. Their names still count for the
    "defined twice" check, which does not depend on what they hold."""
    merge = _Merge()
    merge.data = {"apiVersion": API_VERSION, "queues": {}, "urlGroups": {}, "workers": {}}
    for doc in docs:
        assert isinstance(doc.data, dict)
        if "session" in doc.data:
            first = merge.origins.get(("session", None))
            if first is not None:
                problems.append(
                    Diagnostic(
                        "session is defined twice",
                        f"It is already defined at {first.location(('session',))}; a manifest "
                        "set has exactly one session.",
                        doc.location(("session",)),
                    )
                )
            else:
                merge.origins[("session", None)] = doc
                if ("session", None) not in dropped:
                    merge.data["session"] = _resolve_paths("session", doc.data["session"], doc.file)
        for section in MAP_SECTIONS:
            items = doc.data.get(section)
            if not isinstance(items, dict):
                continue
            target = merge.data[section]
            assert isinstance(target, dict)
            for name, body in items.items():
                first = merge.origins.get((section, name))
                if first is not None:
                    problems.append(
                        Diagnostic(
                            f"{section}.{name} is defined twice",
                            f"It is already defined at {first.location((section, name))}; a name "
                            "may be defined only once.",
                            doc.location((section, name)),
                        )
                    )
                    continue
                merge.origins[(section, name)] = doc
                if (section, name) in dropped:
                    continue
                if section == "workers" and isinstance(body, dict) and "cwd" in body:
                    merge.cwd_as_written[name] = str(body["cwd"])
                target[name] = _resolve_paths(section, body, doc.file)
    return merge


def _resolve_paths(section: str, body: object, file: str) -> object:
    """Make relative paths (a pool's ``cwd``, TLS files, the dashboard's auth files, sandbox
    paths) relative to the file that names them."""
    if not isinstance(body, dict):
        return body
    base = os.path.dirname(os.path.abspath(file))

    def fix(value: object) -> object:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return os.path.normpath(os.path.join(base, value))
        return value

    def fix_sandbox(box: object) -> object:
        files = box.get("filesystem") if isinstance(box, dict) else None
        if not isinstance(box, dict) or not isinstance(files, dict):
            return box
        lists = {
            k: [fix(p) for p in v] if k in ("readOnly", "readWrite") and isinstance(v, list) else v
            for k, v in files.items()
        }
        return {**box, "filesystem": lists}

    out = dict(body)
    if section == "workers" and "cwd" in out:
        out["cwd"] = fix(out["cwd"])
    if section == "workers" and "sandbox" in out:
        out["sandbox"] = fix_sandbox(out["sandbox"])
    listener = out.get("listener") if section == "session" else None
    if isinstance(listener, dict) and "sandbox" in listener:
        out["listener"] = {**listener, "sandbox": fix_sandbox(listener["sandbox"])}
    if section == "session" and isinstance(out.get("tls"), list):
        out["tls"] = [
            {**t, "certFile": fix(t.get("certFile")), "keyFile": fix(t.get("keyFile"))}
            if isinstance(t, dict)
            else t
            for t in out["tls"]
        ]
    dashboard = out.get("dashboard") if section == "session" else None
    auth = dashboard.get("auth") if isinstance(dashboard, dict) else None
    if isinstance(dashboard, dict) and isinstance(auth, dict):
        out["dashboard"] = {
            **dashboard,
            "auth": {k: fix(v) if k in ("tokenFile", "basicFile") else v for k, v in auth.items()},
        }
    return out


def load_manifest(
    source: str | ManifestSet,
    *,
    identities: Identities | None = None,
    strict_identities: bool = False,
) -> LoadedManifest:
    """Load, validate and normalise a manifest set.

    Args:
        source: a path (file or directory), or a set already read.
        identities: host user and group lookups; ``None`` skips those checks.
        strict_identities: unknown users and groups are errors (apply/run) rather than warnings.

    Returns:
        The loaded manifest, with any warnings.

    Raises:
        ManifestError: with every error found (and the warnings), sorted by file and line.
    """
    mset = read_manifest_set(source) if isinstance(source, str) else source
    problems: list[Diagnostic] = []
    docs: list[Document] = []
    unreadable = False
    for f in mset.files:
        try:
            text = f.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = f.content[: exc.start]
            line = before.count(b"\n") + 1
            column = exc.start - (before.rfind(b"\n") + 1) + 1
            problems.append(
                Diagnostic(
                    f"not UTF-8 text (byte 0x{f.content[exc.start]:02x})",
                    "Save the file as UTF-8.",
                    Location(f.name, line, column),
                )
            )
            unreadable = True
            continue
        parsed, yaml_problems = parse_yaml(f.name, text)
        problems.extend(yaml_problems)
        if not parsed and not yaml_problems:
            problems.append(
                Diagnostic(
                    "manifest file is empty",
                    "An empty file is never applied (it may be a save in progress).",
                    Location(f.name, 1, 1),
                )
            )
        # A file that did not parse may define anything.
        unreadable = unreadable or (not parsed and bool(yaml_problems))
        docs.extend(_share_api_version(parsed))
    # All at once: each object (the session, every queue, URL group and pool) is checked against
    # the schema on its own; one that fails is dropped, and the semantic checks run on the rest,
    # told by ``Gaps`` what was dropped so that they say nothing that only follows from it.
    dropped: set[tuple[str, str | None]] = set()
    wanted: set[str] | None = set()
    valid_docs = []
    for doc in docs:
        if not isinstance(doc.data, dict):
            problems.extend(schema_errors(doc))  # "must be a mapping": nothing in it is readable
            unreadable = True
            continue
        valid_docs.append(doc)
        failed = []
        for owner, diagnostic in schema_problems(doc):
            problems.append(diagnostic)
            failed.append(owner)
        for owner in [*failed, *doc.broken]:
            target = _object(owner)
            if target is None:
                unreadable = True
            elif target != ("", None):
                dropped.add(target)
                if wanted is not None and target[0] in ("urlGroups", "workers"):
                    body = _at(doc.data, target)
                    queue = body.get("queue") if isinstance(body, dict) else None
                    wanted = wanted | {queue} if isinstance(queue, str) else None
    merge = _merge(valid_docs, dropped, problems)
    session_read = ("session", None) in merge.origins
    gaps = Gaps(
        dropped=frozenset((s, n) for s, n in dropped if n is not None),
        queues_wanted=None if wanted is None else frozenset(wanted),
        unreadable=unreadable,
        session=("session", None) in dropped or (unreadable and not session_read),
    )
    filled = apply_defaults(merge.data)
    assert isinstance(filled, dict)
    resources = build_resources(filled)
    problems.extend(
        check(
            resources,
            filled,
            merge.where,
            identities=identities,
            strict_identities=strict_identities,
            gaps=gaps,
        )
    )
    if any(p.severity is Severity.ERROR for p in problems):
        raise ManifestError(_sorted(problems))
    locations = {
        key: merge.where(SECTION[key.kind], None if key.kind.value == "session" else key.name)
        for key in resources
    }
    desired = DesiredState.of(
        resources, mset.sha256, build_kubernetes(filled, merge.cwd_as_written)
    )
    return LoadedManifest(desired, mset, tuple(_sorted(problems)), locations, merge.where)


def _share_api_version(docs: list[Document]) -> list[Document]:
    """Let the later documents of a file (after ``---``) take the first one's ``apiVersion``.

    Several documents in one file are supported, and merge by name as separate files do: that has
    always loaded, so making it an error would break working manifests. A file states its format
    once, though: a second document without ``apiVersion`` was reported as "missing apiVersion",
    which is not what anyone writing ``---`` meant. It may still repeat it (and must then agree).
    """
    first = docs[0].data if docs else None
    version = first.get("apiVersion") if isinstance(first, dict) else None
    for doc in docs[1:]:
        # Only a valid one: a wrong one is reported once, where it is written.
        if version == API_VERSION and isinstance(doc.data, dict) and "apiVersion" not in doc.data:
            doc.data = {"apiVersion": version, **doc.data}
    return docs


def _object(path: PathT) -> tuple[str, str | None] | None:
    """The object a problem at ``path`` spoils: ``("session", None)``, ``(section, name)``,
    ``("", None)`` for one that spoils nothing (``apiVersion``, an ``x-`` field), or ``None`` when
    a whole section or top-level field is unreadable (a mistyped ``queus:``, ``queues: [a]``)."""
    if not path:
        return ("", None)  # the document itself (a missing apiVersion): its sections still read
    head = path[0]
    if head == "session":
        return ("session", None)
    if head in MAP_SECTIONS:
        return (str(head), str(path[1])) if len(path) >= 2 else None
    if head == "apiVersion" or str(head).startswith("x-"):
        return ("", None)
    return None


def _at(data: object, target: tuple[str, str | None]) -> object:
    section = data.get(target[0]) if isinstance(data, dict) else None
    return section.get(target[1]) if isinstance(section, dict) else None


def _sorted(problems: list[Diagnostic]) -> list[Diagnostic]:
    def order(d: Diagnostic) -> tuple[str, int, int]:
        loc = d.location
        return (loc.file, loc.line, loc.column) if loc else ("", 0, 0)

    return sorted(problems, key=order)
