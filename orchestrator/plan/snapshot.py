"""Live state without a controller: a snapshot written by a controller, or a manifest taken as live.

Owns: ``SPEC_FORMAT``, ``spec_document`` (what ``orchestrator status --json --spec`` carries as its
``spec`` member: the controller's live state, observed and last applied, with its generation),
``read_spec`` (a snapshot back into a ``LiveState``, for ``plan --live FILE``) and ``assumed_live``
(the live state a backend reports once a desired state is applied, for ``plan --against OLD``).

Why these give the plan a running controller gives: a controller-backed plan diffs the manifest
against ``Reconciler.live()``: what the backend observes, what the controller last applied, and the
generation. The snapshot carries exactly those, so ``--live`` reproduces that plan, drift
included. The linux and httpsys backends observe an object as the definition they applied (a queue's
length and 503 verbosity as http.sys reports them, which are the ones set), so after a clean apply
of OLD both the observed and the applied state are OLD's resources: that is ``assumed_live``.

Resources are encoded field by field with their Python names (exact: a decoded resource is equal to
the one encoded, so fingerprints match). Secret environment values never leave the controller:
a snapshot holds their SHA-256, and reading it takes the manifest's value back when its hash
matches (so an unchanged secret is no change), or keeps a marker that differs from any value.
Pure: standard library, ``orchestrator.model`` and ``orchestrator.errors``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType

from orchestrator.errors import PlanError
from orchestrator.model.desired import RESOURCE_TYPES, DesiredState, EnvVar, Resource, WorkerPool
from orchestrator.model.ids import Key
from orchestrator.model.live import Fault, LiveState, Repair

SPEC_FORMAT = "orchestrator-spec/1"
_SECRET = "\x00sha256:"  # the value of a secret read back from a snapshot: no manifest value has it


_PRIMITIVES: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
}


class _Mismatch(Exception):
    """A value that does not fit its field's type."""


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _encode(value: object) -> object:
    if isinstance(value, Key):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, EnvVar):
        if value.secret:
            secret = value.value[len(_SECRET) :] if value.value.startswith(_SECRET) else None
            return {"name": value.name, "secret": True, "sha256": secret or _sha(value.value)}
        return {"name": value.name, "value": value.value, "secret": False}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "key"
        }
    return value


def encode_resource(resource: Resource) -> dict[str, object]:
    """One resource as plain data: its address and its fields by Python name."""
    body = _encode(resource)
    assert isinstance(body, dict)
    return {"address": str(resource.key), "fields": body}


def _decode_dataclass(cls: type, data: object, where: str) -> object:
    if not isinstance(data, dict):
        raise _Mismatch(f"{where}: expected an object")
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name == "key" or f.name not in data:
            continue
        values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise _Mismatch(f"{where}: unknown field {sorted(unknown)[0]!r}")
    return values


def _decode(hint: object, value: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, value, where)
            except _Mismatch:
                continue
        raise _Mismatch(f"{where}: {value!r} fits none of {hint}")
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise _Mismatch(f"{where}: {value!r} is not one of {typing.get_args(hint)}")
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise _Mismatch(f"{where}: expected a list")
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is Key:
        try:
            return Key.parse(str(value))
        except ValueError as exc:
            raise _Mismatch(f"{where}: {exc}") from None
    if hint is EnvVar:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise _Mismatch(f"{where}: expected an environment variable")
        if value.get("secret") is True:
            return EnvVar(name=value["name"], value=_SECRET + str(value.get("sha256")), secret=True)
        return EnvVar(name=value["name"], value=str(value.get("value")), secret=False)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise _Mismatch(f"{where}: {value!r} is not a {hint.__name__}") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint(**_decode_dataclass(hint, value, where))  # type: ignore[arg-type]
    # JSON keeps 1 and 1.0 apart, and so did the value as loaded: neither is converted.
    accepted = _PRIMITIVES.get(hint) if isinstance(hint, type) else None
    if accepted and isinstance(value, accepted) and (hint is bool or not isinstance(value, bool)):
        return value
    raise _Mismatch(f"{where}: {value!r} is not a {getattr(hint, '__name__', hint)}")


def decode_resource(data: object, where: str) -> Resource:
    """A resource from ``encode_resource``'s form.

    Raises:
        ValueError: the data is not such a resource (the message says where).
    """
    try:
        if not isinstance(data, dict):
            raise _Mismatch(f"{where}: expected an object")
        try:
            key = Key.parse(str(data.get("address")))
        except ValueError as exc:
            raise _Mismatch(f"{where}: {exc}") from None
        cls = RESOURCE_TYPES[key.kind]
        fields = _decode_dataclass(cls, data.get("fields"), f"{where} ({key})")
        assert isinstance(fields, dict)
        resource: Resource = cls(key=key, **fields)
    except (_Mismatch, ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    return resource


def _resources(items: Mapping[Key, Resource]) -> list[dict[str, object]]:
    return [encode_resource(items[k]) for k in sorted(items, key=Key.sort_key)]


def spec_document(live: LiveState) -> dict[str, object]:
    """The ``spec`` member of ``orchestrator status --json --spec``: enough to plan against.

    Args:
        live: the controller's live state (``Reconciler.live()``: observed, last applied, faults).
    """
    return {
        "format": SPEC_FORMAT,
        "backend": live.backend,
        "generation": live.generation,
        "manifest_sha256": live.manifest_sha256,
        "fingerprint": live.fingerprint(),
        "applied": _resources(live.applied),
        "observed": _resources(live.resources),
        "faults": [
            {
                "address": str(f.key),
                "reason": f.reason,
                "detail": f.detail,
                "repair": str(f.repair),
                "instance": f.instance,
            }
            for f in live.faults
        ],
    }


def _restore_secrets(resource: Resource, desired: DesiredState) -> Resource:
    """Take the manifest's value of a secret whose hash the snapshot holds, when they match."""
    want = desired.resources.get(resource.key)
    if not isinstance(resource, WorkerPool) or not isinstance(want, WorkerPool):
        return resource
    values = {e.name: e.value for e in want.env if e.secret}
    env = tuple(
        dataclasses.replace(e, value=values[e.name])
        if e.secret
        and e.value.startswith(_SECRET)
        and e.name in values
        and _sha(values[e.name]) == e.value[len(_SECRET) :]
        else e
        for e in resource.env
    )
    return resource if env == resource.env else dataclasses.replace(resource, env=env)


def _read_list(doc: Mapping[str, object], name: str, source: str) -> list[object]:
    items = doc.get(name)
    if not isinstance(items, list):
        raise ValueError(f"spec.{name} is missing or not a list")
    return items


def read_spec(snapshot: object, source: str, desired: DesiredState) -> LiveState:
    """Turn a snapshot from ``orchestrator status --json --spec`` into the live state it shows.

    Args:
        snapshot: the parsed JSON document (the whole status document, or its ``spec`` member).
        source: the file it came from, for messages.
        desired: the manifest being planned (secret values are matched against it).

    Raises:
        PlanError: it is not such a snapshot, or a resource in it cannot be read.
    """
    spec = snapshot.get("spec") if isinstance(snapshot, dict) else None
    if spec is None and isinstance(snapshot, dict) and snapshot.get("format") == SPEC_FORMAT:
        spec = snapshot
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise PlanError(
            f"{source}: not a controller snapshot (no spec member of format {SPEC_FORMAT})",
            "Write one on the host with: orchestrator status --json --spec > FILE",
        )
    try:
        applied = {}
        for i, item in enumerate(_read_list(spec, "applied", source)):
            res = _restore_secrets(decode_resource(item, f"spec.applied[{i}]"), desired)
            applied[res.key] = res
        observed = {}
        for i, item in enumerate(_read_list(spec, "observed", source)):
            res = _restore_secrets(decode_resource(item, f"spec.observed[{i}]"), desired)
            # The same object as applied when it is equal: the fingerprint hashes each once.
            observed[res.key] = applied.get(res.key, res) if applied.get(res.key) == res else res
        faults = []
        for i, item in enumerate(_read_list(spec, "faults", source)):
            if not isinstance(item, dict):
                raise ValueError(f"spec.faults[{i}] is not an object")
            faults.append(
                Fault(
                    key=Key.parse(str(item.get("address"))),
                    reason=str(item.get("reason", "")),
                    detail=str(item.get("detail", "")),
                    repair=Repair(str(item.get("repair", "none"))),
                    instance=str(item.get("instance", "")),
                )
            )
        generation = spec.get("generation", 0)
        if not isinstance(generation, int):
            raise ValueError("spec.generation is not a number")
    except ValueError as exc:
        raise PlanError(
            f"{source}: unreadable controller snapshot: {exc}",
            "Write it again with: orchestrator status --json --spec > FILE (the same version of "
            "orchestrator reads it).",
        ) from None
    return LiveState(
        resources=MappingProxyType(observed),
        applied=MappingProxyType(applied),
        faults=tuple(faults),
        backend=str(spec.get("backend", "")),
        generation=generation,
        manifest_sha256=str(spec.get("manifest_sha256", "")),
    )


def assumed_live(applied: DesiredState, backend: str) -> LiveState:
    """The live state a controller reports once ``applied`` is applied cleanly on ``backend``.

    Every object is observed as its applied definition and none has a fault. The generation is
    unknown (0): a controller counts its own applies.
    """
    return LiveState(
        resources=applied.resources,
        applied=applied.resources,
        backend=backend,
        manifest_sha256=applied.manifest_sha256,
    )
