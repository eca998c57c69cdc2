"""Durations and sizes parse from the manifest's strings and format back to them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.model.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("29h", 104400.0),
        ("1d", 86400.0),
        ("1.5s", 1.5),
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    """Each unit multiplies as written, and parts add up."""
    assert seconds == parse_duration(text)


@pytest.mark.parametrize("text", ["", "30", "5x", "1h 30m", "-5s", "s", "m5"])
def test_malformed_durations_are_refused(text: str) -> None:
    """A duration needs a unit on every number (only a bare 0 may go without)."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512", 512),
        ("16KiB", 16384),
        ("10MB", 10_000_000),
        ("1MiB", 1048576),
        ("2 GiB", 2 * 1024**3),
    ],
)
def test_sizes_parse_to_bytes(text: str, size: int) -> None:
    """Binary and decimal units are both understood."""
    assert size == parse_size(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_durations_round_trip_in_milliseconds(millis: int) -> None:
    """Formatting then parsing gives back the same number of seconds."""
    seconds = millis / 1000
    assert seconds == parse_duration(format_duration(seconds))


@given(st.integers(min_value=0, max_value=2**40))
def test_sizes_round_trip(size: int) -> None:
    """Formatting then parsing gives back the same number of bytes."""
    assert size == parse_size(format_size(size))
