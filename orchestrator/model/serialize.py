"""Turning resources into plain data: the normalised JSON form and the manifest (YAML) form.

Owns: ``to_data`` (manifest field names, seconds and bytes as numbers; used by plans, status and
fingerprints), ``to_manifest`` (durations and sizes as strings; what a user would write),
``to_display`` (the manifest spelling with secrets masked, for plan text) and ``flatten`` (dotted
paths for field-level diffs).
Pure: standard library and ``orchestrator.model`` only.
"""

from __future__ import annotations

import dataclasses
import enum

from orchestrator.model.ids import Key
from orchestrator.model.units import format_duration, format_size

MASK = "(sensitive value)"


def _value(value: object, unit: str, *, manifest: bool, mask: bool, implicit: bool) -> object:
    if value is None:
        return None
    if isinstance(value, Key):
        return value.name
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return value
    if manifest and unit == "duration" and isinstance(value, int | float):
        return format_duration(float(value))
    if manifest and unit == "size" and isinstance(value, int):
        return format_size(value)
    if isinstance(value, tuple):
        return _sequence(value, manifest=manifest, mask=mask)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _object(value, manifest=manifest, mask=mask, implicit=implicit)
    return value


def _sequence(items: tuple[object, ...], *, manifest: bool, mask: bool) -> object:
    from orchestrator.model.desired import EnvVar, Principal

    if items and all(isinstance(i, EnvVar) for i in items):
        env: dict[str, object] = {}
        for item in items:
            assert isinstance(item, EnvVar)
            if item.secret and mask:
                env[item.name] = MASK
            elif item.secret and manifest:
                env[item.name] = {"value": item.value, "secret": True}
            else:
                env[item.name] = item.value
        return env
    out: list[object] = []
    for item in items:
        if isinstance(item, Principal):
            out.append({str(item.kind): item.name})
        else:
            out.append(_value(item, "", manifest=manifest, mask=mask, implicit=False))
    return out


def _object(obj: object, *, manifest: bool, mask: bool, implicit: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        meta = f.metadata
        if f.name == "key":
            if meta.get("manifest") == "name":
                key = getattr(obj, "key")  # noqa: B009
                out["name"] = key.name
            continue
        if meta.get("implicit") and not implicit:
            continue
        name = str(meta.get("manifest") or f.name)
        raw = getattr(obj, f.name)
        if manifest and raw is None:
            continue
        if f.name == "env" and raw == ():
            out[name] = {}
            continue
        unit = str(meta.get("unit") or "")
        out[name] = _value(raw, unit, manifest=manifest, mask=mask, implicit=implicit)
    return out


def to_data(obj: object, *, mask_secrets: bool = False) -> dict[str, object]:
    """The normalised plain-data form of a resource (or any part of one).

    Args:
        obj: a resource dataclass.
        mask_secrets: replace secret environment values with a fixed marker.
    """
    return _object(obj, manifest=False, mask=mask_secrets, implicit=True)


def to_manifest(obj: object) -> dict[str, object]:
    """The manifest form of a resource: what a user would write to get exactly this object."""
    return _object(obj, manifest=True, mask=False, implicit=False)


def to_display(obj: object) -> dict[str, object]:
    """The form plans show people: manifest spelling (``90s``, ``16KiB``), secrets masked, and the
    implicit references (``session``) included, with the same paths as ``to_data``."""
    return _object(obj, manifest=True, mask=True, implicit=True)


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    """Dotted paths to leaf values (lists stay whole: a list is one value in a diff)."""
    if isinstance(data, dict) and data:
        flat: dict[str, object] = {}
        for name, value in data.items():
            flat.update(flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    return {prefix: data}
