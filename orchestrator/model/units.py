"""Durations and sizes: parsing the manifest's strings and formatting them back.

Owns: ``parse_duration``, ``format_duration``, ``parse_size``, ``format_size`` and their patterns.
Pure: standard library only.
"""

from __future__ import annotations

import re

DURATION_PATTERN = r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+)$"
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$"

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DURATION_FULL = re.compile(DURATION_PATTERN)
_SIZE_FULL = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$")


def parse_duration(text: str) -> float:
    """Seconds in ``"30s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or ``"0"``.

    Raises:
        ValueError: the text is not a duration.
    """
    if not _DURATION_FULL.match(text):
        raise ValueError(f"not a duration: {text!r} (write it like 30s, 5m or 1h30m)")
    if text == "0":
        return 0.0
    total = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    return round(total, 6)


def format_duration(seconds: float) -> str:
    """The shortest manifest spelling of ``seconds`` (``5400`` → ``"1h30m"``)."""
    if seconds == 0:
        return "0"
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    rest = millis // 1000
    if rest % 86400 == 0:
        return f"{rest // 86400}d"
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def parse_size(text: str) -> int:
    """Bytes in ``"16KiB"``, ``"10MB"``, ``"512"``.

    Raises:
        ValueError: the text is not a size.
    """
    match = _SIZE_FULL.match(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r} (write it like 16KiB or 10MB)")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit or ""])


def format_size(size: int) -> str:
    """The shortest exact manifest spelling of ``size`` bytes (``16384`` → ``"16KiB"``)."""
    if size == 0:
        return "0"
    for unit in ("TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"):
        factor = _SIZE_UNITS[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
